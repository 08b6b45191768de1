"""/health: liveness and database readiness, public and cheap."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from confer.api.deps import Ctx
from confer.api.envelope import Envelope, JSONResponse, error_response

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    database: str


@router.get("/health", response_model=Envelope[Health])
async def health(ctx: Ctx) -> Envelope[Health] | JSONResponse:
    try:
        async with ctx.db.reader.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return error_response(503, "Database unavailable", "ServiceUnavailable", str(exc)[:200])
    return Envelope(data=Health(status="ok", database="ok"))
