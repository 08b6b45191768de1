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
    audio = with_silence(pcm16k(espeak(SENTENCE)), 0.5, 0.3)  # too short a pause to end it
    try:
        # The AI worker is not started yet: the first frames wait for it, none are lost.
        for frame in frames_of(opus_packets(audio), "7/p1/0", 7):
            relay.on_frame(frame)
        relay.on_frame({"op": "audio", "meeting_id": 5, "packets": [["bad"]]})  # ignored
        relay.on_frame({"op": "audio_end"})  # ignored
        assert set(relay.streams) == {"7/p1/0"}
        for _ in range(600):
            if relay.streams["7/p1/0"].key is not None:
                break
            await asyncio.sleep(0.1)
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
    for sid, meeting, user in (("7/a/0", 1, 7), ("7/b/0", 1, 7), ("8/c/0", 1, 8), ("9/d/0", 2, 9)):
        relay.streams[sid] = captions._Stream(meeting, user)
    relay.close_where(1, 7, "a")
    assert set(relay.streams) == {"7/b/0", "8/c/0", "9/d/0"}
    relay.close_where(1, 7)
    assert set(relay.streams) == {"8/c/0", "9/d/0"}
    relay.close_where(1)
    assert set(relay.streams) == {"9/d/0"}
    assert all(s.meeting_id == 2 for s in relay.streams.values())
