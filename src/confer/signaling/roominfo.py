"""room-info (14): what a socket learns about its room when it joins, resumes or asks again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from confer.config import Settings
from confer.signaling.presence import Entry
from confer.signaling.protocol import MsgType, iso, message

if TYPE_CHECKING:
    from confer.signaling.hub import Hub
    from confer.signaling.rooms import Session


def people(entries: list[Entry]) -> int:
    """`participant_count`: people, however many sessions (tabs, devices) each has."""
    return len({e["user_id"] for e in entries})


def public(e: Entry) -> dict[str, Any]:
    """The part of a presence entry every participant may see."""
    return {
        "user_id": e["user_id"],
        "username": e["username"],
        "full_name": e.get("full_name", ""),
        "session_id": e["session_id"],
        "peer_id": e["peer_id"],
        "role": e.get("role", "participant"),
        "joined_at": e["joined_at"],
        "last_active_at": e.get("last_active_at", e["joined_at"]),
        "audio_muted": bool(e.get("audio_muted")),
        "video_muted": bool(e.get("video_muted")),
        "sharing": bool(e.get("sharing")),
        "connected": bool(e.get("connected", True)),
    }


def ice_servers(settings: Settings, user_id: int) -> list[dict[str, str]]:
    """The same list as the REST join answer (STUN, TURN with short-lived credentials)."""
    try:
        from confer.services.ice import ice_servers_for
    except ImportError:  # the meetings service is not installed: STUN only
        return [{"urls": url} for url in settings.stun_servers]
    out = []
    for i in ice_servers_for(settings, user_id):
        server = {"urls": i.urls}
        if i.username is not None and i.credential is not None:
            server |= {"username": i.username, "credential": i.credential}
        out.append(server)
    return out


def room_info(hub: Hub, s: Session, entries: list[Entry], resumed: bool) -> dict[str, Any]:
    room = hub.rooms.get(s.meeting_id)
    participants = []
    for e in entries:
        if e["session_id"] == s.session_id:
            e = s.entry(hub.node)
        local = room.sessions.get(e["session_id"]) if room else None
        if local is not None and local.last_active_at is not None:
            e["last_active_at"] = iso(local.last_active_at)
        participants.append({**public(e), "is_self": e["session_id"] == s.session_id})
    settings = room.settings if room else {}
    payload = {
        "meeting_id": s.meeting_id,
        "participant_count": people(entries),
        "session_id": s.session_id,
        "peer_id": s.peer_id,
        "ice_servers": ice_servers(hub.settings, s.user_id),
        "participants": participants,
        # Extensions.
        "user_id": s.user_id,
        "role": s.role,
        "host_id": s.admission.host_id,
        "resumed": resumed,
        "max_screen_shares": hub.max_sharers(settings),
        "screen_share_requires_permission": bool(
            settings.get("screen_share_requires_permission", True)
        ),
        "resume_grace": hub.settings.ws_resume_grace,
        "heartbeat_interval": hub.settings.ws_heartbeat_interval,
        "idle_timeout": hub.settings.ws_idle_timeout,
    }
    return message(
        MsgType.ROOM_INFO, s.meeting_id, payload, session_id=s.session_id, peer_id=s.peer_id
    )
