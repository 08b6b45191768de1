"""Signaling extension types owned by the AI service (docs/protocol.md, "Captions").

Type 40 `caption`, server -> every socket of the meeting, `from_user_id` 0:

    {"meeting_id": 100, "user_id": 7, "utterance_id": "100-7-3-12", "final": false,
     "text": "ever tried ever failed", "language": "en",
     "start_time": "2025-10-01T10:00:05.120Z", "end_time": "2025-10-01T10:00:07.040Z",
     "duration": 1.92, "confidence": 0.81}

Partials (`final: false`) for one `utterance_id` replace each other; the final one replaces them
all and is what the transcript keeps (an empty final text means "that was not speech": drop the
partial). `user_id` is the speaker. Type 41 is reserved for caption control.
"""

from __future__ import annotations

from typing import Any

CAPTION = 40
CAPTION_CONTROL = 41  # reserved


def caption_payload(event: dict[str, Any]) -> dict[str, Any]:
    """The type-40 payload for an event as `AIService.subscribe` listeners receive it."""
    from confer.ai.captions import CaptionEvent

    return CaptionEvent(**event).payload()
