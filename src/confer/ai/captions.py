"""The per-speaker streaming caption engine: Opus packets in, partial and final captions out.

One `SpeakerStream` per publisher's audio track (decoded once, however many subscribers there
are): Opus -> 16 kHz mono -> Silero VAD -> utterances. While someone speaks a partial job is
offered every `partial_interval` seconds; when they stop (or hit `max_utterance` seconds) a final
job is queued. `CaptionEngine.run_job` transcribes a job and reports a `CaptionEvent` through
the callback. The engine is synchronous and single-purpose; the worker process gives it its
threads (ingest and inference) and its queue (`jobs.JobQueue`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from confer.ai.audio import SAMPLE_RATE
from confer.ai.recognizer import Recognizer
from confer.ai.vad import Boundary, Segmenter, SileroModel

log = logging.getLogger("confer.ai.captions")

OPUS_RATE = 48000
MAX_GAP_SECONDS = 2.0  # a longer hole in RTP timestamps is not filled with silence


def iso_ms(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True, slots=True)
class CaptionEvent:
    meeting_id: int
    user_id: int
    utterance_id: str
    final: bool
    text: str
    language: str
    start: float  # epoch seconds
    end: float
    confidence: float

    def payload(self) -> dict[str, object]:
        """The body of a `caption` signaling message (docs/protocol.md, type 40)."""
        return {
            "meeting_id": self.meeting_id,
            "user_id": self.user_id,
            "utterance_id": self.utterance_id,
            "final": self.final,
            "text": self.text,
            "language": self.language,
            "start_time": iso_ms(self.start),
            "end_time": iso_ms(self.end),
            "duration": round(self.end - self.start, 3),
            "confidence": self.confidence,
        }

    def as_dict(self) -> dict[str, object]:
        return {
            "meeting_id": self.meeting_id,
            "user_id": self.user_id,
            "utterance_id": self.utterance_id,
            "final": self.final,
            "text": self.text,
            "language": self.language,
            "start": self.start,
            "end": self.end,
            "confidence": self.confidence,
        }


@dataclass(slots=True)
class Job:
    stream: SpeakerStream
    utterance: int
    audio: np.ndarray
    final: bool
    start: float
    end: float
    queued_at: float = field(default_factory=time.monotonic)


class _Tape:
    """Recent samples as a list of chunks, addressed by absolute sample index."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.base = 0
        self.end = 0

    def append(self, chunk: np.ndarray) -> None:
        if chunk.size:
            self.chunks.append(chunk)
            self.end += chunk.size

    def slice(self, a: int, b: int) -> np.ndarray:
        if not self.chunks:
            return np.zeros(0, dtype=np.float32)
        whole = np.concatenate(self.chunks)
        self.chunks = [whole]
        return whole[max(a - self.base, 0) : max(b - self.base, 0)].copy()

    def trim_before(self, index: int) -> None:
        while self.chunks and self.base + self.chunks[0].size <= index:
            self.base += self.chunks.pop(0).size


class SpeakerStream:
    def __init__(
        self,
        key: int,
        meeting_id: int,
        user_id: int,
        segmenter: Segmenter,
        *,
        language: str | None = None,
        partial_interval: float = 1.0,
        max_utterance: float = 15.0,
        epoch: float | None = None,
        tag: str = "",
    ) -> None:
        self.key = key
        self.tag = tag or str(key)  # unique across restarts: utterance ids are stored
        self.meeting_id = meeting_id
        self.user_id = user_id
        self.segmenter = segmenter
        self.language = language  # fixed by the meeting, or None for automatic
        self.guess: str | None = None  # automatic: the last detected language
        self.agreements = 0
        self.partial_every = int(partial_interval * SAMPLE_RATE)
        self.max_samples = int(max_utterance * SAMPLE_RATE)
        self.epoch = epoch
        self.tape = _Tape()
        self.utterance = 0
        self.open_at: int | None = None  # sample where the current utterance began
        self.last_partial = 0
        self.finalized = -1  # highest utterance number whose final job exists
        self._decoder = None
        self._resampler = None
        self._next_ts: int | None = None

    def _wall(self, sample: int) -> float:
        assert self.epoch is not None
        return self.epoch + sample / SAMPLE_RATE

    def push_opus(self, payload: bytes, rtp_timestamp: int | None = None) -> list[Job]:
        """Decode one Opus RTP payload; fill holes in the RTP clock with silence."""
        import av

        if self._decoder is None:
            self._decoder = av.CodecContext.create("opus", "r")
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        jobs: list[Job] = []
        if rtp_timestamp is not None and self._next_ts is not None:
            gap = (rtp_timestamp - self._next_ts) & 0xFFFFFFFF
            if 0 < gap <= MAX_GAP_SECONDS * OPUS_RATE:
                jobs += self.push_pcm(np.zeros(gap // 3, dtype=np.float32))
        try:
            frames = self._decoder.decode(av.Packet(payload))
        except (av.error.FFmpegError, ValueError) as exc:
            log.debug("undecodable opus packet from user %s: %s", self.user_id, exc)
            return jobs
        for frame in frames:
            if rtp_timestamp is not None:
                self._next_ts = (rtp_timestamp + frame.samples) & 0xFFFFFFFF
            assert self._resampler is not None
            for out in self._resampler.resample(frame):
                jobs += self.push_pcm(out.to_ndarray().reshape(-1).astype(np.float32))
        return jobs

    def push_pcm(self, samples: np.ndarray) -> list[Job]:
        """Feed 16 kHz mono float32 samples; return the inference jobs they make due."""
        if self.epoch is None:
            self.epoch = time.time() - self.tape.end / SAMPLE_RATE
        self.tape.append(samples)
        jobs: list[Job] = []
        for boundary in self.segmenter.push(samples):
            jobs += self._on_boundary(boundary)
        if self.open_at is not None:
            now = self.segmenter.position
            if now - self.open_at >= self.max_samples:
                end = self.segmenter.force_end()
                if end is not None:
                    jobs += self._on_boundary(end)
                jobs += self._on_boundary(self.segmenter.reopen())
            elif now - self.last_partial >= self.partial_every and not self.segmenter.pausing:
                # No partial during a pause: the final may be due in a moment, and a partial
                # still running then would delay it by a whole inference.
                self.last_partial = now
                jobs.append(self._job(self.open_at, now, final=False))
        else:
            self.tape.trim_before(self.segmenter.position - self.segmenter.pad * 2)
        return jobs

    def _on_boundary(self, b: Boundary) -> list[Job]:
        if b.kind == "start":
            self.open_at = b.sample
            self.last_partial = b.sample
            return []
        if self.open_at is None:
            return []
        job = self._job(self.open_at, b.sample, final=True)
        self.finalized = self.utterance
        self.utterance += 1
        self.open_at = None
        return [job]

    def _job(self, a: int, b: int, *, final: bool) -> Job:
        return Job(self, self.utterance, self.tape.slice(a, b), final, self._wall(a), self._wall(b))

    def close(self) -> list[Job]:
        end = self.segmenter.force_end()
        return self._on_boundary(end) if end is not None else []

    def stale(self, job: Job) -> bool:
        """A partial whose utterance has already been finalized is not worth transcribing."""
        return not job.final and job.utterance <= self.finalized


class CaptionEngine:
    """Owns the speaker streams and turns jobs into caption events."""

    def __init__(
        self,
        recognizer: Recognizer,
        emit: Callable[[CaptionEvent], None],
        *,
        vad: SileroModel | None = None,
        silence_ms: int = 480,
        partial_interval: float = 1.0,
        max_utterance: float = 15.0,
        min_partial_seconds: float = 0.8,
    ) -> None:
        self.recognizer = recognizer
        self.emit = emit
        self.vad = vad or SileroModel()
        self.silence_ms = silence_ms
        self.partial_interval = partial_interval
        self.max_utterance = max_utterance
        self.min_partial = int(min_partial_seconds * SAMPLE_RATE)
        self.streams: dict[int, SpeakerStream] = {}
        self.inference_seconds = 0.0  # moving average of one transcription

    @property
    def partials_affordable(self) -> bool:
        """On a machine too slow to transcribe a partial well within the partial interval,
        partials would only hold up the finals people wait for: skip them."""
        return self.inference_seconds < 0.6 * self.partial_interval

    def open(
        self, key: int, meeting_id: int, user_id: int, language: str | None, tag: str = ""
    ) -> None:
        self.streams[key] = SpeakerStream(
            key,
            meeting_id,
            user_id,
            Segmenter(self.vad, silence_ms=self.silence_ms),
            language=language,
            partial_interval=self.partial_interval,
            max_utterance=self.max_utterance,
            tag=tag,
        )

    def feed(self, key: int, payload: bytes, rtp_timestamp: int | None) -> list[Job]:
        stream = self.streams.get(key)
        return stream.push_opus(payload, rtp_timestamp) if stream else []

    def close(self, key: int) -> list[Job]:
        stream = self.streams.pop(key, None)
        return stream.close() if stream else []

    def _language(self, job: Job) -> str | None:
        """The stream's fixed language, or its guess once two finals agreed on it (a partial
        takes any guess); None: detect on this utterance."""
        s = job.stream
        if s.language:
            return s.language
        if s.agreements >= 2 or (not job.final and s.guess):
            return s.guess
        return None

    def run_job(self, job: Job) -> CaptionEvent | None:
        stream = job.stream
        if stream.stale(job) or (not job.final and job.audio.size < self.min_partial):
            return None
        started = time.monotonic()
        language = self._language(job)
        result = self.recognizer.caption(job.audio, language)
        if language is None:
            agreed = result.language == stream.guess
            stream.agreements = stream.agreements + 1 if agreed else 1
            stream.guess = result.language
        took = time.monotonic() - started
        self.inference_seconds = (
            took if not self.inference_seconds else (0.7 * self.inference_seconds + 0.3 * took)
        )
        if not result.text and not job.final:
            return None
        event = CaptionEvent(
            meeting_id=stream.meeting_id,
            user_id=stream.user_id,
            utterance_id=f"{stream.meeting_id}-{stream.user_id}-{stream.tag}-{job.utterance}",
            final=job.final,
            text=result.text,
            language=result.language,
            start=job.start,
            end=job.end,
            confidence=result.confidence,
        )
        if event.text or event.final:
            self.emit(event)
        return event
