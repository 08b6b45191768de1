"""/health: liveness and database readiness, public and cheap."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import literal, select

from confer.api.deps import Ctx
from confer.api.envelope import Envelope, JSONResponse, error_response
from confer.api.routes import api_router

router = api_router(tags=["health"])
_PING = select(literal(1).label("ok"))


class Health(BaseModel):
    status: str
    database: str


@router.get("/health", response_model=Envelope[Health])
async def health(ctx: Ctx) -> Envelope[Health] | JSONResponse:
    try:
        await ctx.db.reads.first(_PING)
    except Exception as exc:
        return error_response(503, "Database unavailable", "ServiceUnavailable", str(exc)[:200])
    return Envelope(data=Health(status="ok", database="ok"))
