"""Pages and assets readers load: the demo article and the widget script."""

from __future__ import annotations

from litestar import get
from litestar.datastructures import State
from litestar.response import Template

DEMO_SITE = "demo"
DEMO_THREAD = "/demo"


@get("/demo", include_in_schema=False)
async def demo_article(state: State) -> Template:
    """A placeholder article that embeds the widget, so a newcomer sees the whole flow."""
    return Template(
        template_name="demo.html",
        context={"site": DEMO_SITE, "thread": DEMO_THREAD, "base_url": state.settings.base_url.rstrip("/")},
    )


ROUTES = [demo_article]
