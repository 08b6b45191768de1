"""Streaming voice-activity detection cuts real speech into utterances, and ignores the rest."""

from __future__ import annotations

import numpy as np
import pytest

from confer.ai.vad import Segmenter, SileroModel
from tests.ai.speech import espeak, pcm16k, with_silence


@pytest.fixture(scope="module")
def vad() -> SileroModel:
    return SileroModel()


def run(seg: Segmenter, audio: np.ndarray, chunk: int = 320) -> list[tuple[str, float]]:
    out = []
    for i in range(0, audio.size, chunk):
        out += [(b.kind, b.sample / 16000) for b in seg.push(audio[i : i + chunk])]
    return out


def test_two_sentences_with_a_pause_are_two_utterances(vad: SileroModel) -> None:
    one = pcm16k(espeak("Please send the meeting notes to everyone."))
    two = pcm16k(espeak("The budget review starts at ten."))
    audio = np.concatenate([with_silence(one, 1.0, 1.5), with_silence(two, 0.0, 1.5)])
    events = run(Segmenter(vad), audio)
    assert [k for k, _ in events] == ["start", "end", "start", "end"], events
    first_end, second_start = events[1][1], events[2][1]
    boundary = 1.0 + one.size / 16000
    assert first_end == pytest.approx(boundary, abs=0.6)
    assert second_start == pytest.approx(boundary + 1.5, abs=0.6)
    assert events[0][1] == pytest.approx(1.0, abs=0.4)


def test_short_pauses_inside_a_sentence_do_not_split_it(vad: SileroModel) -> None:
    audio = with_silence(pcm16k(espeak("Please send the meeting notes, to everyone, today.")))
    kinds = [k for k, _ in run(Segmenter(vad, silence_ms=600), audio)]
    assert kinds == ["start", "end"]


def test_chunk_size_does_not_change_the_decisions(vad: SileroModel) -> None:
    audio = with_silence(pcm16k(espeak("Ever tried. Ever failed.")), 0.5, 1.5)
    assert run(Segmenter(vad), audio, 160) == run(Segmenter(vad), audio, 2000)


def test_silence_and_steady_noise_are_not_speech(vad: SileroModel) -> None:
    rng = np.random.default_rng(3)
    assert run(Segmenter(vad), np.zeros(16000 * 3, dtype=np.float32)) == []
    hum = (0.05 * np.sin(np.arange(16000 * 3) * 2 * np.pi * 50 / 16000)).astype(np.float32)
    hiss = (rng.standard_normal(16000 * 3) * 0.01).astype(np.float32)
    assert run(Segmenter(vad), hum + hiss) == []


def test_force_end_closes_an_open_utterance(vad: SileroModel) -> None:
    seg = Segmenter(vad)
    speech = pcm16k(espeak("Please send the meeting notes to everyone before Friday."))
    events = run(seg, np.concatenate([np.zeros(8000, np.float32), speech[: speech.size // 2]]))
    assert [k for k, _ in events] == ["start"]
    end = seg.force_end()
    assert end is not None and end.kind == "end" and seg.force_end() is None
