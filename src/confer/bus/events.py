"""Events that REST handlers publish for the signaling hub, on topic `meeting_topic(id)`.

Each is a dict with an `event` key; the hub of every process turns them into signaling messages
for its own sockets (docs/protocol.md lists the resulting messages).
"""

from __future__ import annotations

from typing import Any

KICKED = "kicked"  # {user_id, reason, by}
ENDED = "ended"  # {by}
ROLE_CHANGED = "role_changed"  # {user_id, role, by}
MUTED = "muted"  # {user_id, media_type, by}   host / co-host muted someone
MUTE_ALL = "mute_all"  # {media_type, by, except_user_ids}
SCREEN_SHARE_PERMISSION = "screen_share_permission"  # {user_id, allowed, by}
MEETING_UPDATED = "meeting_updated"  # {fields}
LEFT = "left"  # {user_id}   left through REST


def meeting_topic(meeting_id: int) -> str:
    return f"meeting:{meeting_id}"


def event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"event": kind, **fields}
