"""The AI service as the rest of confer sees it: recognition requests and live caption streams.

It owns one worker process, started on first use (or at startup with `ai_preload`), restarted
after a crash, stopped at shutdown. Admission happens here, on the event loop, before any
work reaches the worker: a bounded number of recognitions in flight overall (503 past it),
and per user a concurrency cap and a token bucket (429).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from confer.ai.client import RequestFailed, WorkerClient, WorkerGone
from confer.ai.worker import WorkerConfig
from confer.config import Settings
from confer.errors import AppError, ErrorCode, PayloadTooLarge, RateLimited, Unavailable

log = logging.getLogger("confer.ai")

CaptionListener = Callable[[dict[str, Any]], Awaitable[None]]
RESTART_BACKOFF = 5.0  # seconds between attempts to start a worker that failed


def ai_unavailable(details: str, retry_after: int | None = None) -> Unavailable:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return Unavailable(
        "AI service unavailable", details=details, code=ErrorCode.AI_UNAVAILABLE, headers=headers
    )


def ai_failed(details: str, status: int = 400) -> AppError:
    err = AppError("AI processing failed", details=details, code=ErrorCode.AI_FAILED, status=status)
    err.type = "AIProcessingError"
    return err


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass(frozen=True)
class StreamInfo:
    meeting_id: int
    user_id: int
    language: str | None
    tag: str


class AIService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        model_dir = settings.ai_model_dir or settings.data_dir / "models" / "whisper-base"
        self.config = WorkerConfig(
            model_dir=model_dir,
            model_sha256=settings.ai_model_sha256,
            threads=settings.ai_threads,
            languages=tuple(settings.ai_languages),
            max_seconds=settings.ai_max_audio_seconds,
            silence_ms=settings.ai_caption_silence_ms,
            partial_interval=settings.ai_caption_partial_interval,
            max_utterance=settings.ai_caption_max_utterance,
        )
        self.worker: WorkerClient | None = None
        self.failure: str | None = None
        self._failed_at = 0.0
        self._start_lock = asyncio.Lock()
        self._inflight = 0
        self._per_user: dict[int, int] = {}
        self._buckets: dict[int, _Bucket] = {}
        self._listeners: list[CaptionListener] = []
        self._streams: dict[int, StreamInfo] = {}
        self._keys = itertools.count(1)
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def ensure_started(self) -> WorkerClient:
        if not self.settings.ai_enabled:
            raise ai_unavailable("the AI service is disabled on this server (CONFER_AI_ENABLED)")
        if self.worker is not None and self.worker.alive:
            return self.worker
        async with self._start_lock:
            if self.worker is not None and self.worker.alive:
                return self.worker
            if self.failure and time.monotonic() - self._failed_at < RESTART_BACKOFF:
                raise ai_unavailable(self.failure, retry_after=int(RESTART_BACKOFF))
            if self.worker is not None:  # died: reap it before starting another
                await self.worker.stop()
                self.worker = None
            worker = WorkerClient(self.config, self._on_caption)
            try:
                info = await worker.start(self.settings.ai_start_timeout)
            except WorkerGone as exc:
                self.failure, self._failed_at = str(exc), time.monotonic()
                log.error("AI worker unavailable: %s", exc)
                raise ai_unavailable(str(exc), retry_after=int(RESTART_BACKOFF)) from exc
            log.info("AI worker ready: %s", info)
            self.worker, self.failure = worker, None
            for key, s in self._streams.items():  # a restarted worker picks streams back up
                worker.open_stream(key, s.meeting_id, s.user_id, s.language, s.tag)
            return worker

    async def close(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
            self.worker = None
        if self._pump is not None:
            self._pump.cancel()

    def status(self) -> dict[str, Any]:
        running = self.worker is not None and self.worker.alive
        return {
            "enabled": self.settings.ai_enabled,
            "state": "ready" if running else ("failed" if self.failure else "idle"),
            "detail": self.failure,
            "languages": list(self.settings.ai_languages),
            "queue_size": self.settings.ai_queue_size,
            "in_flight": self._inflight,
            "max_audio_seconds": self.settings.ai_max_audio_seconds,
            "max_audio_bytes": self.settings.ai_max_audio_bytes,
        }

    # -- recognition ----------------------------------------------------------------------

    def _admit(self, user_id: int) -> None:
        s = self.settings
        if self._per_user.get(user_id, 0) >= s.ai_user_concurrency:
            raise RateLimited(
                "Too many requests",
                details=f"at most {s.ai_user_concurrency} recognitions per user at once",
                headers={"Retry-After": "1"},
            )
        if self._inflight >= s.ai_queue_size:
            raise ai_unavailable(
                f"the AI service is busy ({s.ai_queue_size} recognitions queued); retry shortly",
                retry_after=1,
            )
        now = time.monotonic()
        burst = 5.0
        bucket = self._buckets.setdefault(user_id, _Bucket(burst, now))
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * s.ai_rate_per_minute / 60)
        bucket.stamp = now
        if bucket.tokens < 1.0:
            wait = max(1, int((1.0 - bucket.tokens) * 60 / max(s.ai_rate_per_minute, 1e-6)) + 1)
            raise RateLimited(
                "Too many requests",
                details=f"at most {s.ai_rate_per_minute:g} recognitions per minute",
                headers={"Retry-After": str(wait)},
            )
        bucket.tokens -= 1.0

    async def recognize(
        self, user_id: int, data: bytes, fmt: str, sample_rate: int, language: str | None
    ) -> dict[str, Any]:
        self._admit(user_id)
        self._inflight += 1
        self._per_user[user_id] = self._per_user.get(user_id, 0) + 1
        try:
            worker = await self.ensure_started()
            return await worker.recognize(
                data, fmt, sample_rate, language, self.settings.ai_request_timeout
            )
        except RequestFailed as exc:
            if exc.kind == "too_long":
                raise PayloadTooLarge("Audio too long", details=str(exc)) from exc
            raise ai_failed(str(exc), status=400 if exc.kind == "audio" else 422) from exc
        except WorkerGone as exc:
            raise ai_unavailable(str(exc), retry_after=1) from exc
        finally:
            self._inflight -= 1
            left = self._per_user.get(user_id, 1) - 1
            if left:
                self._per_user[user_id] = left
            else:
                self._per_user.pop(user_id, None)

    # -- live captions --------------------------------------------------------------------

    def subscribe(self, listener: CaptionListener) -> None:
        """`listener(event_dict)` is awaited for every partial and final caption."""
        self._listeners.append(listener)

    async def open_stream(self, meeting_id: int, user_id: int, language: str | None = None) -> int:
        """Start captioning one speaker's Opus track; returns the key for `feed` / `close`."""
        worker = await self.ensure_started()
        key = next(self._keys)
        info = StreamInfo(meeting_id, user_id, language, f"{secrets.token_hex(3)}{key}")
        self._streams[key] = info
        worker.open_stream(key, meeting_id, user_id, language, info.tag)
        return key

    def feed(self, key: int, payload: bytes, rtp_timestamp: int | None = None) -> None:
        """One Opus RTP payload of stream `key`. Never blocks; dropped if the worker is down."""
        if key in self._streams and self.worker is not None and self.worker.alive:
            self.worker.feed(key, payload, rtp_timestamp)

    def close_stream(self, key: int) -> None:
        if self._streams.pop(key, None) is not None and self.worker is not None:
            self.worker.close_stream(key)

    def _on_caption(self, event: dict[str, Any]) -> None:
        # One pump task keeps events in order: a partial never overtakes its final.
        self._events.put_nowait(event)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.ensure_future(self._deliver())

    async def _deliver(self) -> None:
        while not self._events.empty():
            event = self._events.get_nowait()
            for listener in self._listeners:
                try:
                    await listener(event)
                except Exception:
                    log.exception("caption listener failed")
