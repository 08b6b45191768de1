"""The caption engine on Opus packets encoded from real speech, in-process and through the
worker process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from confer.ai.captions import CaptionEngine, CaptionEvent
from confer.ai.recognizer import Recognizer
from confer.ai.service import AIService
from confer.config import Settings
from tests.ai.speech import espeak, opus_packets, pcm16k, wer, with_silence

FIRST = "Please send the meeting notes to everyone before Friday."
SECOND = "The quarterly budget review starts at ten in the morning."


@pytest.fixture(scope="module")
def two_sentences() -> tuple[np.ndarray, float, float]:
    """0.8 s silence, FIRST, 1.5 s silence, SECOND, 1.5 s silence; with the times (s) where
    FIRST and SECOND end."""
    one, two = pcm16k(espeak(FIRST)), pcm16k(espeak(SECOND))
    audio = np.concatenate([with_silence(one, 0.8, 1.5), with_silence(two, 0.0, 1.5)])
    return audio, 0.8 + one.size / 16000, 0.8 + one.size / 16000 + 1.5 + two.size / 16000


def caption(engine: CaptionEngine, packets: list[tuple[bytes, int]]) -> list[CaptionEvent]:
    events: list[CaptionEvent] = []
    engine.emit = events.append
    for payload, ts in packets:
        for job in engine.feed(1, payload, ts):
            engine.run_job(job)
    for job in engine.close(1):
        engine.run_job(job)
    return events


def test_each_sentence_becomes_one_final_caption_with_its_words(
    recognizer: Recognizer, two_sentences: tuple[np.ndarray, float, float]
) -> None:
    audio, first_end, second_end = two_sentences
    engine = CaptionEngine(recognizer, lambda e: None)
    engine.open(1, meeting_id=5, user_id=7, language="en", tag="t")
    events = caption(engine, opus_packets(audio))
    finals = [e for e in events if e.final]
    assert [wer(ref, e.text) <= 0.35 for ref, e in zip([FIRST, SECOND], finals, strict=True)] == [
        True,
        True,
    ], finals
    assert all(e.meeting_id == 5 and e.user_id == 7 and e.language == "en" for e in events)
    assert finals[0].utterance_id != finals[1].utterance_id
    # Times follow the audio: each caption spans its sentence (plus a little VAD padding).
    assert finals[0].end - finals[0].start == pytest.approx(first_end - 0.8, abs=0.6)
    assert finals[1].end - finals[0].start == pytest.approx(second_end - 0.8, abs=0.6)
    assert finals[0].end < finals[1].start
    assert 0 < finals[0].confidence <= 1


def test_partials_come_while_speaking_and_precede_their_final(
    recognizer: Recognizer, two_sentences: tuple[np.ndarray, float, float]
) -> None:
    engine = CaptionEngine(recognizer, lambda e: None, partial_interval=1.0)
    engine.open(1, 5, 7, "en", "p")
    events = caption(engine, opus_packets(two_sentences[0]))
    first_id = next(e.utterance_id for e in events if e.final)
    partials = [e for e in events if e.utterance_id == first_id and not e.final]
    assert partials, events
    final_index = next(i for i, e in enumerate(events) if e.final)
    assert all(events.index(p) < final_index for p in partials)
    # A partial covers a prefix of the utterance: it ends before the final does.
    assert all(p.end < events[final_index].end for p in partials)
    assert any(w in partials[-1].text.lower() for w in ("please", "send", "meeting"))


def test_partials_are_skipped_when_inference_is_too_slow_for_them(recognizer: Recognizer) -> None:
    engine = CaptionEngine(recognizer, lambda e: None, partial_interval=1.0)
    assert engine.partials_affordable  # nothing measured yet
    engine.inference_seconds = 0.9
    assert not engine.partials_affordable
    engine.inference_seconds = 0.2
    assert engine.partials_affordable


def test_long_speech_is_cut_at_the_utterance_cap(recognizer: Recognizer) -> None:
    speech = pcm16k(espeak(" ".join([FIRST, SECOND, FIRST])))
    engine = CaptionEngine(recognizer, lambda e: None, max_utterance=4.0, partial_interval=60)
    engine.open(1, 5, 7, "en", "c")
    finals = [e for e in caption(engine, opus_packets(with_silence(speech))) if e.final]
    assert len(finals) >= speech.size / 16000 // 4
    assert all(e.end - e.start <= 4.05 for e in finals)


def test_a_hole_in_the_rtp_clock_keeps_caption_times_true(
    recognizer: Recognizer, two_sentences: tuple[np.ndarray, float, float]
) -> None:
    audio = two_sentences[0]
    packets = opus_packets(audio)
    # 25 packets (0.5 s) of the pause between the sentences never arrive.
    pause = int((two_sentences[1] + 0.5) / 0.02)
    lossy = packets[:pause] + packets[pause + 25 :]
    engine = CaptionEngine(recognizer, lambda e: None, partial_interval=60)
    engine.open(1, 5, 7, "en", "g")
    whole = [e for e in caption(engine, packets) if e.final]
    engine.open(1, 5, 7, "en", "h")
    holed = [e for e in caption(engine, lossy) if e.final]
    offset = lambda fs: fs[1].start - fs[0].start  # noqa: E731
    assert offset(holed) == pytest.approx(offset(whole), abs=0.1)


def test_automatic_language_finds_english_a_fixed_one_holds(recognizer: Recognizer) -> None:
    zh = pcm16k(espeak("wo3 men5 ming2 tian1 shang4 wu3 kai1 hui4", "cmn-latn-pinyin", 120))
    engine = CaptionEngine(recognizer, lambda e: None, partial_interval=60)
    engine.open(1, 5, 8, None, "z")
    en_events = caption(engine, opus_packets(with_silence(pcm16k(espeak(FIRST)))))
    assert [e.language for e in en_events if e.final] == ["en"]
    engine.open(1, 5, 8, "zh", "y")
    zh_final = next(e for e in caption(engine, opus_packets(with_silence(zh))) if e.final)
    assert zh_final.language == "zh" and "明天" in zh_final.text


async def test_the_worker_process_captions_a_stream(
    model_dir: Path, tmp_path: Path, two_sentences: tuple[np.ndarray, float, float]
) -> None:
    service = AIService(Settings(data_dir=tmp_path, ai_model_dir=model_dir))
    received: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def listener(event: dict[str, Any]) -> None:
        received.append(event)
        if sum(1 for e in received if e["final"]) == 2:
            done.set()

    service.subscribe(listener)
    try:
        key = await service.open_stream(meeting_id=9, user_id=3, language="en")
        for payload, ts in opus_packets(two_sentences[0]):
            service.feed(key, payload, ts)
        service.close_stream(key)
        await asyncio.wait_for(done.wait(), 240)
    finally:
        await service.close()
    finals = [e for e in received if e["final"]]
    assert wer(FIRST, finals[0]["text"]) <= 0.35 and wer(SECOND, finals[1]["text"]) <= 0.35
    assert {e["meeting_id"] for e in received} == {9} and {e["user_id"] for e in received} == {3}
    assert service.worker is None
