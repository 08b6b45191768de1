"""A small signaling test client over a real WebSocket, and meetings made through REST."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.support.api import Api, User, ok
from tests.support.servers import ConferServer

WAIT = 10.0  # generous upper bound for "arrives": tests never assert how fast
_peers = itertools.count(1)


def register(api: Api, full_name: str = "Test User") -> User:
    """Register, then wait until the account is visible (REST commits after responding)."""
    user = api.register(full_name=full_name)
    deadline = time.monotonic() + 10
    while api.get("/api/v1/users/profile", user).status_code != 200:
        assert time.monotonic() < deadline, "registered user never became visible"
        time.sleep(0.02)
    return user


@dataclass
class Meeting:
    id: int
    host: User
    members: list[User]
    pids: dict[int, int] = field(default_factory=dict)

    def path(self, suffix: str = "") -> str:
        return f"/api/v1/meetings/{self.id}{suffix}"


def meeting(api: Api, n_members: int = 1, **fields: Any) -> Meeting:
    """A meeting whose host and `n_members` registered users have all joined over REST."""
    host = register(api, "Host Person")
    data = ok(api.post("/api/v1/meetings", host, json={"title": "项目讨论会", **fields}), 201)
    m = Meeting(
        int(data["meeting_id"]), host, [register(api, f"Member {i}") for i in range(n_members)]
    )
    for user in (host, *m.members):
        m.pids[user.user_id] = ok(api.post(m.path("/join"), user, json={}))["participant_id"]
    return m


def ws_url(server: ConferServer, user: User, meeting_id: int, peer_id: str, **extra: Any) -> str:
    q = f"token={user.token}&meeting_id={meeting_id}&user_id={user.user_id}&peer_id={peer_id}"
    for k, v in extra.items():
        q += f"&{k}={v}"
    return f"{server.ws_url}?{q}"


class Client:
    """One socket. `next(type)` returns the next message of that type, keeping the others."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.inbox: list[dict[str, Any]] = []
        self.raw: list[str | bytes] = []

    @classmethod
    async def connect(
        cls,
        server: ConferServer,
        user: User,
        meeting_id: int,
        peer_id: str | None = None,
        *,
        first: int | None = 14,
        **kw: Any,
    ) -> Client:
        extra = kw.pop("query", {})
        url = ws_url(server, user, meeting_id, peer_id or f"peer_{next(_peers)}", **extra)
        ws = await websockets.connect(url, open_timeout=WAIT, **kw)
        c = cls(ws)
        if first is not None:
            await c.next(first)
        return c

    async def send(self, msg: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(msg if isinstance(msg, str | bytes) else orjson.dumps(msg).decode())

    async def _read(self, wait: float) -> dict[str, Any]:
        data = await asyncio.wait_for(self.ws.recv(), wait)
        self.raw.append(data)
        return orjson.loads(data)  # type: ignore[no-any-return]

    async def next(
        self, msg_type: int | None = None, wait: float = WAIT, **match: Any
    ) -> dict[str, Any]:
        def fits(m: dict[str, Any]) -> bool:
            if msg_type is not None and m.get("type") != msg_type:
                return False
            return all(m.get("payload", {}).get(k) == v for k, v in match.items())

        for i, m in enumerate(self.inbox):
            if fits(m):
                return self.inbox.pop(i)
        deadline = time.monotonic() + wait
        while True:
            m = await self._read(max(0.01, deadline - time.monotonic()))
            if fits(m):
                return m
            self.inbox.append(m)

    async def request(self, msg: dict[str, Any], reply: int, **match: Any) -> dict[str, Any]:
        await self.send(msg)
        return await self.next(reply, **match)

    async def quiet(self, msg_type: int, seconds: float = 0.3) -> bool:
        """True when no message of `msg_type` arrives within `seconds` (after a barrier)."""
        if any(m.get("type") == msg_type for m in self.inbox):
            return False
        try:
            await self.next(msg_type, wait=seconds)
        except TimeoutError:
            return True
        return False

    async def sync(self) -> None:
        """A ping round trip: every message the server sent before the pong is now in."""
        await self.send({"type": 11, "payload": {}})
        await self.next(12)

    async def closed(self, wait: float = WAIT) -> tuple[int, str]:
        """Read until the server closes; return (code, reason)."""
        try:
            while True:
                await self._read(wait)
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            return (rcvd.code, rcvd.reason) if rcvd else (1006, "")
        except TimeoutError:
            raise AssertionError(
                f"the server did not close the socket ({len(self.raw)} read)"
            ) from None

    async def close(self) -> None:
        await self.ws.close()


def spec_message(msg_type: int, payload: dict[str, Any], **env: Any) -> dict[str, Any]:
    return {
        "id": env.pop("id", "msg_test"),
        "type": msg_type,
        "from_user_id": env.pop("from_user_id", 1),
        "meeting_id": env.pop("meeting_id", None),
        "session_id": "session_abc123",
        "peer_id": "peer_xyz789",
        "payload": payload,
        "timestamp": "2025-10-01T10:00:00Z",
        **env,
    }
