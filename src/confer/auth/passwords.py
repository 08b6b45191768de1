"""argon2id hashing, run off the event loop because each hash costs tens of milliseconds."""

from __future__ import annotations

import asyncio
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's RFC 9106 low-memory profile

# Verified against when a user does not exist, so timing does not reveal which usernames exist.
_DUMMY_HASH = _hasher.hash("confer-timing-equaliser")

MIN_LENGTH = 8
MAX_LENGTH = 128


def policy_violations(password: str, *, username: str = "", email: str = "") -> list[str]:
    """Everything wrong with a password, in plain words (empty when acceptable)."""
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append(f"Password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        problems.append(f"Password must be at most {MAX_LENGTH} characters long")
    classes = sum(
        bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]")
    )
    if classes < 3:
        problems.append(
            "Password must mix at least three of: lower-case, upper-case, digits, symbols"
        )
    lowered = password.lower()
    if username and username.lower() in lowered:
        problems.append("Password must not contain the username")
    if email and email.split("@")[0].lower() in lowered and len(email.split("@")[0]) >= 3:
        problems.append("Password must not contain the e-mail name")
    return problems


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """Constant-ish time: a missing user still costs one verification."""
    return await asyncio.to_thread(_verify, stored, password)
