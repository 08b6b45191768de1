"""ICE servers handed to a joining client: STUN as configured, TURN with short-lived credentials.

TURN credentials follow coturn's `use-auth-secret` (the "TURN REST API" draft): the username is
`"{expiry_unix}:{user_id}"` and the credential is base64(HMAC-SHA1(secret, username)), so coturn
can check them without a database and they stop working after `turn_ttl` seconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from confer.config import Settings


@dataclass(frozen=True, slots=True)
class IceServer:
    urls: str
    username: str | None = None
    credential: str | None = None


def turn_credentials(
    secret: str, user_id: int, ttl: int, now: float | None = None
) -> tuple[str, str]:
    """Return (username, credential) valid until now + ttl."""
    expiry = int(now if now is not None else time.time()) + ttl
    username = f"{expiry}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers_for(settings: Settings, user_id: int) -> list[IceServer]:
    """One entry per URL, as the contract's example shows (`urls` is a single string).

    TURN URLs without `turn_secret` are passed on bare: the operator runs an open relay.
    """
    servers = [IceServer(urls=url) for url in settings.stun_servers]
    if settings.turn_urls:
        if settings.turn_secret:
            username, credential = turn_credentials(
                settings.turn_secret, user_id, settings.turn_ttl
            )
            servers += [IceServer(url, username, credential) for url in settings.turn_urls]
        else:
            servers += [IceServer(urls=url) for url in settings.turn_urls]
    return servers
