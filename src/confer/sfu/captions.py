"""Live captions' audio path: publishers' Opus payloads from the SFU worker to the AI service.

Two halves, one per process:

- `AudioTap` lives in the SFU worker, one per room of a meeting with `enable_ai_analysis`. The
  per-packet hook in `routing.on_rtp` hands it each new (deduplicated) audio packet of a
  microphone track; it keeps the Opus payload and RTP timestamp and ships them in one IPC frame
  per worker tick (`FAST_TICK`, 50 ms). Batches are bounded and dropped, with a counter, when
  the socket to the API process is backed up: captions must never slow media forwarding.
  A track that closes or is muted by the host is reported once (`audio_end`).
- `CaptionRelay` lives in the API process, next to `SfuPlane`. It opens one AI caption stream
  per publisher track on its first audio (packets that arrive while the AI worker starts are
  held, boundedly), feeds it, and closes it on `audio_end`, peer leave, host mute, meeting end
  or when the track has been silent on the wire for `IDLE_CLOSE` seconds. Decoding happens once
  per speaker in the AI worker, never per subscriber. It re-checks what the worker checked:
  audio of a meeting whose worker was not told to caption, or of a user the host muted, is
  dropped (frames already on the IPC socket when either changes would otherwise reopen a
  stream). Streams are keyed by (meeting, stream id): the peer id in a stream id is chosen by
  the client, so the same user's stream ids may coincide in two meetings.

IPC frames, worker -> API: {"op": "audio", "meeting_id": m, "packets": [[stream, user_id,
rtp_ts, base64 payload], ...]} and {"op": "audio_end", "meeting_id": m, "stream": s}. The
stream id is the uptrack key, "user_id/peer_id/mid". API -> worker: the `handle` op carries
"captions": bool, and {"op": "captions", "meeting_id": m, "enabled": bool} follows a change
of the meeting's setting (the hub's MEETING_UPDATED, through `SfuPlane.settings_changed`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("confer.sfu.captions")

MAX_BATCH = 400  # packets per tick per room: 8 speakers' 50 ms at 20 ms frames, with slack
MAX_BACKLOG = 1 << 20  # bytes waiting on the IPC socket past which audio batches are dropped
MAX_PENDING = 1500  # packets held per stream while the AI worker starts (30 s of 20 ms frames)
IDLE_CLOSE = 5.0  # seconds without a packet after which a stream is closed (finalized)
RETRY_AFTER = 10.0  # seconds before trying again to open a stream the AI service refused


class AudioTap:
    """Collects the Opus payloads of one room's microphone tracks in the SFU worker."""

    __slots__ = ("backlog", "batch", "dropped", "emit", "meeting_id", "sent", "tracks")

    def __init__(
        self,
        meeting_id: int,
        emit: Callable[[dict[str, Any]], None],
        backlog: Callable[[], int],
    ) -> None:
        self.meeting_id = meeting_id
        self.emit = emit
        self.backlog = backlog
        self.batch: list[list[Any]] = []
        self.tracks: dict[str, Any] = {}  # stream id -> UpTrack being tapped
        self.dropped = 0
        self.sent = 0

    def push(self, up: Any, timestamp: int, payload: bytes) -> None:
        """One new audio packet of `up` (called from the forwarding path: keep it cheap)."""
        if not up.allowed or up.source != "microphone" or not payload:
            return
        if len(self.batch) >= MAX_BATCH:
            self.dropped += 1
            return
        self.tracks[up.key] = up
        self.batch.append([up.key, up.owner.user_id, timestamp, payload])

    def flush(self) -> None:
        """Once per worker tick: ship the batch, report tracks that stopped."""
        for key, up in list(self.tracks.items()):
            if up.closed or not up.allowed:
                del self.tracks[key]
                self.emit({"op": "audio_end", "meeting_id": self.meeting_id, "stream": key})
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        if self.backlog() > MAX_BACKLOG:
            self.dropped += len(batch)
            return
        for item in batch:
            item[3] = base64.b64encode(item[3]).decode("ascii")
        self.sent += len(batch)
        self.emit({"op": "audio", "meeting_id": self.meeting_id, "packets": batch})

    def close(self) -> None:
        for key in list(self.tracks):
            self.emit({"op": "audio_end", "meeting_id": self.meeting_id, "stream": key})
        self.tracks.clear()
        self.batch.clear()


def set_tap(room: Any, enabled: bool, emit: Callable[[dict[str, Any]], None], writer: Any) -> None:
    """Give `room` a tap (or take it away) as the meeting's AI setting says."""
    if enabled and room.tap is None:
        transport = writer.transport
        room.tap = AudioTap(room.meeting_id, emit, transport.get_write_buffer_size)
    elif not enabled and room.tap is not None:
        room.tap.close()
        room.tap = None


# -- the API process's half ------------------------------------------------------------------


def room_wants_captions(ctx: Any, meeting_id: int) -> bool | None:
    """The meeting's `enable_ai_analysis` as this process's hub knows it; None without a room
    here (no socket of the meeting on this process)."""
    hub = ctx.extras.get("signaling")
    room = hub.rooms.get(meeting_id) if hub is not None else None
    return None if room is None else bool(room.settings.get("enable_ai_analysis"))


@dataclass
class _Stream:
    meeting_id: int
    user_id: int
    key: int | None = None  # the AI service's stream key once open
    pending: list[tuple[bytes, int]] = field(default_factory=list)
    last: float = field(default_factory=time.monotonic)
    failed_at: float = 0.0


class CaptionRelay:
    """Forwards tapped audio to `AIService` streams; knows which meetings want captions."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.streams: dict[tuple[int, str], _Stream] = {}  # (meeting, stream id)
        self.packets = 0
        self.dropped = 0
        self._sweeper: asyncio.Task[None] | None = None
        self.flags: dict[int, bool] = {}  # meeting -> what its SFU worker was last told
        # meeting -> its AI setting, for meetings whose sockets are all on other nodes (the
        # distributed plane passes on what their requests say)
        self.remote: dict[int, bool] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # (meeting, user) -> muted by the host; SfuPlane points it at its own record
        self.audio_blocked: Callable[[int, int], bool] = lambda _meeting, _user: False

    @classmethod
    def for_sink(cls, sink: Any) -> CaptionRelay | None:
        """The relay for the hub behind `sink`, when this server runs an AI service."""
        ctx = getattr(sink, "ctx", None) or getattr(getattr(sink, "hub", None), "ctx", None)
        if ctx is None or not ctx.settings.ai_enabled or ctx.extras.get("ai") is None:
            return None
        return cls(ctx)

    @property
    def ai(self) -> Any:
        return self.ctx.extras.get("ai")

    def enabled(self, meeting_id: int) -> bool:
        """Whether the meeting was created (or updated) with `enable_ai_analysis`."""
        here = room_wants_captions(self.ctx, meeting_id)
        return self.remote.get(meeting_id, False) if here is None else here

    def flag(self, meeting_id: int) -> bool:
        """The `captions` flag for a message to the meeting's worker, remembered."""
        on = self.flags[meeting_id] = self.enabled(meeting_id)
        return on

    def update(self, meeting_id: int) -> dict[str, Any] | None:
        """The message for the meeting's worker when its AI setting no longer matches what the
        worker was told; None when it matches, or when no worker was told yet (the next
        `handle` carries the flag)."""
        told = self.flags.get(meeting_id)
        on = self.enabled(meeting_id)
        if told is None or on == told:
            return None
        self.flags[meeting_id] = on
        if not on:
            self.close_where(meeting_id, keep_flag=True)
        return {"op": "captions", "meeting_id": meeting_id, "enabled": on}

    # -- frames from SFU workers

    def on_frame(self, msg: dict[str, Any]) -> None:
        try:
            if msg["op"] == "audio":
                self._on_audio(int(msg["meeting_id"]), msg["packets"])
            else:
                self.close_stream((int(msg["meeting_id"]), str(msg["stream"])))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("bad caption frame from an SFU worker: %s", exc)

    def _on_audio(self, meeting_id: int, packets: list[list[Any]]) -> None:
        ai = self.ai
        if ai is None or not self.flags.get(meeting_id):
            return
        now = time.monotonic()
        for stream_id, user_id, ts, b64 in packets:
            if self.audio_blocked(meeting_id, int(user_id)):
                continue
            payload = base64.b64decode(b64)
            key = (meeting_id, str(stream_id))
            s = self.streams.get(key)
            if s is None:
                s = self.streams[key] = _Stream(meeting_id, int(user_id))
                self._spawn(self._open(key, s))
                self._ensure_sweeper()
            s.last = now
            if s.key is not None:
                ai.feed(s.key, payload, ts)
                self.packets += 1
            elif s.failed_at and now - s.failed_at > RETRY_AFTER:
                s.failed_at = 0.0
                self._spawn(self._open(key, s))
            elif not s.failed_at and len(s.pending) < MAX_PENDING:
                s.pending.append((payload, ts))
            else:
                self.dropped += 1

    async def _open(self, stream_id: tuple[int, str], s: _Stream) -> None:
        from confer.errors import AppError

        try:
            key = await self.ai.open_stream(s.meeting_id, s.user_id)
        except AppError as exc:
            log.warning("captions for meeting %s unavailable: %s", s.meeting_id, exc.details)
            s.failed_at = time.monotonic()
            self.dropped += len(s.pending)
            s.pending.clear()
            return
        if self.streams.get(stream_id) is not s:  # closed while opening
            self.ai.close_stream(key)
            return
        s.key = key
        s.last = time.monotonic()  # the idle clock starts when the held audio is fed
        for payload, ts in s.pending:
            self.ai.feed(key, payload, ts)
        self.packets += len(s.pending)
        s.pending.clear()

    # -- closing

    def close_stream(self, stream_id: tuple[int, str]) -> None:
        s = self.streams.pop(stream_id, None)
        if s is not None and s.key is not None and self.ai is not None:
            self.ai.close_stream(s.key)

    def close_where(
        self,
        meeting_id: int,
        user_id: int | None = None,
        peer_id: str = "",
        *,
        keep_flag: bool = False,
    ) -> None:
        """Peer leave (user and peer), host mute (user), meeting end (neither)."""
        if user_id is None and not keep_flag:
            self.flags.pop(meeting_id, None)
        for (meeting, stream_id), s in list(self.streams.items()):
            if meeting != meeting_id or (user_id is not None and s.user_id != user_id):
                continue
            if peer_id and stream_id.split("/")[1:2] != [peer_id]:
                continue
            self.close_stream((meeting, stream_id))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _ensure_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.ensure_future(self._sweep())

    async def _sweep(self) -> None:
        """Finalize streams whose packets stopped (unpublished, a worker gone, a lost end).
        A stream still waiting for the AI worker to start is not idle: closing it would lose
        the audio held for it (starting the worker can take longer than `IDLE_CLOSE`)."""
        while self.streams:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for stream_id, s in list(self.streams.items()):
                opening = s.key is None and not s.failed_at
                if not opening and now - s.last > IDLE_CLOSE:
                    self.close_stream(stream_id)

    async def close(self) -> None:
        for stream_id in list(self.streams):
            self.close_stream(stream_id)
        for task in [self._sweeper, *self._tasks]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
