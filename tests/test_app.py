"""Service-level endpoints every deployment relies on: health, docs, demo page."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from comments.app import create_app
from comments.config import Settings

pytestmark = pytest.mark.anyio


async def test_healthz_answers_ok_when_database_answers(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_healthz_is_503_when_database_is_down(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://nobody:x@127.0.0.1:1/none", data_dir=tmp_path, secret_key="k"
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


async def test_openapi_schema_is_served(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "comments"
    assert "/healthz" in schema["paths"]


async def test_demo_article_embeds_the_widget(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/demo")
    assert response.status_code == 200
    assert 'data-site="demo"' in response.text
    assert 'src="http://testserver.local/widget.js"' in response.text


async def test_unknown_route_is_a_json_404(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/no/such/page")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
