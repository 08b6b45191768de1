"""The contract's response envelope: `{code, message, data, timestamp}` or
`{code, message, error: {type, details}, timestamp}` for every response, errors included.

`code` is the HTTP status on success and on errors without a business code; where the contract
defines one (10001 ... 40002) `code` carries it, so a client can switch on `code` alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, Field, PlainSerializer
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import Response

T = TypeVar("T")


def iso(dt: datetime) -> str:
    """`2025-10-01T10:00:00Z` (isoformat is C; strftime was a hot spot in list responses)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    elif dt.utcoffset():
        dt = dt.astimezone(UTC)
    return dt.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def now_iso() -> str:
    return iso(datetime.now(UTC))


# The contract writes instants as 2025-10-01T10:00:00Z.
Timestamp = Annotated[datetime, PlainSerializer(iso, return_type=str, when_used="json")]


class Envelope(BaseModel, Generic[T]):
    code: int = 200
    message: str = "success"
    data: T
    timestamp: str = Field(default_factory=now_iso)


class ErrorBody(BaseModel):
    type: str
    details: Any = None


class ErrorEnvelope(BaseModel):
    code: int
    message: str
    error: ErrorBody
    timestamp: str


class Page(BaseModel, Generic[T]):
    """The contract's pagination shape."""

    items: list[T]
    total: int
    page: int
    page_size: int
    total_pages: int


def total_pages(total: int, page_size: int) -> int:
    return (total + page_size - 1) // page_size if page_size else 0


class JSONResponse(StarletteJSONResponse):
    """orjson rendering; a JSONResponse subclass so the OpenAPI document shows the models."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def respond(envelope: Envelope[Any], status: int = 200) -> Response:
    """The envelope as a ready response, for hot routes.

    Given a model, FastAPI dumps it, validates the dump against `response_model` and
    serializes it again; the route's model already is the declared type, so one pydantic-core
    dump is enough. The route keeps `response_model` for the OpenAPI document."""
    return Response(envelope.model_dump_json(), status, media_type="application/json")


# Datetimes rendered by orjson in C, in the contract's form (2025-10-01T10:00:00Z). The database
# layer hands out UTC datetimes (`UTCDateTime`), naive ones are taken as UTC.
_INSTANTS = orjson.OPT_UTC_Z | orjson.OPT_OMIT_MICROSECONDS | orjson.OPT_NAIVE_UTC


def respond_data(data: Any, status: int = 200) -> Response:
    """`respond` for data built as plain JSON values (lists of many items: no model per item);
    datetimes in it are rendered as the contract's instants."""
    body = {"code": status, "message": "success", "data": data, "timestamp": now_iso()}
    return Response(orjson.dumps(body, option=_INSTANTS), status, media_type="application/json")


def prerender(data: Any) -> bytes:
    """`data` rendered once, to be sent many times by `respond_prerendered` (cached lists)."""
    return orjson.dumps(data, option=_INSTANTS)


def respond_prerendered(data: bytes) -> Response:
    return respond_data(orjson.Fragment(data))


def error_response(
    status: int,
    message: str,
    err_type: str,
    details: Any = None,
    code: int | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "code": code if code is not None else status,
        "message": message,
        "error": {"type": err_type, "details": details if details is not None else message},
        "timestamp": now_iso(),
    }
    return JSONResponse(body, status_code=status, headers=headers)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": desc}
    for status, desc in {
        400: "Invalid request",
        401: "Not authenticated (10004 token invalid, 10005 token expired)",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        413: "Payload too large",
        415: "Unsupported media type",
        429: "Too many requests",
        500: "Internal error",
        503: "Service unavailable",
    }.items()
}
