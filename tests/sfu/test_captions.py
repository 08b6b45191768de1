"""The live-caption audio path around the SFU: the worker's `AudioTap` on real uptracks, and the
API-side `CaptionRelay` feeding a real AI worker process with Opus from real speech."""

from __future__ import annotations

import asyncio
import base64
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from confer.ai.model import ensure_model
from confer.ai.service import AIService
from confer.config import Settings
from confer.sfu import captions
from confer.sfu.captions import AudioTap, CaptionRelay
from confer.sfu.tracks import UpTrack
from tests.ai.speech import espeak, opus_packets, pcm16k, wer, with_silence

SENTENCE = "Please send the meeting notes to everyone before Friday."


def uptrack(user_id: int, peer: str = "p1", mid: str = "0", source: str = "microphone") -> UpTrack:
    owner = SimpleNamespace(user_id=user_id, key=f"{user_id}/{peer}")
    return UpTrack(
        f"{user_id}/{peer}/{mid}", owner, mid, "audio", source, "opus", 48000, 111, None, {}, [],
        lambda _ssrc: False,
    )  # fmt: skip


class Tap:
    def __init__(self, backlog: int = 0) -> None:
        self.frames: list[dict[str, Any]] = []
        self.backlog = backlog
        self.tap = AudioTap(42, self.frames.append, lambda: self.backlog)


def test_a_tick_ships_each_tracks_payloads_and_timestamps_in_one_frame() -> None:
    t = Tap()
    a, b = uptrack(7), uptrack(8, "p2")
    for i in range(3):
        t.tap.push(a, 1000 + 960 * i, bytes([i + 1]) * 10)
        t.tap.push(b, 5000 + 960 * i, bytes([i + 9]) * 20)
    t.tap.flush()
    assert len(t.frames) == 1
    frame = t.frames[0]
    assert frame["op"] == "audio" and frame["meeting_id"] == 42
    got = [(s, u, ts, base64.b64decode(p)) for s, u, ts, p in frame["packets"]]
    assert got[:2] == [("7/p1/0", 7, 1000, b"\x01" * 10), ("8/p2/0", 8, 5000, b"\x09" * 20)]
    assert [g[2] for g in got if g[1] == 7] == [1000, 1960, 2920]
    t.tap.flush()
    assert len(t.frames) == 1, "an empty tick sends nothing"


def test_muted_closed_and_screen_audio_is_not_tapped_and_ends_are_reported_once() -> None:
    t = Tap()
    mic, screen = uptrack(7), uptrack(7, mid="3", source="screen")
    t.tap.push(mic, 1, b"x")
    t.tap.push(screen, 1, b"y")
    t.tap.flush()
    assert [p[0] for p in t.frames[0]["packets"]] == ["7/p1/0"]
    mic.set_allowed(False)  # muted by the host
    t.tap.push(mic, 961, b"z")
    t.tap.flush()
    t.tap.flush()
    assert t.frames[1:] == [{"op": "audio_end", "meeting_id": 42, "stream": "7/p1/0"}]
    mic.set_allowed(True)
    t.tap.push(mic, 1921, b"w")
    mic.closed = True  # unpublished
    t.tap.flush()
    assert [f["op"] for f in t.frames[2:]] == ["audio_end", "audio"]


def test_backpressure_drops_whole_batches_and_counts_them() -> None:
    t = Tap(backlog=captions.MAX_BACKLOG + 1)
    mic = uptrack(7)
    for i in range(5):
        t.tap.push(mic, i * 960, b"a")
    t.tap.flush()
    assert t.frames == [] and t.tap.dropped == 5
    t.backlog = 0
    for i in range(captions.MAX_BATCH + 10):
        t.tap.push(mic, i * 960, b"a")
    t.tap.flush()
    assert len(t.frames[0]["packets"]) == captions.MAX_BATCH and t.tap.dropped == 15
    assert t.tap.sent == captions.MAX_BATCH


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return ensure_model(Path(tempfile.mkdtemp(prefix="confer-model-")) / "whisper-base")


def frames_of(packets: list[tuple[bytes, int]], stream: str, user_id: int) -> list[dict[str, Any]]:
    """Worker frames of 50 ms (2-3 packets), as the tap's ticks make them."""
    out = []
    for i in range(0, len(packets), 3):
        batch = [
            [stream, user_id, ts, base64.b64encode(p).decode()] for p, ts in packets[i : i + 3]
        ]
        out.append({"op": "audio", "meeting_id": 5, "packets": batch})
    return out


async def test_the_relay_captions_a_tapped_speaker_and_closes_on_leave(
    model_dir: Path, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, ai_model_dir=model_dir)
    service = AIService(settings)
    events: list[dict[str, Any]] = []
    final = asyncio.Event()

    async def listener(event: dict[str, Any]) -> None:
        events.append(event)
        if event["final"]:
            final.set()

    service.subscribe(listener)
    relay = CaptionRelay(SimpleNamespace(settings=settings, extras={"ai": service}))
    relay.flags[5] = True  # what SfuPlane.handle told meeting 5's worker
    audio = with_silence(pcm16k(espeak(SENTENCE)), 0.5, 0.3)  # too short a pause to end it
    try:
        # The AI worker is not started yet: the first frames wait for it, none are lost.
        for frame in frames_of(opus_packets(audio), "7/p1/0", 7):
            relay.on_frame(frame)
        relay.on_frame({"op": "audio", "meeting_id": 5, "packets": [["bad"]]})  # ignored
        relay.on_frame({"op": "audio_end"})  # ignored
        assert set(relay.streams) == {(5, "7/p1/0")}
        stream = relay.streams[5, "7/p1/0"]
        # The open waits for the AI worker, whose start may outlast IDLE_CLOSE: still held.
        await asyncio.wait_for(asyncio.gather(*relay._tasks), 60)
        assert relay.streams.get((5, "7/p1/0")) is stream and stream.key is not None
        state = (relay.packets, relay.dropped, relay.streams, service.status())
        assert relay.packets == len(opus_packets(audio)) and relay.dropped == 0, state
        relay.close_where(5, 7, "p1")  # the peer left: its utterance is finalized
        assert relay.streams == {}
        await asyncio.wait_for(final.wait(), 120)
    finally:
        await relay.close()
        await service.close()
    finals = [e for e in events if e["final"]]
    assert len(finals) == 1 and wer(SENTENCE, finals[0]["text"]) <= 0.35, events
    assert finals[0]["meeting_id"] == 5 and finals[0]["user_id"] == 7
    assert finals[0]["end"] - finals[0]["start"] == pytest.approx(audio.size / 16000 - 0.5, abs=0.6)


def test_streams_close_per_peer_user_and_meeting() -> None:
    relay = CaptionRelay(SimpleNamespace(settings=Settings(), extras={}))
    for sid, meeting, user in (("7/a/0", 1, 7), ("7/b/0", 1, 7), ("8/c/0", 1, 8), ("7/a/0", 2, 7)):
        relay.streams[meeting, sid] = captions._Stream(meeting, user)
    relay.close_where(1, 7, "a")
    assert set(relay.streams) == {(1, "7/b/0"), (1, "8/c/0"), (2, "7/a/0")}
    relay.close_where(1, 7)
    assert set(relay.streams) == {(1, "8/c/0"), (2, "7/a/0")}
    relay.on_frame({"op": "audio_end", "meeting_id": 2, "stream": "8/c/0"})  # not meeting 2's
    assert set(relay.streams) == {(1, "8/c/0"), (2, "7/a/0")}
    relay.close_where(1)
    assert set(relay.streams) == {(2, "7/a/0")}


class FakeAI:
    """Records what the relay opens and feeds (the real service is exercised above)."""

    def __init__(self) -> None:
        self.opened: list[tuple[int, int]] = []
        self.fed: list[tuple[int, bytes]] = []

    async def open_stream(self, meeting_id: int, user_id: int) -> int:
        self.opened.append((meeting_id, user_id))
        return len(self.opened)

    def feed(self, key: int, payload: bytes, _ts: int) -> None:
        self.fed.append((key, payload))

    def close_stream(self, key: int) -> None:
        pass


def audio_frame(meeting_id: int, stream: str, user_id: int, payload: bytes) -> dict[str, Any]:
    packet = [stream, user_id, 960, base64.b64encode(payload).decode()]
    return {"op": "audio", "meeting_id": meeting_id, "packets": [packet]}


async def test_the_relay_drops_audio_its_worker_should_not_have_tapped() -> None:
    ai = FakeAI()
    relay = CaptionRelay(SimpleNamespace(settings=Settings(), extras={"ai": ai}))
    muted = {(1, 8)}
    relay.audio_blocked = lambda meeting, user: (meeting, user) in muted
    relay.flags.update({1: True, 2: False})
    try:
        relay.on_frame(audio_frame(1, "7/a/0", 7, b"one"))
        relay.on_frame(audio_frame(1, "8/b/0", 8, b"muted"))  # in flight when the host muted
        relay.on_frame(audio_frame(2, "9/c/0", 9, b"off"))  # AI analysis just turned off
        relay.on_frame(audio_frame(3, "9/d/0", 9, b"never told"))
        relay.on_frame(audio_frame(4, "7/a/0", 7, b"other meeting, same stream id"))
        assert set(relay.streams) == {(1, "7/a/0")}
        await asyncio.wait_for(asyncio.gather(*relay._tasks), 5)
        assert ai.opened == [(1, 7)] and ai.fed == [(1, b"one")]
    finally:
        await relay.close()


async def test_a_stream_waiting_for_the_ai_worker_is_not_swept_as_idle() -> None:
    """The race behind a flaky relay test: the AI worker took longer than IDLE_CLOSE to start and
    the sweeper closed the stream (and its held audio) before it opened."""
    ai = FakeAI()
    started = asyncio.Event()
    opening = ai.open_stream

    async def slow_open(meeting_id: int, user_id: int) -> int:
        await started.wait()
        return await opening(meeting_id, user_id)

    ai.open_stream = slow_open  # type: ignore[method-assign]
    relay = CaptionRelay(SimpleNamespace(settings=Settings(), extras={"ai": ai}))
    relay.flags[1] = True
    try:
        relay.on_frame(audio_frame(1, "7/a/0", 7, b"held"))
        stream = relay.streams[1, "7/a/0"]
        stream.last -= captions.IDLE_CLOSE + 1  # its audio arrived long ago
        await asyncio.sleep(1.5)  # one sweep (every second) has run
        assert relay.streams.get((1, "7/a/0")) is stream
        started.set()
        await asyncio.wait_for(asyncio.gather(*relay._tasks), 5)
        assert ai.fed == [(1, b"held")] and stream.key == 1
        await asyncio.sleep(1.5)
        assert relay.streams.get((1, "7/a/0")) is stream, "idle counts from the open"
    finally:
        await relay.close()
