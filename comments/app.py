"""The application factory: one place that wires features, database, errors and docs together."""

from __future__ import annotations

import logging
from pathlib import Path

from litestar import Litestar, MediaType, Response, get
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.status_codes import HTTP_503_SERVICE_UNAVAILABLE
from litestar.template import TemplateConfig
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from comments import cors, db, headers, maintenance, request_session
from comments.config import Settings
from comments.errors import EXCEPTION_HANDLERS
from comments.export import routes as export
from comments.moderation import routes as moderation
from comments.submission import routes as submission
from comments.widget import routes as widget
from comments.widget.replay import ReplayUnchanged
from comments.widget.service import PageCache, StateReader

log = logging.getLogger("comments")
PACKAGE_DIR = Path(__file__).resolve().parent
# Comments are at most 64 KB of text; a form post or JSON body several times that is never legitimate.
MAX_BODY_BYTES = 256 * 1024


@get(
    "/healthz",
    media_type=MediaType.JSON,
    cache=False,
    responses={
        503: ResponseSpec(
            data_container=dict[str, str], description="The database does not answer.", generate_examples=False
        )
    },
)
async def healthz(db_engine: NamedDependency[AsyncEngine]) -> Response[dict[str, str]]:
    """Liveness and readiness: 200 only when the database answers, 503 otherwise."""
    try:
        async with db_engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (OSError, SQLAlchemyError):
        log.warning("health check: the database does not answer")
        return Response({"status": "unavailable"}, status_code=HTTP_503_SERVICE_UNAVAILABLE)
    return Response({"status": "ok"})


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the ASGI app for the given settings (read from the environment when omitted)."""
    settings = (settings or Settings()).with_secret()
    # aiosqlite's DEBUG lines carry every query's parameters, commenters' emails included: never emit them.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    engine = db.create_engine(settings)
    state_reader = StateReader(engine, settings)
    return Litestar(
        route_handlers=[
            healthz,
            cors.preflight,
            *submission.ROUTES,
            *widget.ROUTES,
            *moderation.ROUTES,
            *export.ROUTES,
        ],
        dependencies={
            "db_session": Provide(request_session.provide_db_session, sync_to_thread=False),
            "db_engine": Provide(request_session.provide_db_engine, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        # Moderator writes need the `csrftoken` cookie echoed in `x-csrftoken` (or the `_csrf_token` form field);
        # public reader routes and login opt out with opt={"exclude_from_csrf": True}.
        csrf_config=CSRFConfig(
            secret=settings.secret_key, cookie_secure=settings.secure_cookies, exclude_from_csrf_key="exclude_from_csrf"
        ),
        before_send=[request_session.settle_db_session, headers.add_security_headers],
        middleware=[ReplayUnchanged(state_reader.database_stamp, widget.REPLAYABLE)] if state_reader.has_stamp else [],
        request_max_body_size=MAX_BODY_BYTES,
        on_shutdown=[state_reader.close, engine.dispose],
        lifespan=[lambda _app: maintenance.periodic(engine, interval=settings.maintenance_interval)],
        state=State(
            {
                "settings": settings,
                "engine": engine,
                "page_cache": PageCache(),
                "state_reader": state_reader,
                # Sessions for handlers that open one only when they need it (the read path's cache misses).
                "sessions": db.session_maker(engine),
            }
        ),
        template_config=TemplateConfig(
            directory=[
                PACKAGE_DIR / "widget" / "templates",
                PACKAGE_DIR / "submission" / "templates",
                PACKAGE_DIR / "moderation" / "templates",
            ],
            engine=JinjaTemplateEngine,
        ),
        openapi_config=OpenAPIConfig(
            title="comments",
            version="0.1.0",
            description="Self-hosted comments: public reader API, moderation and export.",
            path="/schema",
        ),
        # Logging is the process's business (`comments serve`, uvicorn), not the app factory's.
        logging_config=None,
        debug=settings.debug,
    )
