"""Helpers for the meeting tests: meetings with a cast of roles, the server's own database,
and the server's event bus seen from Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.support.api import Api, User, ok
from tests.support.servers import ConferServer, Redis

MEETING_PASSWORD = "meeting123"


def register(api: Api, full_name: str = "Test User") -> User:
    return api.register(full_name=full_name)


def create_meeting(api: Api, host: User, **fields: Any) -> dict[str, Any]:
    body = {"title": "项目讨论会", **fields}
    return ok(api.post("/api/v1/meetings", host, json=body), 201)  # type: ignore[no-any-return]


def join(
    api: Api, user: User | None, meeting_id: int, password: str | None = None
) -> httpx.Response:
    body = {"password": password} if password is not None else {}
    return api.post(f"/api/v1/meetings/{meeting_id}/join", user, json=body)


@dataclass
class Cast:
    """A meeting with one person of each role in it, and an outsider who never joined."""

    meeting: dict[str, Any]
    host: User
    co_host: User
    participant: User
    audience: User
    outsider: User
    pids: dict[int, int] = field(default_factory=dict)  # user id -> participant id

    @property
    def id(self) -> int:
        return int(self.meeting["meeting_id"])

    def pid(self, user: User) -> int:
        return self.pids[user.user_id]

    def path(self, suffix: str = "") -> str:
        return f"/api/v1/meetings/{self.id}{suffix}"


_CAST_NAMES = ("Host", "Co", "Part", "Aud", "Out")
_regulars: dict[str, list[User]] = {}


def regulars(api: Api) -> list[User]:
    """Five accounts per server reused by every cast: each test casts them in a new meeting,
    and registering (an argon2 hash each) is the slowest step of a test."""
    if api.base_url not in _regulars:
        _regulars[api.base_url] = [register(api, name) for name in _CAST_NAMES]
    return _regulars[api.base_url]


def cast(api: Api, **fields: Any) -> Cast:
    host, *others = regulars(api)
    meeting = create_meeting(api, host, **fields)
    c = Cast(meeting, host, *others)
    password = fields.get("settings", {}).get("password")
    for user in (c.host, c.co_host, c.participant, c.audience):
        c.pids[user.user_id] = ok(join(api, user, c.id, password))["participant_id"]
    for user, role in ((c.co_host, "co_host"), (c.audience, "audience")):
        path = c.path(f"/participants/{c.pid(user)}/role")
        ok(api.put(path, c.host, json={"role": role}))
    return c


class ServerDb:
    """Reads and writes the server's database directly, for what the API does not expose."""

    def __init__(self, server: ConferServer) -> None:
        self.url = server.env.get("CONFER_DATABASE_URL") or (
            f"sqlite+aiosqlite:///{server.data_dir / 'confer.db'}"
        )

    def run(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        async def go() -> list[dict[str, Any]]:
            engine = create_async_engine(self.url, poolclass=NullPool)
            try:
                async with engine.begin() as conn:
                    result = await conn.execute(text(sql), params)
                    return [dict(r._mapping) for r in result] if result.returns_rows else []
            finally:
                await engine.dispose()

        return asyncio.run(go())

    def add_chat(self, meeting_id: int, sender: User, content: str, to: User | None = None) -> int:
        rows = self.run(
            "INSERT INTO chat_messages (meeting_id, sender_id, sender_name, to_user_id, content,"
            " created_at) VALUES (:m, :s, :n, :t, :c, CURRENT_TIMESTAMP) RETURNING id",
            m=meeting_id,
            s=sender.user_id,
            n=sender.username,
            t=to.user_id if to else None,
            c=content,
        )
        return int(rows[0]["id"])

    def audit(self, meeting_id: int) -> list[dict[str, Any]]:
        return self.run(
            "SELECT actor_id, action, target_user_id, details FROM audit_log"
            " WHERE meeting_id = :m ORDER BY id",
            m=meeting_id,
        )


class BusListener:
    """Subscribes to a meeting's topic on the server's Redis bus, as a signaling hub would."""

    def __init__(self, r: Redis, meeting_id: int) -> None:
        self.client = redis.Redis.from_url(r.url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(f"confer:bus:meeting:{meeting_id}")
        self.seen: list[dict[str, Any]] = []

    def wait_for(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first event matching `match`; raises if none arrives (publish is after commit)."""
        for ev in self.seen:
            if match(ev):
                return ev
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.pubsub.get_message(timeout=0.5)
            if msg and msg["type"] == "message":
                ev = orjson.loads(msg["data"])
                self.seen.append(ev)
                if match(ev):
                    return ev
        raise AssertionError(f"no matching event; saw {self.seen}")

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


TURN_SECRET = "north-wind-turn-secret-for-tests"
CONFIGURED_ENV = {
    "CONFER_STUN_SERVERS": "stun:stun.example.org:3478,stun:127.0.0.1:3478",
    "CONFER_TURN_URLS": "turn:turn.example.org:3478?transport=udp,turns:turn.example.org:5349",
    "CONFER_TURN_SECRET": TURN_SECRET,
    "CONFER_TURN_TTL": "600",
    "CONFER_PUBLIC_URL": "https://meet.example.org/",
    "CONFER_MEETING_PASSWORD_ATTEMPTS": "3",
    "CONFER_MEETING_SESSION_TTL": "1200",
}
_configured: dict[str, ConferServer] = {}


def configured_server(factory: Callable[..., ConferServer], r: Redis) -> ConferServer:
    """One server (per test session) with ICE, a public URL, a Redis bus and a low password
    limit; shared by the test modules that need them."""
    if "server" not in _configured:
        _configured["server"] = factory({**CONFIGURED_ENV, "CONFER_REDIS_URL": r.url})
    return _configured["server"]
