"""Accounts: registration, login, refresh-token rotation, profiles, password changes."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from confer.auth.passwords import hash_password, policy_violations, verify_password
from confer.auth.tokens import TokenCodec, hash_token, new_opaque_token
from confer.db.models import RefreshToken, User, utcnow
from confer.errors import (
    Conflict,
    ErrorCode,
    Unauthorized,
    ValidationFailed,
    invalid_credentials,
    token_expired,
    token_invalid,
)


@dataclass(frozen=True, slots=True)
class TokenPair:
    token: str
    refresh_token: str
    expires_in: int


class Accounts:
    def __init__(self, codec: TokenCodec, refresh_ttl: int) -> None:
        self.codec = codec
        self.refresh_ttl = refresh_ttl

    async def register(
        self, s: AsyncSession, username: str, email: str, password: str, full_name: str
    ) -> User:
        problems = policy_violations(password, username=username, email=email)
        if problems:
            raise ValidationFailed("Password does not meet the policy", details=problems)
        existing = await s.scalar(
            select(User.id).where(or_(User.username == username, User.email == email.lower()))
        )
        if existing is not None:
            raise Conflict("User already exists", code=ErrorCode.USER_EXISTS)
        user = User(
            username=username,
            email=email.lower(),
            password_hash=await hash_password(password),
            full_name=full_name,
        )
        s.add(user)
        try:
            await s.flush()
        except IntegrityError:  # lost a race with a concurrent registration
            raise Conflict("User already exists", code=ErrorCode.USER_EXISTS) from None
        return user

    async def authenticate(self, s: AsyncSession, login: str, password: str) -> User:
        """Log in by username or e-mail; the same 10001 for an unknown user or a wrong password."""
        column = User.email if "@" in login else User.username
        value = login.lower() if "@" in login else login
        user = await s.scalar(select(User).where(column == value))
        ok = await verify_password(user.password_hash if user else None, password)
        if not ok or user is None or not user.is_active:
            raise invalid_credentials()
        return user

    async def issue_pair(self, s: AsyncSession, user: User, family: str | None = None) -> TokenPair:
        refresh = new_opaque_token()
        s.add(
            RefreshToken(
                user_id=user.id,
                family_id=family or secrets.token_hex(16),
                token_hash=hash_token(refresh),
                expires_at=utcnow() + timedelta(seconds=self.refresh_ttl),
            )
        )
        await s.flush()
        access = self.codec.issue_access(user.id, user.username, user.email)
        return TokenPair(access, refresh, self.codec.access_ttl)

    async def refresh(self, s: AsyncSession, refresh_token: str) -> TokenPair:
        """Rotate: spend the presented token and issue a new one in the same family.

        Presenting an already-spent token means it leaked: revoke the whole family.
        """
        row = await s.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == hash_token(refresh_token))
        )
        if row is None:
            raise token_invalid("Unknown refresh token")
        now = utcnow()
        if row.revoked_at is not None:
            raise token_invalid("Refresh token has been revoked")
        if row.used_at is not None:
            await self._revoke_family(s, row.family_id)
            await s.commit()
            raise token_invalid("Refresh token was already used; all sessions of it are revoked")
        if row.expires_at <= now:
            raise token_expired()
        # Guard against two concurrent refreshes of the same token: only one update wins.
        spent = await s.execute(
            update(RefreshToken)
            .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None))
            .values(used_at=now)
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
            await self._revoke_family(s, row.family_id)
            await s.commit()
            raise token_invalid("Refresh token was already used; all sessions of it are revoked")
        user = await s.get(User, row.user_id)
        if user is None or not user.is_active:
            raise token_invalid("User no longer exists")
        return await self.issue_pair(s, user, family=row.family_id)

    async def logout(self, s: AsyncSession, user_id: int, refresh_token: str | None) -> None:
        """Revoke the presented token's family, or every family of the user when none given."""
        if refresh_token:
            row = await s.scalar(
                select(RefreshToken).where(
                    RefreshToken.token_hash == hash_token(refresh_token),
                    RefreshToken.user_id == user_id,
                )
            )
            if row is not None:
                await self._revoke_family(s, row.family_id)
            return
        await s.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )

    async def change_password(self, s: AsyncSession, user: User, current: str, new: str) -> None:
        if not await verify_password(user.password_hash, current):
            raise Unauthorized("Current password is wrong", code=ErrorCode.INVALID_CREDENTIALS)
        problems = policy_violations(new, username=user.username, email=user.email)
        if problems:
            raise ValidationFailed("Password does not meet the policy", details=problems)
        user.password_hash = await hash_password(new)
        # Every other session must log in again with the new password.
        await self.logout(s, user.id, None)

    @staticmethod
    async def _revoke_family(s: AsyncSession, family_id: str) -> None:
        await s.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
