"""Whisper inference with bounded decoding, language choice and simplified Chinese output.

Runs inside the AI worker process only. Known traps of Whisper base, and what we do:
- repetition / hallucination loops: greedy decoding at temperature 0 only (no sampling
  fallback: deterministic and bounded in time), no conditioning on previous text, a cap on new
  tokens per 30 s window, a mild repetition penalty, and a final pass that collapses a phrase
  repeated four times or more; silence is cut by Silero VAD before decoding;
- language detection on short audio is erratic (espeak Mandarin is detected as Thai): we only
  choose among the configured languages, by the model's own probabilities;
- Chinese comes out in traditional characters: an initial prompt in simplified characters steers
  the decoder and OpenCC's t2s table converts whatever traditional characters remain.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from confer.ai.audio import SAMPLE_RATE

ZH_PROMPT = "以下是普通话的句子。"
MAX_NEW_TOKENS = 224
_REPEATS = re.compile(r"(.{2,40}?)(?:\s*\1){3,}", re.DOTALL)
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
_CJK_GAP = re.compile(r"(?<=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])\s+|\s+(?=[\u4e00-\u9fff])")


@dataclass(frozen=True, slots=True)
class Recognition:
    text: str
    confidence: float
    language: str
    duration: float

    def as_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "confidence": self.confidence,
            "language": self.language,
            "duration": self.duration,
        }


def collapse_repeats(text: str) -> str:
    """'fail again fail again fail again fail again' -> 'fail again' (loops, not emphasis)."""
    return _REPEATS.sub(r"\1", text)


def confidence_of(segments: Sequence[object]) -> float:
    """Token-weighted mean of per-token probability, discounted by the no-speech probability."""
    tokens = 0
    logprob = 0.0
    speech = 0.0
    for seg in segments:
        n = max(len(seg.tokens), 1)  # type: ignore[attr-defined]
        tokens += n
        logprob += seg.avg_logprob * n  # type: ignore[attr-defined]
        speech += (1.0 - seg.no_speech_prob) * n  # type: ignore[attr-defined]
    if tokens == 0:
        return 0.0
    value = math.exp(logprob / tokens) * (speech / tokens)
    return round(min(max(value, 0.0), 1.0), 3)


class Recognizer:
    def __init__(self, model_dir: Path, threads: int, languages: Sequence[str]) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        from faster_whisper import WhisperModel
        from opencc import OpenCC

        self.model = WhisperModel(
            str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads
        )
        self.languages = tuple(languages)
        self._t2s = OpenCC("t2s")

    def detect(self, audio: np.ndarray) -> tuple[str, float]:
        """The most probable of the allowed languages, with its share of their probability."""
        _, _, probs = self.model.detect_language(audio)
        allowed = {lang: p for lang, p in probs if lang in self.languages}
        if not allowed:
            return self.languages[0], 0.0
        total = sum(allowed.values()) or 1.0
        best = max(allowed, key=allowed.__getitem__)
        return best, allowed[best] / total

    def recognize(
        self, audio: np.ndarray, language: str | None, *, streaming: bool = False
    ) -> Recognition:
        """Transcribe `audio` (16 kHz mono float32). `streaming` is the caption path: an
        utterance the VAD already cut, no timestamps needed."""
        duration = round(audio.size / SAMPLE_RATE, 2)
        if language is None:
            language, _ = self.detect(audio)
        segments, _info = self.model.transcribe(
            audio,
            language=language,
            task="transcribe",
            beam_size=1,
            best_of=1,
            temperature=0.0,
            compression_ratio_threshold=2.4,
            log_prob_threshold=-1.0,
            no_speech_threshold=0.6,
            condition_on_previous_text=False,
            initial_prompt=ZH_PROMPT if language == "zh" else None,
            max_new_tokens=MAX_NEW_TOKENS,
            without_timestamps=streaming,
            vad_filter=not streaming,
            repetition_penalty=1.05,
        )
        kept = list(segments)
        text = self.clean("".join(s.text for s in kept), language)
        confidence = confidence_of(kept) if text else 0.0
        return Recognition(text, confidence, language, duration)

    def clean(self, text: str, language: str) -> str:
        text = collapse_repeats(text.strip())
        if language == "zh":
            text = _CJK_GAP.sub("", self._t2s.convert(text))
            if _PUNCT.sub("", text) == _PUNCT.sub("", ZH_PROMPT):
                return ""  # the prompt echoed back on silence
        return text.strip()
