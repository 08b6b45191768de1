"""Recognition accuracy on real speech, with bounds measured on this model.

Measured with Whisper base int8, greedy decoding (see the report in bench/results/asr.md):
beckett.wav WER 0.00; espeak-ng en-us sentences WER ~0.20 overall; espeak-ng Mandarin
(cmn-latn-pinyin, 120 wpm) CER ~0.18 overall. The bounds leave room for CPU-dependent
int8 rounding, but a pipeline that decodes at the wrong rate, loses samples, picks the wrong
language or answers in traditional characters lands far above them.
"""

from __future__ import annotations

import numpy as np
import pytest
from opencc import OpenCC

from confer.ai.recognizer import Recognizer, collapse_repeats, confidence_of
from tests.ai.speech import (
    BECKETT_TEXT,
    ENGLISH,
    MANDARIN,
    SAME_WORDS,
    _distance,
    beckett_path,
    cer,
    espeak,
    hanzi,
    pcm16k,
    wer,
    words,
)


def test_beckett_recording_comes_out_as_its_words(recognizer: Recognizer) -> None:
    result = recognizer.recognize(pcm16k(beckett_path().read_bytes()), "en")
    assert wer(BECKETT_TEXT, result.text) <= SAME_WORDS, result
    assert result.language == "en" and result.duration == pytest.approx(9.96, abs=0.01)


def test_english_synthesized_speech_word_error_rate(recognizer: Recognizer) -> None:
    errors = total = 0
    for sentence in ENGLISH:
        text = recognizer.recognize(pcm16k(espeak(sentence, "en-us", 150)), "en").text
        errors += _distance(words(sentence), words(text))
        total += len(words(sentence))
    assert errors / total <= 0.3, (errors, total)


def test_mandarin_synthesized_speech_character_error_rate(recognizer: Recognizer) -> None:
    errors = total = 0
    texts = []
    for expected, pinyin in MANDARIN:
        result = recognizer.recognize(pcm16k(espeak(pinyin, "cmn-latn-pinyin", 120)), "zh")
        texts.append(result.text)
        errors += round(cer(expected, result.text) * len(hanzi(expected)))
        total += len(hanzi(expected))
    assert errors / total <= 0.35, texts
    t2s = OpenCC("t2s")
    assert all(t2s.convert(t) == t for t in texts), texts  # simplified only


def test_a_twenty_second_file_is_transcribed_to_its_end(recognizer: Recognizer) -> None:
    """Beckett and three sentences, 21 s: every sentence comes out (faster-whisper's
    timestamped decoding stopped after Beckett, WER 0.71; one window without timestamps: 0.12)."""
    audio = np.concatenate(
        [pcm16k(beckett_path().read_bytes())] + [pcm16k(espeak(s)) for s in ENGLISH]
    )
    result = recognizer.recognize(audio, "en")
    assert wer(" ".join([BECKETT_TEXT, *ENGLISH]), result.text) <= 0.3, result
    assert "friday" in words(result.text) and "morning" in words(result.text)
    assert result.duration == pytest.approx(audio.size / 16000, abs=0.01)


def test_the_wrong_sample_rate_is_not_recognized(recognizer: Recognizer) -> None:
    # The guard the bounds rely on: the same words played at the wrong speed fail them.
    audio = pcm16k(beckett_path().read_bytes())[::2]
    assert wer(BECKETT_TEXT, recognizer.recognize(audio, "en").text) > SAME_WORDS


def test_automatic_language_chooses_among_the_configured_ones(recognizer: Recognizer) -> None:
    lang, share = recognizer.detect(pcm16k(beckett_path().read_bytes()))
    assert lang == "en" and share > 0.9
    # espeak's Mandarin is heard as Thai by the full detector; we only pick zh or en.
    zh = pcm16k(espeak(MANDARIN[0][1], "cmn-latn-pinyin", 120))
    assert recognizer.detect(zh)[0] in ("zh", "en")


def test_silence_and_noise_give_no_text(recognizer: Recognizer) -> None:
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal(16000 * 3) * 0.1).astype(np.float32)
    for audio in (np.zeros(16000 * 3, dtype=np.float32), noise):
        for lang in ("en", "zh"):
            result = recognizer.recognize(audio, lang)
            assert result.text == "" and result.confidence == 0.0, result


def test_repetition_loops_collapse_but_emphasis_stays() -> None:
    assert collapse_repeats("fail again fail again fail again fail again fail again") == (
        "fail again"
    )
    assert collapse_repeats("王将王将王将王将王将") == "王将"
    assert collapse_repeats("no, no, no. Try again.") == "no, no, no. Try again."


class _Seg:
    def __init__(self, n: int, logprob: float, no_speech: float) -> None:
        self.tokens = list(range(n))
        self.avg_logprob = logprob
        self.no_speech_prob = no_speech


def test_confidence_weights_segments_by_their_tokens() -> None:
    assert confidence_of([]) == 0.0
    assert confidence_of([_Seg(10, 0.0, 0.0)]) == 1.0
    sure, unsure = confidence_of([_Seg(10, -0.1, 0.0)]), confidence_of([_Seg(10, -1.0, 0.0)])
    assert sure > unsure
    mixed = confidence_of([_Seg(30, -0.1, 0.0), _Seg(1, -3.0, 0.0)])
    assert unsure < mixed < sure
    assert confidence_of([_Seg(10, -0.1, 0.5)]) == pytest.approx(sure / 2, abs=0.001)
