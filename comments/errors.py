"""The one error style: services raise `CommentsError`s, one handler renders them as JSON."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_409_CONFLICT, HTTP_500_INTERNAL_SERVER_ERROR
from sqlalchemy.exc import IntegrityError

if TYPE_CHECKING:
    from litestar.types import ExceptionHandlersMap

log = logging.getLogger("comments")


@dataclass(frozen=True)
class FieldError:
    """One failing form field and a message a reader understands."""

    field: str
    message: str


class FieldErrorBody(msgspec.Struct, kw_only=True):
    """One failing field in an error answer."""

    field: str
    message: str


class ErrorBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The body of every error answer: a message for people, a stable code for programs, the failing fields."""

    detail: str
    code: str
    errors: list[FieldErrorBody] = msgspec.field(default_factory=list)


ERROR_DESCRIPTIONS = {
    400: "Invalid input: `errors` lists every failing field with a message a reader understands.",
    403: "Refused: posted from a page of another origin.",
    404: "Unknown site, thread or comment.",
    405: "Method not allowed on this path.",
    408: "The request body did not arrive in time.",
    409: "Conflicts with stored state: duplicate comment, closed thread.",
    413: "Request body too large.",
    429: "Flood control or the hourly limit; `Retry-After` says when to try again.",
}


def error_responses(*status_codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI `responses=` entries for error answers, all shaped as `ErrorBody`."""
    return {
        code: ResponseSpec(
            data_container=ErrorBody, description=ERROR_DESCRIPTIONS.get(code, "Error."), generate_examples=False
        )
        for code in status_codes
    }


class CommentsError(Exception):
    """Base of every domain error; `code` is stable for API clients, `detail` is for people."""

    status_code: ClassVar[int] = HTTP_400_BAD_REQUEST
    code: ClassVar[str] = "bad_request"

    def __init__(
        self, detail: str, *, errors: list[FieldError] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


class InvalidInput(CommentsError):
    """One or more fields failed validation; every failing field is listed."""

    code = "validation_error"

    def __init__(self, errors: list[FieldError]) -> None:
        detail = errors[0].message if len(errors) == 1 else "Please correct the highlighted fields."
        super().__init__(detail, errors=errors)


class NotFound(CommentsError):
    """The named site, thread or comment does not exist (or is not visible to the caller)."""

    status_code = 404
    code = "not_found"


class NotAuthenticated(CommentsError):
    """No valid login session: log in first."""

    status_code = 401
    code = "not_authenticated"


class RateLimited(CommentsError):
    """Too many attempts in a short time; try again later."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int = 900) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class Conflict(CommentsError):
    """The request clashes with stored state."""

    status_code = HTTP_409_CONFLICT
    code = "conflict"


class Forbidden(CommentsError):
    """The caller may not do this (wrong origin, missing role)."""

    status_code = 403
    code = "forbidden"


class ThreadClosed(CommentsError):
    """The article no longer takes comments."""

    status_code = HTTP_409_CONFLICT
    code = "thread_closed"


class Duplicate(CommentsError):
    """The same author already said exactly this in this thread."""

    status_code = HTTP_409_CONFLICT
    code = "duplicate"


class TooManyRequests(RateLimited):
    """Flood control or the hourly limit refused a reader's comment; `Retry-After` says when to try again."""

    code = "flood"


class ImportFailed(CommentsError):
    """An import file is malformed; nothing was imported and `detail` names where it broke."""

    status_code = 422
    code = "import_failed"


class UnsafeXML(CommentsError):
    """An XML file declares entities or a DTD (external-entity or entity-expansion attack) and was refused."""

    status_code = 422
    code = "unsafe_xml"


class NotStored(CommentsError):
    """A change the handler made could not be committed: nothing of it is stored."""

    status_code = 503
    code = "not_stored"


def error_body(exc: CommentsError) -> dict[str, Any]:
    """The JSON body of an error, shared by the API handler and the HTML error page."""
    body: dict[str, Any] = {"detail": exc.detail, "code": exc.code}
    if exc.errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in exc.errors]
    return body


def handle_comments_error(_request: Request[Any, Any, Any], exc: CommentsError) -> Response[dict[str, Any]]:
    """Render a domain error as `{"detail", "code", "errors"?}` with its status."""
    return Response(error_body(exc), status_code=exc.status_code, headers=exc.headers)


def handle_validation_error(_request: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    """Litestar's own request validation (wrong types, malformed JSON) in the same error style."""
    errors = [
        {"field": _field_name(item), "message": str(item.get("message", "Invalid value."))}
        for item in (exc.extra if isinstance(exc.extra, list) else [])
        if isinstance(item, dict)
    ]
    body: dict[str, Any] = {"detail": exc.detail or "Invalid request.", "code": "validation_error"}
    if errors:
        body["errors"] = errors
    return Response(body, status_code=exc.status_code)


def _field_name(item: dict[str, Any]) -> str:
    key = str(item.get("key") or "body")
    return key.removeprefix("data.") if key != "data" else "body"


def handle_http_exception(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    """Framework errors (404 route, 405, 413, CSRF 403...) in the same shape."""
    code = {
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        408: "timeout",
        413: "too_large",
        429: "rate_limited",
    }
    body = {"detail": exc.detail, "code": code.get(exc.status_code, "http_error")}
    return Response(body, status_code=exc.status_code, headers=exc.headers)


def handle_integrity_error(_request: Request[Any, Any, Any], exc: IntegrityError) -> Response[dict[str, Any]]:
    """A constraint the service did not foresee (a race): 409, never a 500."""
    log.warning("integrity error: %s", type(exc.orig).__name__)
    return Response({"detail": "The change conflicts with stored data.", "code": "conflict"}, status_code=409)


def handle_unexpected(_request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Log the bug, answer without internals."""
    log.exception("unhandled error", exc_info=exc)
    return Response(
        {"detail": "Internal server error.", "code": "internal_error"}, status_code=HTTP_500_INTERNAL_SERVER_ERROR
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    CommentsError: handle_comments_error,
    ValidationException: handle_validation_error,
    HTTPException: handle_http_exception,
    IntegrityError: handle_integrity_error,
    Exception: handle_unexpected,
}
