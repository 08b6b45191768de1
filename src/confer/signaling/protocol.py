"""The signaling envelope: message types, validation of what clients send, server messages.

Validation is strict about types and sizes and lenient about extra fields (clients may add
fields later). Whatever a client claims as its identity (`from_user_id`, `session_id`,
`peer_id`) is never trusted: the connection's own values go on every message it causes.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any


class MsgType(IntEnum):
    # The contract's 14 types.
    OFFER = 1
    ANSWER = 2
    ICE_CANDIDATE = 3
    JOIN_ROOM = 4
    LEAVE_ROOM = 5
    USER_JOINED = 6
    USER_LEFT = 7
    CHAT = 8
    SCREEN_SHARE = 9
    MEDIA_CONTROL = 10
    PING = 11
    PONG = 12
    ERROR = 13
    ROOM_INFO = 14
    # Extensions of the signaling service (docs/protocol.md); 20 and up belong to media / AI.
    ROLE_CHANGED = 15
    KICKED = 16
    MEETING_ENDED = 17
    MEETING_UPDATED = 18


# Types a client may send; every other known type is server-to-client only.
CLIENT_TYPES = frozenset(
    {
        MsgType.OFFER,
        MsgType.ANSWER,
        MsgType.ICE_CANDIDATE,
        MsgType.JOIN_ROOM,
        MsgType.LEAVE_ROOM,
        MsgType.CHAT,
        MsgType.SCREEN_SHARE,
        MsgType.MEDIA_CONTROL,
        MsgType.PING,
    }
)
# Client types from other subsystems (the SFU's extensions), routed to the media plane.
MEDIA_CLIENT_TYPES: set[int] = set()
MEDIA_TYPES = frozenset({MsgType.OFFER, MsgType.ANSWER, MsgType.ICE_CANDIDATE})


class SignalCode:
    """`payload.code` of error messages: HTTP-like codes, or the contract's business codes."""

    BAD_REQUEST = 400
    FORBIDDEN = 403
    NOT_FOUND = 404
    CONFLICT = 409
    TOO_LARGE = 413
    RATE_LIMITED = 429
    INTERNAL = 500
    UNAVAILABLE = 503


class CloseCode:
    """WebSocket close codes (4xxx) telling a client why the server closed its socket."""

    NORMAL = 1000
    GOING_AWAY = 1001
    BAD_REQUEST = 4000
    TOKEN_INVALID = 4001
    TOKEN_EXPIRED = 4002
    FORBIDDEN = 4003
    MEETING_NOT_FOUND = 4004
    MEETING_ENDED = 4005
    KICKED = 4006
    REPLACED = 4007
    IDLE_TIMEOUT = 4008
    SLOW_CONSUMER = 4009
    ABUSE = 4010
    TOO_MANY_CONNECTIONS = 4029


ERROR_TYPES = {
    400: "ValidationError",
    403: "PermissionDenied",
    404: "NotFound",
    409: "Conflict",
    413: "PayloadTooLarge",
    429: "RateLimited",
    500: "InternalError",
    503: "ServiceUnavailable",
}

MAX_ID_LENGTH = 128
MAX_SDP_LENGTH = 60_000
MAX_CANDIDATE_LENGTH = 1024


class SignalError(Exception):
    """A refusal of one message, answered with an `error` (13) and never a close."""

    def __init__(self, code: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


def bad(message: str, details: Any = None) -> SignalError:
    return SignalError(SignalCode.BAD_REQUEST, message, details)


def forbidden(message: str) -> SignalError:
    return SignalError(SignalCode.FORBIDDEN, message)


@dataclass(slots=True)
class Inbound:
    """One validated client message. Identity fields are the connection's, not the client's."""

    type: int
    id: str | None
    to_user_id: int
    to_peer_id: str | None
    payload: dict[str, Any] = field(default_factory=dict)


def _opt_int(env: dict[str, Any], key: str, *, minimum: int = 0) -> int | None:
    value = env.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"`{key}` must be an integer")
    if value < minimum or value > 2**53:
        raise bad(f"`{key}` is out of range")
    return value


def _opt_str(env: dict[str, Any], key: str, limit: int = MAX_ID_LENGTH) -> str | None:
    value = env.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad(f"`{key}` must be a string")
    if len(value) > limit:
        raise bad(f"`{key}` is longer than {limit} characters")
    return value


def parse(env: Any, meeting_id: int) -> Inbound:
    """Validate an envelope decoded from JSON (or Protobuf) against the contract."""
    if not isinstance(env, dict):
        raise bad("A message must be a JSON object with the envelope fields")
    msg_type = env.get("type")
    if isinstance(msg_type, bool) or not isinstance(msg_type, int):
        raise bad("`type` must be an integer message type")
    if msg_type not in CLIENT_TYPES and msg_type not in MEDIA_CLIENT_TYPES:
        if msg_type in MsgType.__members__.values():
            raise bad(f"Message type {msg_type} is sent by the server only")
        raise bad(f"Unknown message type {msg_type}")
    msg_id = _opt_str(env, "id")
    _opt_int(env, "from_user_id")  # checked for type, then ignored: the server sets it
    to_user_id = _opt_int(env, "to_user_id") or 0
    claimed_meeting = _opt_int(env, "meeting_id")
    if claimed_meeting is not None and claimed_meeting != meeting_id:
        raise bad(f"`meeting_id` {claimed_meeting} is not this connection's meeting {meeting_id}")
    _opt_str(env, "session_id")
    _opt_str(env, "peer_id")
    _opt_str(env, "timestamp", 64)
    to_peer_id = _opt_str(env, "to_peer_id")
    payload = env.get("payload")
    if payload is None:
        payload = {}
    elif not isinstance(payload, dict):
        raise bad("`payload` must be an object")
    return Inbound(msg_type, msg_id, to_user_id, to_peer_id, payload)


# --- payload validation, per client type -------------------------------------------------


def sdp_payload(msg: Inbound) -> dict[str, Any]:
    p = msg.payload
    expected = "offer" if msg.type == MsgType.OFFER else "answer"
    sdp = p.get("sdp")
    if not isinstance(sdp, str) or not sdp:
        raise bad("`payload.sdp` must be a non-empty string")
    if len(sdp) > MAX_SDP_LENGTH:
        raise bad(f"`payload.sdp` is longer than {MAX_SDP_LENGTH} characters")
    kind = p.get("type", expected)
    if kind != expected:
        raise bad(f"`payload.type` must be {expected!r} for message type {msg.type}")
    return {**p, "type": expected}


def candidate_payload(msg: Inbound) -> dict[str, Any]:
    p = msg.payload
    candidate = p.get("candidate")
    if not isinstance(candidate, str) or len(candidate) > MAX_CANDIDATE_LENGTH:
        raise bad("`payload.candidate` must be a string (empty for end-of-candidates)")
    mid = p.get("sdpMid")
    if mid is not None and (not isinstance(mid, str) or len(mid) > 64):
        raise bad("`payload.sdpMid` must be a string or null")
    index = p.get("sdpMLineIndex")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
        raise bad("`payload.sdpMLineIndex` must be an integer or null")
    if isinstance(index, int) and not 0 <= index < 1024:
        raise bad("`payload.sdpMLineIndex` is out of range")
    if mid is None and index is None and candidate:
        raise bad("An ICE candidate needs `sdpMid` or `sdpMLineIndex`")
    return p


def media_payload(msg: Inbound) -> dict[str, Any]:
    if msg.type == MsgType.ICE_CANDIDATE:
        return candidate_payload(msg)
    if msg.type in (MsgType.OFFER, MsgType.ANSWER):
        return sdp_payload(msg)
    return msg.payload


def chat_content(msg: Inbound, max_length: int) -> str:
    content = msg.payload.get("content")
    if not isinstance(content, str):
        raise bad("`payload.content` must be a string")
    # Control characters other than newline and tab have no place in chat.
    content = "".join(ch for ch in content if ch >= " " or ch in "\n\t").strip()
    if not content:
        raise bad("`payload.content` is empty")
    if len(content) > max_length:
        raise SignalError(
            SignalCode.TOO_LARGE, f"Chat messages are limited to {max_length} characters"
        )
    return content


MEDIA_ACTIONS = {
    "mute": None,
    "unmute": None,
    "video_on": "video",
    "video_off": "video",
}


@dataclass(frozen=True, slots=True)
class MediaControl:
    action: str  # mute | unmute (applies to media_type) ; video_on / video_off normalised
    media_type: str  # audio | video
    target_user_id: int | None  # None: myself
    everyone: bool


def media_control(msg: Inbound, self_user_id: int) -> MediaControl:
    p = msg.payload
    action = p.get("action")
    if action not in MEDIA_ACTIONS:
        raise bad("`payload.action` must be one of mute, unmute, video_on, video_off")
    implied = MEDIA_ACTIONS[action]
    media_type = p.get("media_type", implied or "audio")
    if media_type not in ("audio", "video") or (implied and media_type != implied):
        raise bad(f"`payload.media_type` must be 'audio' or 'video' (and 'video' for {action})")
    if action == "video_on":
        action = "unmute"
    elif action == "video_off":
        action = "mute"
    target = p.get("user_id")
    if target is not None and (isinstance(target, bool) or not isinstance(target, int)):
        raise bad("`payload.user_id` must be an integer")
    everyone = p.get("scope") == "all"
    if "scope" in p and p["scope"] not in ("all", "self", None):
        raise bad("`payload.scope` must be 'all' or absent")
    if everyone and action != "mute":
        raise bad("Only `mute` applies to everyone")
    return MediaControl(
        action, media_type, None if target in (None, self_user_id) else target, everyone
    )


SHARE_ACTIONS = ("start", "stop", "grant", "revoke")


def screen_share(msg: Inbound, self_user_id: int) -> tuple[str, int | None]:
    p = msg.payload
    action = p.get("action")
    if action not in SHARE_ACTIONS:
        raise bad("`payload.action` must be one of start, stop, grant, revoke")
    target = p.get("user_id")
    if target is not None and (isinstance(target, bool) or not isinstance(target, int)):
        raise bad("`payload.user_id` must be an integer")
    if target == self_user_id:
        target = None
    if action in ("grant", "revoke") and target is None:
        raise bad(f"`{action}` needs the `payload.user_id` of another participant")
    if action == "start" and target is not None:
        raise forbidden("Nobody can start a screen share for someone else")
    return action, target


def join_room(msg: Inbound, meeting_id: int, user_id: int) -> None:
    """The contract's join-room payload repeats the identity; it must agree with the token."""
    p = msg.payload
    if "meeting_id" in p and p["meeting_id"] != meeting_id:
        raise bad("`payload.meeting_id` is not this connection's meeting")
    if "user_id" in p and p["user_id"] != user_id:
        raise forbidden("`payload.user_id` is not the authenticated user")


# --- server messages ------------------------------------------------------------------------

_prefix = os.urandom(3).hex()
_counter = itertools.count(1)


def new_id() -> str:
    return f"msg_{_prefix}{next(_counter):x}"


def now_iso() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def message(
    msg_type: int,
    meeting_id: int,
    payload: dict[str, Any],
    *,
    from_user_id: int = 0,
    to_user_id: int | None = None,
    session_id: str | None = None,
    peer_id: str | None = None,
) -> dict[str, Any]:
    """A message in the contract's envelope, with a fresh `id` and `timestamp`."""
    env: dict[str, Any] = {
        "id": new_id(),
        "type": int(msg_type),
        "from_user_id": from_user_id,
    }
    if to_user_id:
        env["to_user_id"] = to_user_id
    env["meeting_id"] = meeting_id
    if session_id is not None:
        env["session_id"] = session_id
    if peer_id is not None:
        env["peer_id"] = peer_id
    env["payload"] = payload
    env["timestamp"] = now_iso()
    return env


def error_payload(
    code: int,
    text: str,
    *,
    request_id: str | None = None,
    request_type: int | None = None,
    details: Any = None,
    error_type: str | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "code": code,
        "message": text,
        "error_type": error_type or ERROR_TYPES.get(code, "Error"),
    }
    if details is not None:
        payload["details"] = details
    if request_id is not None:
        payload["request_id"] = request_id
    if request_type is not None:
        payload["request_type"] = request_type
    return payload
