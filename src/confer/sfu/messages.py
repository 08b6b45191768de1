"""Signaling message types the SFU adds (extensions numbered from 30; see docs/protocol.md).

- 30 `active-speaker` (server -> every socket of the meeting):
  `{"user_id": 7, "peer_id": "...", "source": "microphone"}`; `user_id` null when nobody
  speaks any more.
- 31 `video-constraints` (client -> SFU, `to_user_id` 0 or absent): the size each remote video
  is rendered at, so the SFU picks a simulcast layer that fills it and no more:
  `{"tracks": [{"mid": "3", "width": 320, "height": 180}]}` (mid of the client's receiving
  transceiver; width/height 0 pauses that video).
- 32 `media-reset` (server -> one peer): the media session was lost on the server (a worker
  died) and moved; the client closes its RTCPeerConnection to the SFU, opens a new one and
  sends a fresh offer. `{"reason": "worker_restart"}`.

Offers the SFU sends (type 1) carry an extra field `tracks`: for each mid the SFU sends on,
`{"mid": "3", "kind": "video", "source": "camera", "user_id": 7, "peer_id": "...",
"stream_id": "...", "simulcast": true}`. A client's own offer may carry `sources`:
`{"<mid>": "camera" | "screen" | "microphone" | "screen_audio"}` to label what it publishes
(without it: audio is the microphone, the first video the camera, a second video the screen).
"""

from __future__ import annotations

OFFER, ANSWER, ICE_CANDIDATE, ERROR = 1, 2, 3, 13
ACTIVE_SPEAKER = 30
VIDEO_CONSTRAINTS = 31
MEDIA_RESET = 32

# What MediaPlane.handle accepts from a client.
CLIENT_TYPES = frozenset({OFFER, ANSWER, ICE_CANDIDATE, VIDEO_CONSTRAINTS})

SOURCES = ("microphone", "camera", "screen", "screen_audio")
MEDIA_TYPE_SOURCES = {
    "audio": ("microphone",),
    "video": ("camera",),
    "screen": ("screen", "screen_audio"),
}


def check_media_type(media_type: str) -> None:
    """What `set_publish_allowed` accepts: `audio`, `video` or `screen`."""
    if media_type not in MEDIA_TYPE_SOURCES:
        from confer.errors import ValidationFailed

        raise ValidationFailed(f"unknown media type {media_type!r}")
