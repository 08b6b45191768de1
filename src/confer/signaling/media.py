"""The narrow interface between the signaling hub and the media plane (the SFU).

The hub knows sockets, rooms and roles; the SFU knows RTP. They meet here:

- offer / answer / ice-candidate whose `to_user_id` is 0 or absent go to `MediaPlane.handle`;
- what the SFU wants to say to a client (its own offers when subscriptions change, its answers,
  trickled candidates, active-speaker notices) goes back through the `MediaSink` the hub gives
  it, and reaches that peer's socket with `from_user_id` 0;
- role and moderation decisions taken by signaling or REST (mute by host, audience, kick,
  leave) are pushed down with the other methods, so the media plane enforces them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class PeerRef:
    """One client connection in a meeting: a user may have several (tabs, devices)."""

    meeting_id: int
    user_id: int
    session_id: str
    peer_id: str


class MediaSink(Protocol):
    async def send(self, peer: PeerRef, msg_type: int, payload: dict[str, Any]) -> None:
        """Deliver a message of `msg_type` (1 offer, 2 answer, 3 ice-candidate, or an
        extension type) to the peer's socket, from the server (`from_user_id` 0)."""

    async def broadcast(self, meeting_id: int, msg_type: int, payload: dict[str, Any]) -> None:
        """Deliver a message to every socket of the meeting (e.g. active speaker)."""


class MediaPlane(Protocol):
    def attach(self, sink: MediaSink) -> None:
        """Called once by the hub before any other method."""

    async def handle(
        self, peer: PeerRef, msg_type: int, payload: dict[str, Any], *, can_publish: bool
    ) -> None:
        """An offer, answer or ice-candidate from `peer` addressed to the SFU. Raise
        `confer.errors.AppError` for a bad payload; the hub turns it into an error message."""

    async def peer_left(self, peer: PeerRef) -> None:
        """The peer's socket is gone for good (leave, kick, grace period over): close its
        transport at once and renegotiate the others."""

    async def peer_moved(self, peer: PeerRef) -> None:
        """The peer's session resumed on this process, moved from another (which went away,
        or whose socket to it dropped): what the SFU sent it meanwhile may be lost, so its
        media starts afresh (`media-reset`)."""

    async def set_publish_allowed(
        self, meeting_id: int, user_id: int, media_type: str, allowed: bool
    ) -> None:
        """Stop (or resume) forwarding a user's `audio`, `video` or `screen` media: host mute,
        role moved to audience, screen-share permission withdrawn."""

    async def settings_changed(self, meeting_id: int) -> None:
        """The meeting's settings changed (MEETING_UPDATED; the hub's room has the new ones):
        e.g. AI analysis turned on or off, which starts or stops live captions."""

    async def meeting_ended(self, meeting_id: int) -> None:
        """Tear down every transport of the meeting."""
