"""The /admin web UI: server-rendered pages and plain HTML forms, usable without JavaScript.

Every form carries the CSRF token as the hidden `_csrf_token` field. Pages that need a login
redirect to /admin/login; other refusals render an error page with the API's status code.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.errors import CommentsError, FieldError, InvalidInput, NotAuthenticated
from comments.models import CommentStatus, Role, User
from comments.moderation import auth, guards, service, site_settings
from comments.moderation.schemas import MemberAdd, SiteSettings, SiteSettingsUpdate, ThreadMerge

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

STATIC_DIR = Path(__file__).parent / "static"
MEMBER = {"auth": "member"}
OWNER = {"auth": "owner"}
USER = {"auth": "user"}
STATUSES = [CommentStatus.pending, CommentStatus.approved, CommentStatus.spam, CommentStatus.trash]


def _safe_next(target: str | None, default: str = "/admin") -> str:
    """Only local /admin paths: a login link must not become an open redirect."""
    if target and target.startswith("/admin") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def _login_redirect(request: Request[Any, Any, Any], _exc: NotAuthenticated) -> Response[Any]:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = "/admin"
    return Redirect(f"/admin/login?{urlencode({'next': target})}", status_code=303)


def _error_page(request: Request[Any, Any, Any], exc: CommentsError) -> Response[Any]:
    return Template(
        "admin/error.html",
        context={"error": exc, "errors": exc.errors, "back": request.headers.get("referer", "/admin")},
        status_code=exc.status_code,
    )


async def _form(request: Request[Any, Any, Any]) -> Any:
    return await request.form()


def _page(name: str, *, user: User | None, status_code: int = 200, **context: Any) -> Template:
    return Template(f"admin/{name}", context={"user": user, **context}, status_code=status_code)


@get("/", opt=USER, cache=False)
async def admin_home(
    db_session: NamedDependency[AsyncSession], current_user: NamedDependency[User]
) -> Template | Redirect:
    """The first site's pending queue, or a note when the account belongs to no site."""
    sites = await service.list_memberships(db_session, user=current_user)
    if sites:
        return Redirect(f"/admin/queue?{urlencode({'site': sites[0].slug})}", status_code=303)
    return _page("home.html", user=current_user, sites=sites)


@get("/login", cache=False)
async def login_page(target: Annotated[str | None, QueryParameter(name="next")] = None) -> Template:
    """The login form."""
    return _page("login.html", user=None, next=_safe_next(target), error=None, email="")


# Exempt like the JSON login: there is no session yet to protect (the form still carries the token).
@post("/login", opt={"exclude_from_csrf": True}, status_code=303)
async def login_form(request: Request[Any, Any, Any], db_engine: NamedDependency[AsyncEngine]) -> Response[Any]:
    """Check the credentials; on success set the session cookie and go on to the queue."""
    form = await _form(request)
    email, target = str(form.get("email", "")), _safe_next(form.get("next"))
    try:
        result = await auth.login(
            db_engine,
            email=email,
            password=str(form.get("password", "")),
            ip=request.client.host if request.client else None,
        )
    except CommentsError as exc:
        context = {"next": target, "error": exc.detail, "email": email}
        return _page("login.html", user=None, status_code=exc.status_code, **context)
    cookie = auth.session_cookie(result.token, secure=request.app.state.settings.secure_cookies)
    return Redirect(target, status_code=303, cookies=[cookie])


@post("/logout", opt=USER, status_code=303)
async def logout_form(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], current_user: NamedDependency[User]
) -> Redirect:
    """End the session and go back to the login page."""
    await auth.logout(db_session, token=request.cookies.get(auth.SESSION_COOKIE))
    cookie = auth.session_cookie("", secure=request.app.state.settings.secure_cookies, max_age=0)
    return Redirect("/admin/login", status_code=303, cookies=[cookie])


@get("/queue", opt=MEMBER, cache=False)
async def queue_page(
    request: Request[Any, Any, Any],
    db_session: NamedDependency[AsyncSession],
    member: NamedDependency[guards.Member],
    site: FromQuery[str],
    status: FromQuery[CommentStatus] = CommentStatus.pending,
    q: FromQuery[str | None] = None,
    reason: FromQuery[str | None] = None,
    sort: FromQuery[str] = "newest",
    cursor: FromQuery[str | None] = None,
) -> Template:
    """The queue of one site: status tabs with counts, entries, per-entry and bulk actions."""
    by_score = sort == "score"
    page = await service.list_queue(
        db_session, member=member, status=status, text=q, reason=reason, by_score=by_score, cursor=cursor, limit=25
    )
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    older = {
        "site": site,
        "status": status.value,
        "q": q or "",
        "reason": reason or "",
        "sort": sort,
        "cursor": page.next_cursor,
    }
    return _page(
        "queue.html",
        user=member.user,
        member=member,
        sites=await service.list_memberships(db_session, user=member.user),
        status=status,
        statuses=STATUSES,
        page=page,
        q=q or "",
        reason=reason or "",
        reasons=REASONS,
        by_score=by_score,
        here=here,
        next_url=f"/admin/queue?{urlencode(older)}" if page.next_cursor else None,
    )


# The rules that can hold or spam a comment, for the queue's filter (see submission/rules.py, spamfilter.py).
REASONS = (
    "manual_approval",
    "links",
    "moderation_keyword",
    "disallowed_keyword",
    "spam_score",
    "honeypot",
    "known_author",
)


@post("/comments/{comment_id:int}/status", opt=USER, status_code=303)
async def set_status_form(
    request: Request[Any, Any, Any],
    db_session: NamedDependency[AsyncSession],
    current_user: NamedDependency[User],
    comment_id: FromPath[int],
) -> Redirect:
    """Approve, spam, trash or restore one comment, then go back to the queue."""
    form = await _form(request)
    status = _status(form.get("status"))
    await service.update_comment(db_session, user=current_user, comment_id=comment_id, status=status)
    return Redirect(_safe_next(form.get("next")), status_code=303)


@post("/comments/{comment_id:int}/delete", opt={**USER, "role": "owner"}, status_code=303)
async def delete_form(
    request: Request[Any, Any, Any],
    db_session: NamedDependency[AsyncSession],
    current_user: NamedDependency[User],
    comment_id: FromPath[int],
) -> Redirect:
    """Delete a spam or trashed comment for good (owners)."""
    form = await _form(request)
    await service.delete_comment(db_session, user=current_user, comment_id=comment_id)
    return Redirect(_safe_next(form.get("next")), status_code=303)


@post("/bulk", opt=USER, status_code=303)
async def bulk_form(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], current_user: NamedDependency[User]
) -> Redirect:
    """Give every ticked comment the chosen status, all or nothing."""
    form = await _form(request)
    try:
        ids = [int(value) for value in form.getall("ids", [])]
    except ValueError as exc:
        raise InvalidInput([FieldError("ids", "Invalid selection.")]) from exc
    if not ids:
        raise InvalidInput([FieldError("ids", "Tick at least one comment first.")])
    await service.bulk_update(db_session, user=current_user, ids=ids, status=_status(form.get("bulk_status")))
    return Redirect(_safe_next(form.get("next")), status_code=303)


def _status(value: Any) -> CommentStatus:
    try:
        return CommentStatus(str(value))
    except ValueError as exc:
        raise InvalidInput([FieldError("status", "Unknown status.")]) from exc


@get("/audit", opt=MEMBER, cache=False)
async def audit_page(
    db_session: NamedDependency[AsyncSession],
    member: NamedDependency[guards.Member],
    site: FromQuery[str],
    cursor: FromQuery[str | None] = None,
) -> Template:
    """The site's audit log."""
    page = await service.list_audit(db_session, member=member, cursor=cursor)
    sites = await service.list_memberships(db_session, user=member.user)
    return _page("audit.html", user=member.user, member=member, sites=sites, page=page)


@get("/sites/{site:str}/settings", opt=OWNER, cache=False)
async def settings_page(
    db_session: NamedDependency[AsyncSession], owner: NamedDependency[guards.Member], saved: FromQuery[bool] = False
) -> Template:
    """The site's discussion rules, webhook and members."""
    return _page(
        "settings.html",
        user=owner.user,
        member=owner,
        sites=await service.list_memberships(db_session, user=owner.user),
        settings=SiteSettings.build(owner.site),
        members=await site_settings.list_members(db_session, owner=owner),
        roles=list(Role),
        saved=saved,
    )


def _validated(model: Any, values: dict[str, Any]) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        errors = [FieldError(str(e["loc"][0]) if e["loc"] else "form", e["msg"]) for e in exc.errors()]
        raise InvalidInput(errors) from exc


@post("/sites/{site:str}/settings", opt=OWNER, status_code=303)
async def settings_form(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], owner: NamedDependency[guards.Member]
) -> Redirect:
    """Save the rules (an unticked checkbox means off; an empty secret keeps the current one)."""
    form = await _form(request)
    values: dict[str, Any] = {
        "auto_approve_known": form.get("auto_approve_known") == "on",
        "moderation_keywords": form.get("moderation_keywords", ""),
        "disallowed_keywords": form.get("disallowed_keywords", ""),
        "webhook_url": form.get("webhook_url", ""),
    }
    for field in ("name", "hold_links", "max_depth", "disallowed_action", "spam_threshold", "spam_hold"):
        if form.get(field, "") != "":
            values[field] = form.get(field)
    for field in ("retention_personal_days", "retention_purge_days"):
        values[field] = form.get(field) or None  # empty: keep forever
    values["thread_query_params"] = form.get("thread_query_params", "").replace(",", " ").split()
    if form.get("webhook_secret"):
        values["webhook_secret"] = form.get("webhook_secret")
    elif form.get("clear_secret") == "on":
        values["webhook_secret"] = ""
    await site_settings.update_settings(db_session, owner=owner, changes=_validated(SiteSettingsUpdate, values))
    return Redirect(f"/admin/sites/{owner.site.slug}/settings?saved=true", status_code=303)


@post("/sites/{site:str}/threads/merge", opt=OWNER, status_code=303)
async def merge_form(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], owner: NamedDependency[guards.Member]
) -> Redirect:
    """Merge one thread into another from the settings page."""
    form = await _form(request)
    data = _validated(ThreadMerge, {"source": form.get("source", ""), "target": form.get("target", "")})
    await site_settings.merge_threads(db_session, owner=owner, data=data)
    return Redirect(f"/admin/sites/{owner.site.slug}/settings?saved=true", status_code=303)


@post("/sites/{site:str}/members", opt=OWNER, status_code=303)
async def add_member_form(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], owner: NamedDependency[guards.Member]
) -> Redirect:
    """Add an account to the site."""
    form = await _form(request)
    values = {"email": form.get("email", ""), "role": form.get("role", ""), "password": form.get("password") or None}
    await site_settings.add_member(db_session, owner=owner, data=_validated(MemberAdd, values))
    return Redirect(f"/admin/sites/{owner.site.slug}/settings", status_code=303)


@post("/sites/{site:str}/members/{user_id:int}", opt=OWNER, status_code=303)
async def member_form(
    request: Request[Any, Any, Any],
    db_session: NamedDependency[AsyncSession],
    owner: NamedDependency[guards.Member],
    user_id: FromPath[int],
) -> Redirect:
    """Change a member's role, or remove them (`action=remove`)."""
    form = await _form(request)
    if form.get("action") == "remove":
        await site_settings.remove_member(db_session, owner=owner, user_id=user_id)
    else:
        try:
            role = Role(str(form.get("role")))
        except ValueError as exc:
            raise InvalidInput([FieldError("role", "Unknown role.")]) from exc
        await site_settings.change_role(db_session, owner=owner, user_id=user_id, role=role)
    return Redirect(f"/admin/sites/{owner.site.slug}/settings", status_code=303)


ADMIN_ROUTER = Router(
    "/admin",
    route_handlers=[
        admin_home,
        login_page,
        login_form,
        logout_form,
        queue_page,
        set_status_form,
        delete_form,
        bulk_form,
        audit_page,
        settings_page,
        settings_form,
        merge_form,
        add_member_form,
        member_form,
    ],
    dependencies=guards.DEPENDENCIES,
    exception_handlers={NotAuthenticated: _login_redirect, CommentsError: _error_page},
    include_in_schema=False,
)

STATIC_ROUTER = create_static_files_router(
    path="/admin/static", directories=[STATIC_DIR], include_in_schema=False, opt={"auth": "public"}
)

ROUTES: list[ControllerRouterHandler] = [ADMIN_ROUTER, STATIC_ROUTER]
