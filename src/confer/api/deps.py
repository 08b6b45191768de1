"""FastAPI dependencies: the app context, a database session, the authenticated user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Integer, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from confer.context import AppContext
from confer.db.models import MEETING_LISTS, DataVersion, User
from confer.errors import token_invalid


async def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


Ctx = Annotated[AppContext, Depends(get_ctx)]


async def get_session(ctx: Ctx) -> AsyncIterator[AsyncSession]:
    async with ctx.db.session() as s:
        yield s


# scope="function": commit before the response is sent. FastAPI's default ("request") commits
# after it, so a client could be told 200 for a write that then fails, or not yet see its own
# write on its next request (seen as "user no longer exists" right after registering).
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise token_invalid("Missing bearer token in the Authorization header")
    return token.strip()


async def current_user(request: Request, ctx: Ctx, s: Session) -> User:
    claims = ctx.codec.decode_access(bearer_token(request))
    user = await s.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise token_invalid("The token's user no longer exists")
    # Rate limiting and logs key on the user once known.
    request.state.user_id = user.id
    return user


CurrentUser = Annotated[User, Depends(current_user)]


# Reads that need only the caller's own columns skip the ORM session and the User object: one
# statement on the driver (the profile read is among the hottest routes).
_USER_ROW = select(
    User.id,
    User.username,
    User.email,
    User.full_name,
    User.avatar_url,
    User.created_at,
    User.is_active,
).where(User.id == bindparam("user_id", type_=Integer))


# The same row with the meeting lists' data version (services.list_cache), read in the same
# statement: a list served from cache costs no more database work than the profile.
_USER_ROW_AND_LIST_VERSION = _USER_ROW.add_columns(
    select(DataVersion.version)
    .where(DataVersion.name == MEETING_LISTS)
    .scalar_subquery()
    .label("list_version")
)


async def _caller_row(request: Request, statement: Any) -> Any:
    ctx: AppContext = request.app.state.ctx  # not a sub-dependency: one less to solve
    claims = ctx.codec.decode_access(bearer_token(request))
    user = await ctx.db.reads.first(statement, {"user_id": claims.user_id})
    if user is None or not user.is_active:
        raise token_invalid("The token's user no longer exists")
    request.state.user_id = user.id
    return user


async def current_user_row(request: Request) -> Any:
    """`current_user` for read-only routes: the same checks, the user's columns as a row."""
    return await _caller_row(request, _USER_ROW)


async def current_user_row_and_list_version(request: Request) -> Any:
    """`current_user_row` with `list_version`, the version of the data meeting lists show."""
    return await _caller_row(request, _USER_ROW_AND_LIST_VERSION)


CurrentUserRow = Annotated[Any, Depends(current_user_row)]
CallerWithListVersion = Annotated[Any, Depends(current_user_row_and_list_version)]
