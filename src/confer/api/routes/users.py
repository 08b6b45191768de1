"""/api/v1/users: the caller's profile and password."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Response
from pydantic import BaseModel, EmailStr, Field
from sqlalchemy import select

from confer.api.deps import Ctx, CurrentUser, CurrentUserRow, Session
from confer.api.envelope import Envelope, Timestamp, respond
from confer.api.routes import API_PREFIX, api_router
from confer.api.routes.auth import LoginOut, login
from confer.db.models import User
from confer.errors import Conflict, ErrorCode

router = api_router(f"{API_PREFIX}/users", tags=["users"])


class ProfileOut(BaseModel):
    user_id: int
    username: str
    email: str
    full_name: str
    avatar_url: str | None
    created_at: Timestamp


class ProfileIn(BaseModel):
    full_name: str | None = Field(default=None, max_length=100)
    email: EmailStr | None = None
    avatar_url: str | None = Field(
        default=None, max_length=500, pattern=r"^(https?://|/)[^\s<>\"']*$"
    )


class PasswordIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=128)
    new_password: str = Field(min_length=1, max_length=128)


class PasswordChanged(BaseModel):
    changed: bool
    changed_at: Timestamp


def profile_of(user: User | Any) -> ProfileOut:
    """From the ORM user or the row `CurrentUserRow` reads (the same attribute names)."""
    return ProfileOut(
        user_id=user.id,
        username=user.username,
        email=user.email,
        full_name=user.full_name,
        avatar_url=user.avatar_url,
        created_at=user.created_at,
    )


@router.get("/profile", response_model=Envelope[ProfileOut])
async def get_profile(user: CurrentUserRow) -> Response:
    return respond(Envelope(data=profile_of(user)))


@router.put("/profile", response_model=Envelope[ProfileOut])
async def update_profile(body: ProfileIn, user: CurrentUser, s: Session) -> Envelope[ProfileOut]:
    if body.full_name is not None:
        user.full_name = body.full_name.strip()
    if body.avatar_url is not None:
        user.avatar_url = body.avatar_url or None
    if body.email is not None and body.email.lower() != user.email:
        taken = await s.scalar(select(User.id).where(User.email == body.email.lower()))
        if taken is not None:
            raise Conflict("E-mail already in use", code=ErrorCode.USER_EXISTS)
        user.email = body.email.lower()
    await s.flush()
    return Envelope(data=profile_of(user))


@router.put("/password", response_model=Envelope[PasswordChanged])
async def change_password(
    body: PasswordIn, user: CurrentUser, ctx: Ctx, s: Session
) -> Envelope[PasswordChanged]:
    """Change the password; every refresh token of the user is revoked."""
    await ctx.accounts.change_password(s, user, body.current_password, body.new_password)
    return Envelope(data=PasswordChanged(changed=True, changed_at=datetime.now().astimezone()))


# The contract's client examples log in at /api/v1/users/login: same handler as /auth/login.
router.post("/login", response_model=Envelope[LoginOut])(login)
