"""A user's standing in a meeting, and the two side effects of every host action: the audit
entry (same transaction) and the bus event (after commit, so the hub never acts on a change
that was rolled back)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from confer.bus import EventBus
from confer.bus.events import event, meeting_topic
from confer.db.models import AuditEntry, Meeting, Participant
from confer.errors import Forbidden, meeting_ended, meeting_not_found
from confer.services.roles import Permission, Role, can

log = logging.getLogger(__name__)

SCHEDULED, ACTIVE, ENDED = "scheduled", "active", "ended"
JOINED, LEFT, KICKED = "joined", "left", "kicked"


@dataclass(slots=True)
class Access:
    """A user's standing in a meeting: `role` is None for outsiders and kicked users."""

    meeting: Meeting
    participant: Participant | None
    role: str | None

    @property
    def kicked(self) -> bool:
        return self.participant is not None and self.participant.state == KICKED

    @property
    def is_host(self) -> bool:
        return self.role == Role.HOST

    def require(self, permission: Permission) -> None:
        if self.role is None or not can(self.role, permission):
            raise Forbidden(
                "You do not have permission to do this",
                details=f"'{permission}' needs a role that has it; yours is {self.role or 'none'}",
            )

    def require_member(self) -> None:
        """Hosts and participants (present or past); kicked users and outsiders are refused."""
        if self.kicked:
            raise Forbidden("You were removed from this meeting")
        if self.role is None:
            raise Forbidden("You are not a participant of this meeting")

    def require_open(self) -> None:
        if self.meeting.status == ENDED:
            raise meeting_ended()


async def access(s: AsyncSession, meeting_id: int, user_id: int, *, lock: bool = False) -> Access:
    """Load the meeting and the user's standing; with `lock`, serialise writers per meeting.

    The lock is a no-op UPDATE of the meeting row: PostgreSQL then holds a row lock and SQLite
    the database write lock until commit, so concurrent joins cannot both take the last seat.
    """
    if lock:
        done = await s.execute(
            update(Meeting).where(Meeting.id == meeting_id).values(status=Meeting.status)
        )
        if done.rowcount == 0:  # type: ignore[attr-defined]
            raise meeting_not_found()
    meeting = await s.get(Meeting, meeting_id, populate_existing=lock)
    if meeting is None:
        raise meeting_not_found()
    participant = await s.scalar(
        select(Participant).where(
            Participant.meeting_id == meeting_id, Participant.user_id == user_id
        )
    )
    role: str | None = None
    if meeting.host_id == user_id:
        role = Role.HOST
    elif participant is not None and participant.state != KICKED:
        role = participant.role
    return Access(meeting, participant, role)


def audit(
    s: AsyncSession,
    meeting_id: int,
    actor_id: int,
    action: str,
    target_user_id: int | None = None,
    **details: Any,
) -> None:
    s.add(
        AuditEntry(
            meeting_id=meeting_id,
            actor_id=actor_id,
            action=action,
            target_user_id=target_user_id,
            details=details,
        )
    )


async def notify(bus: EventBus, meeting_id: int, kind: str, **fields: Any) -> None:
    """Publish after commit. A bus failure must not turn a committed action into an error."""
    try:
        await bus.publish(meeting_topic(meeting_id), event(kind, meeting_id=meeting_id, **fields))
    except Exception:
        log.exception("could not publish %s for meeting %s", kind, meeting_id)
