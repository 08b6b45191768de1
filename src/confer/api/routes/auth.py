"""/api/v1/auth: register, login, refresh, logout."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body
from pydantic import BaseModel, EmailStr, Field, field_validator

from confer.api.deps import Ctx, CurrentUser, Session
from confer.api.envelope import Envelope
from confer.api.routes import API_PREFIX, api_router
from confer.errors import ValidationFailed
from confer.services.accounts import TokenPair

router = api_router(f"{API_PREFIX}/auth", tags=["auth"])

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,32}$"


class RegisterIn(BaseModel):
    username: str = Field(pattern=USERNAME_PATTERN, examples=["user123"])
    email: EmailStr
    password: str = Field(min_length=1, max_length=128)
    full_name: str = Field(default="", max_length=100)

    @field_validator("full_name")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip()


class RegisterOut(BaseModel):
    user_id: int
    username: str
    email: str
    token: str
    refresh_token: str
    expires_in: int


class LoginIn(BaseModel):
    username: str | None = Field(default=None, max_length=254, description="Username or e-mail")
    email: str | None = Field(default=None, max_length=254)
    password: str = Field(min_length=1, max_length=128)


class LoginOut(BaseModel):
    user_id: int
    username: str
    email: str
    token: str
    refresh_token: str
    expires_in: int


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=512)


class TokensOut(BaseModel):
    token: str
    refresh_token: str
    expires_in: int


class LogoutIn(BaseModel):
    refresh_token: str | None = Field(default=None, max_length=512)


def _tokens(pair: TokenPair) -> dict[str, object]:
    return {"token": pair.token, "refresh_token": pair.refresh_token, "expires_in": pair.expires_in}


@router.post("/register", response_model=Envelope[RegisterOut])
async def register(body: RegisterIn, ctx: Ctx, s: Session) -> Envelope[RegisterOut]:
    user = await ctx.accounts.register(
        s, body.username, str(body.email), body.password, body.full_name
    )
    pair = await ctx.accounts.issue_pair(s, user)
    return Envelope(
        data=RegisterOut(user_id=user.id, username=user.username, email=user.email, **_tokens(pair))  # type: ignore[arg-type]
    )


async def login(body: LoginIn, ctx: Ctx, s: Session) -> Envelope[LoginOut]:
    name = body.username or body.email
    if not name:
        raise ValidationFailed("Invalid request", details="username (or email) is required")
    user = await ctx.accounts.authenticate(s, name, body.password)
    pair = await ctx.accounts.issue_pair(s, user)
    return Envelope(
        data=LoginOut(user_id=user.id, username=user.username, email=user.email, **_tokens(pair))  # type: ignore[arg-type]
    )


router.post("/login", response_model=Envelope[LoginOut])(login)


@router.post("/refresh", response_model=Envelope[TokensOut])
async def refresh(body: RefreshIn, ctx: Ctx, s: Session) -> Envelope[TokensOut]:
    pair = await ctx.accounts.refresh(s, body.refresh_token)
    return Envelope(data=TokensOut(**_tokens(pair)))  # type: ignore[arg-type]


class LoggedOut(BaseModel):
    logged_out: bool


@router.post("/logout", response_model=Envelope[LoggedOut])
async def logout(
    user: CurrentUser, ctx: Ctx, s: Session, body: Annotated[LogoutIn | None, Body()] = None
) -> Envelope[LoggedOut]:
    """Revoke the given refresh token's family, or all of the user's refresh tokens."""
    await ctx.accounts.logout(s, user.id, body.refresh_token if body else None)
    return Envelope(data=LoggedOut(logged_out=True))
