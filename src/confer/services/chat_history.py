"""Chat history of a meeting, as written by the signaling hub, for its participants only.

Room messages are visible to every member (host, and anyone who joined and was not kicked);
a private message (to_user_id set) only to its sender and its recipient. Pages run newest
first; `before_id` (the oldest id already shown) keeps paging stable while new messages arrive.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from confer.db.models import ChatMessage
from confer.services.meeting_access import access


async def history(
    s: AsyncSession,
    meeting_id: int,
    user_id: int,
    page: int,
    page_size: int,
    before_id: int | None,
) -> tuple[list[ChatMessage], int]:
    (await access(s, meeting_id, user_id)).require_member()
    where = [
        ChatMessage.meeting_id == meeting_id,
        or_(
            ChatMessage.to_user_id.is_(None),
            ChatMessage.sender_id == user_id,
            ChatMessage.to_user_id == user_id,
        ),
    ]
    if before_id is not None:
        where.append(ChatMessage.id < before_id)
    total = await s.scalar(select(func.count()).select_from(ChatMessage).where(*where))
    rows = await s.scalars(
        select(ChatMessage)
        .where(*where)
        .order_by(ChatMessage.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return list(rows), int(total or 0)
