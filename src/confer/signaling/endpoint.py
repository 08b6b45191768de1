"""`/ws/signaling`: admission, then one receive loop per socket.

It is a plain ASGI app (not a FastAPI function endpoint) so each message costs only the
protocol work. A refused connection is accepted first, told why in an `error` (13) message,
and closed with a 4xxx code, so a browser (which never sees HTTP refusals) learns the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from confer.errors import (
    AppError,
    ErrorCode,
    Forbidden,
    RateLimited,
    Unavailable,
    ValidationFailed,
    token_invalid,
)
from confer.ratelimit import MemoryRateLimiter, Rate
from confer.signaling import protocol as p
from confer.signaling.codec import negotiate
from confer.signaling.connection import Connection
from confer.signaling.protocol import CloseCode, MsgType, SignalCode, SignalError
from confer.signaling.wire import EXTENSION

if TYPE_CHECKING:
    from confer.auth.tokens import TokenCodec
    from confer.signaling.handlers import Handlers
    from confer.signaling.hub import Hub

log = logging.getLogger(__name__)

CLOSE_FOR_CODE = {
    ErrorCode.TOKEN_INVALID: CloseCode.TOKEN_INVALID,
    ErrorCode.TOKEN_EXPIRED: CloseCode.TOKEN_EXPIRED,
    ErrorCode.MEETING_NOT_FOUND: CloseCode.MEETING_NOT_FOUND,
    ErrorCode.MEETING_ENDED: CloseCode.MEETING_ENDED,
    403: CloseCode.FORBIDDEN,
    400: CloseCode.BAD_REQUEST,
    429: CloseCode.TOO_MANY_CONNECTIONS,
}


@dataclass(frozen=True, slots=True)
class Query:
    token: str
    meeting_id: int
    user_id: int
    peer_id: str
    session_id: str | None


def parse_query(raw: bytes) -> Query:
    params = parse_qs(raw.decode("latin-1"))

    def one(name: str, required: bool = True) -> str | None:
        values = params.get(name)
        if not values or not values[0]:
            if required:
                raise ValidationFailed(f"Query parameter `{name}` is required")
            return None
        return values[0]

    def integer(name: str) -> int:
        text = one(name) or ""
        if not text.isdigit() or len(text) > 15:
            raise ValidationFailed(f"Query parameter `{name}` must be a positive integer")
        return int(text)

    token = one("token") or ""
    meeting_id, user_id = integer("meeting_id"), integer("user_id")
    peer_id = one("peer_id") or ""
    if len(peer_id) > p.MAX_ID_LENGTH:
        raise ValidationFailed(f"`peer_id` is longer than {p.MAX_ID_LENGTH} characters")
    session_id = one("session_id", required=False)
    if session_id is not None and len(session_id) > 64:
        raise ValidationFailed("`session_id` is longer than 64 characters")
    return Query(token, meeting_id, user_id, peer_id, session_id)


def authenticate(codec: TokenCodec, token: str, meeting_id: int) -> int:
    """The user id of an access token, or of a session token issued by join for this meeting."""
    try:
        return codec.decode_access(token).user_id
    except AppError as exc:
        if exc.code != ErrorCode.TOKEN_INVALID:
            raise
        try:
            claims = codec.decode_session(token)
        except AppError:
            raise exc from None
        if int(claims["meeting_id"]) != meeting_id:
            raise token_invalid("The session token is for another meeting") from None
        return int(claims["user_id"])


class SignalingEndpoint:
    """ASGI app mounted at `/ws/signaling`; finds the hub on `app.state.signaling`."""

    def __init__(self) -> None:
        self.attempts = MemoryRateLimiter()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        hub: Hub = scope["app"].state.signaling
        handlers: Handlers = scope["app"].state.signaling_handlers
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        codec, subprotocol = negotiate(list(scope.get("subprotocols") or ()))
        await send({"type": "websocket.accept", "subprotocol": subprotocol})
        st = hub.settings
        conn = Connection(
            send,
            codec,
            queue_limit=st.ws_send_queue,
            rate=st.ws_rate_limit_rps,
            burst=st.ws_rate_limit_burst,
            wire=(scope.get("extensions") or {}).get(EXTENSION),
        )
        try:
            client = scope.get("client") or ("unknown", 0)
            attempt = self.attempts.take(
                str(client[0]), Rate(st.ws_connect_rate, st.ws_connect_burst)
            )
            if not attempt.allowed:
                raise RateLimited(
                    "Too many connection attempts",
                    details=f"retry in {attempt.retry_after_header} s",
                )
            query = parse_query(scope.get("query_string", b""))
            user_id = authenticate(hub.ctx.codec, query.token, query.meeting_id)
            if user_id != query.user_id:
                raise Forbidden("`user_id` is not the token's user")
            async with hub.admission_slots:
                admission = await hub.records.admit(query.meeting_id, user_id)
            session = await hub.open(conn, admission, query.peer_id, query.session_id)
        except AppError as exc:
            await _refuse(hub, conn, exc)
            await _drain(receive)
            return
        except Exception:  # e.g. the database is unavailable: say so rather than vanish
            log.exception("signaling admission failed")
            await _refuse(hub, conn, Unavailable("Signaling is unavailable; retry shortly"), 1011)
            await _drain(receive)
            return
        # A client too slow for its send queue is dropped (and may resume, like any drop).
        conn.on_overflow = lambda c: hub.dropped(session, c)
        serving = asyncio.create_task(_serve(hub, handlers, session, conn, receive))
        given_up = asyncio.create_task(conn.finished.wait())
        try:
            await asyncio.wait((serving, given_up), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (serving, given_up):
                task.cancel()
            hub.dropped(session, conn)
            if not conn.closed:
                await conn.close(CloseCode.NORMAL, "")


async def _refuse(hub: Hub, conn: Connection, exc: AppError, close: int | None = None) -> None:
    code = exc.envelope_code
    if close is None:
        close = CLOSE_FOR_CODE.get(code, CloseCode.FORBIDDEN if exc.status == 403 else 4000)
    payload = p.error_payload(code, exc.message, details=exc.details, error_type=exc.type)
    conn.push_wire(conn.codec.encode(p.message(MsgType.ERROR, 0, payload)))
    await conn.close(close, exc.message)


async def _drain(receive: Any) -> None:
    """Wait for the client's close so the close handshake completes."""
    with contextlib.suppress(Exception, asyncio.TimeoutError):
        async with asyncio.timeout(5):
            while (await receive())["type"] != "websocket.disconnect":
                pass


async def _serve(hub: Hub, handlers: Handlers, s: Any, conn: Connection, receive: Any) -> None:
    limit = hub.settings.ws_max_message_bytes
    codec = conn.codec
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            return
        data = event.get("text")
        if data is None:
            data = event.get("bytes")
            if data is None:
                continue
        if conn.closed:
            continue  # closing: read until the peer's close arrives
        now = time.monotonic()
        conn.last_activity = now
        msg_id: str | None = None
        msg_type: int | None = None
        try:
            size = len(data)
            if not isinstance(data, bytes) and size * 4 > limit:  # UTF-8: <= 4 bytes a char
                size = len(data.encode())
            if size > limit:
                raise SignalError(
                    SignalCode.TOO_LARGE, f"Messages are limited to {limit} bytes ({size} sent)"
                )
            if not conn.rate.take(now):
                raise SignalError(
                    SignalCode.RATE_LIMITED,
                    f"Too many messages: at most {hub.settings.ws_rate_limit_rps:g} a second",
                )
            env = codec.decode(data)
            if isinstance(env, dict):
                raw_id, raw_type = env.get("id"), env.get("type")
                msg_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= 128 else None
                msg_type = raw_type if isinstance(raw_type, int) else None
            await handlers.handle(s, p.parse(env, s.meeting_id))
        except SignalError as exc:
            _answer(hub, s, conn, now, exc.code, exc.message, msg_id, msg_type, exc.details, None)
        except AppError as exc:
            _answer(
                hub,
                s,
                conn,
                now,
                exc.envelope_code,
                exc.message,
                msg_id,
                msg_type,
                exc.details if exc.details != exc.message else None,
                exc.type,
            )
        except Exception:
            log.exception("signaling message handling failed")
            _answer(
                hub,
                s,
                conn,
                now,
                SignalCode.INTERNAL,
                "Internal error; it has been logged",
                msg_id,
                msg_type,
                None,
                None,
            )


def _answer(
    hub: Hub,
    s: Any,
    conn: Connection,
    now: float,
    code: int,
    text: str,
    msg_id: str | None,
    msg_type: int | None,
    details: Any,
    error_type: str | None,
) -> None:
    hub.error(
        s,
        code,
        text,
        request_id=msg_id,
        request_type=msg_type,
        details=details,
        error_type=error_type,
    )
    if not conn.abuse.take(now):
        conn.close_soon(CloseCode.ABUSE, "Too many refused messages")
