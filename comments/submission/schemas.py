"""Shapes of the Leave-a-Reply write path."""

from __future__ import annotations

import msgspec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, RequestBody, Schema

from comments.widget.schemas import CommentPublic


class ReplyCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """A reader's reply, as the widget (JSON) or the classic form (urlencoded) sends it.

    Every text field is optional at this layer so the service can report every
    missing or invalid field at once, in words a reader understands.
    """

    site: str = ""
    thread: str = ""
    thread_title: str | None = None
    thread_url: str | None = None
    parent_id: int | None = None
    content: str = ""
    name: str = ""
    email: str = ""
    url: str | None = None
    leave_blank: str = msgspec.field(default="")  # honeypot: hidden from people, filled in by bots


class ReplyCreated(msgspec.Struct, kw_only=True):
    """201 answer: the stored comment, its status, and the submitter token (shown once)."""

    comment: CommentPublic
    token: str
    message: str | None


def _text(
    description: str,
    *,
    nullable: bool = False,
    form: bool = False,
    required: bool = False,
) -> Schema:
    kind = OpenAPIType.STRING if form or not nullable else [OpenAPIType.STRING, OpenAPIType.NULL]
    return Schema(type=kind, description=description, min_length=1 if required else None)


REPLY_EXAMPLE = {
    "site": "demo",
    "thread": "/demo",
    "thread_title": "Why the comment section still matters",
    "content": "Great article, <em>thanks</em>!",
    "name": "Ada Lovelace",
    "email": "ada@example.org",
    "url": "https://ada.example.org/",
}


def reply_schema(*, form: bool) -> Schema:
    """The documented request body: JSON from the widget, or the same fields as a urlencoded form.

    The handler decodes the body itself (one endpoint, two encodings), so Litestar cannot
    derive this from a signature; the limits are enforced, and explained, by `validation.py`.
    """
    parent: Schema = (
        Schema(type=OpenAPIType.STRING, description="Id of the approved comment replied to; empty or 0 for none.")
        if form
        else Schema(type=[OpenAPIType.INTEGER, OpenAPIType.NULL], description="Id of the approved comment replied to.")
    )
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["site", "thread", "content", "name", "email"],
        properties={
            "site": _text("Slug of the site.", form=form, required=True),
            "thread": _text("The article's stable identifier (at most 500 characters).", form=form, required=True),
            "thread_title": _text("The article's title (at most 500 characters).", nullable=True, form=form),
            "thread_url": _text("The article's URL, on one of the site's origins.", nullable=True, form=form),
            "parent_id": parent,
            "content": _text(
                "The comment text; limited HTML is kept (at most 65,525 bytes).", form=form, required=True
            ),
            "name": _text(
                "Displayed name (at most 245 characters, no invisible characters).", form=form, required=True
            ),
            "email": _text("Email address; never published (at most 100 characters).", form=form, required=True),
            "url": _text("Website, http(s) only (at most 200 characters); empty for none.", nullable=True, form=form),
            "leave_blank": _text("Honeypot: leave it empty.", form=form),
        },
        examples=[REPLY_EXAMPLE],
    )


REPLY_REQUEST_BODY = RequestBody(
    required=True,
    description="A reader's reply. Every failing field is reported at once (400).",
    content={
        "application/json": OpenAPIMediaType(schema=reply_schema(form=False)),
        "application/x-www-form-urlencoded": OpenAPIMediaType(schema=reply_schema(form=True)),
    },
)
