"""JWT access tokens with the contract's claims, and opaque refresh / session tokens."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt

from confer.errors import token_expired, token_invalid

ALGORITHM = "HS256"
LEEWAY = 5  # seconds of clock skew tolerated on exp / nbf
_VERIFIED_CACHE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    username: str
    email: str
    exp: int


class TokenCodec:
    def __init__(self, secret: str, issuer: str, access_ttl: int) -> None:
        self.secret = secret
        self.issuer = issuer
        self.access_ttl = access_ttl
        # Verifying an HS256 JWT costs more than the rest of a typical request; a token's
        # content cannot change, so each one is verified once and its claims kept until expiry.
        self._verified: dict[str, AccessClaims] = {}

    def issue_access(self, user_id: int, username: str, email: str) -> str:
        now = int(time.time())
        claims = {
            "user_id": user_id,
            "username": username,
            "email": email,
            "iat": now,
            "exp": now + self.access_ttl,
            "nbf": now,
            "iss": self.issuer,
            "sub": str(user_id),
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def decode_access(self, token: str) -> AccessClaims:
        """Raise 10005 for an expired token and 10004 for anything else wrong with it."""
        known = self._verified.get(token)
        if known is not None:
            if time.time() > known.exp + LEEWAY:
                del self._verified[token]
                raise token_expired()
            return known
        verified = self._verify_access(token)
        if len(self._verified) >= _VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = verified
        return verified

    def _verify_access(self, token: str) -> AccessClaims:
        claims = self._decode(token, required=["exp", "iat", "nbf", "iss", "sub", "user_id"])
        if claims.get("typ") not in (None, "access"):
            raise token_invalid("Not an access token")
        try:
            user_id = int(claims["user_id"])
        except (TypeError, ValueError):
            raise token_invalid("Malformed user_id claim") from None
        if str(user_id) != str(claims["sub"]):
            raise token_invalid("Inconsistent subject")
        return AccessClaims(
            user_id, str(claims.get("username", "")), str(claims.get("email", "")), claims["exp"]
        )

    def issue_session(self, user_id: int, meeting_id: int, participant_id: int, ttl: int) -> str:
        """A meeting-scoped token returned by join, accepted by the signaling socket."""
        now = int(time.time())
        claims = {
            "typ": "session",
            "user_id": user_id,
            "meeting_id": meeting_id,
            "participant_id": participant_id,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "iss": self.issuer,
            "sub": str(user_id),
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def decode_session(self, token: str) -> dict[str, Any]:
        claims = self._decode(token, required=["exp", "sub", "meeting_id", "user_id"])
        if claims.get("typ") != "session":
            raise token_invalid("Not a session token")
        return claims

    def _decode(self, token: str, required: list[str]) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                options={"require": required},
                leeway=LEEWAY,
            )
        except jwt.ExpiredSignatureError:
            raise token_expired() from None
        except jwt.PyJWTError as exc:
            raise token_invalid(str(exc) or "Token is invalid") from None


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
