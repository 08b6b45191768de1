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
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from confer.ai.audio import SAMPLE_RATE

ZH_PROMPT = "以下是普通话的句子。"
MAX_NEW_TOKENS = 224
# The caption path encodes a window just longer than the utterance instead of Whisper's fixed
# 30 s (3000 mel frames): the encoder is most of the cost, so a 3-4 s utterance costs about a
# quarter (measured on espeak sentences: 0.44 s of CPU instead of 1.8 s, word error rate no
# worse). A floor of 8 s and 1 s of trailing silence: with a 6 s floor the decoder garbled
# some utterances cut by the VAD.
MIN_WINDOW_FRAMES = 800
PAD_FRAMES = 100
FULL_WINDOW_FRAMES = 3000
HOP = 160  # samples per mel frame
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
        """Transcribe `audio` (16 kHz mono float32). Audio that fits one window goes through
        `caption` (no timestamps: faster, and faster-whisper's timestamped decoding was seen to
        stop after the first sentences of a 21 s file); longer audio is decoded window by
        window. `streaming`: an utterance the VAD already cut (no VAD pass, no timestamps)."""
        duration = round(audio.size / SAMPLE_RATE, 2)
        if not streaming and audio.size // HOP + PAD_FRAMES < FULL_WINDOW_FRAMES:
            from faster_whisper.vad import VadOptions, get_speech_timestamps

            # Silero first, as vad_filter does: no speech, no text (Whisper invents some).
            speech = get_speech_timestamps(audio, VadOptions())
            if not speech:
                return Recognition("", 0.0, language or self.languages[0], duration)
            voiced = np.concatenate([audio[c["start"] : c["end"]] for c in speech])
            return replace(self.caption(voiced, language), duration=duration)
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

    def caption(self, audio: np.ndarray, language: str | None) -> Recognition:
        """Transcribe one utterance the VAD cut (the live-caption path): one encoder pass over
        a window sized to the audio, shared by language detection (when `language` is None)
        and greedy decoding without timestamps. Decoding is bounded like `recognize`."""
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        duration = round(audio.size / SAMPLE_RATE, 2)
        features = self.model.feature_extractor(audio)
        frames = features.shape[-1]
        if frames + PAD_FRAMES > FULL_WINDOW_FRAMES:  # recognize() sends only what fits
            return self.recognize(audio, language, streaming=True)
        size = max(frames + PAD_FRAMES, MIN_WINDOW_FRAMES)
        size += size % 2  # the encoder's convolution halves the frame count
        window = np.zeros((1, features.shape[0], size), dtype=np.float32)
        window[0, :, :frames] = features
        model = self.model.model
        encoded = model.encode(ctranslate2.StorageView.from_array(window), to_cpu=False)
        if language is None:
            probs = [(tok[2:-2], p) for tok, p in model.detect_language(encoded)[0]]
            allowed = {lang: p for lang, p in probs if lang in self.languages}
            language = max(allowed, key=allowed.__getitem__) if allowed else self.languages[0]
        tokenizer = Tokenizer(
            self.model.hf_tokenizer, model.is_multilingual, task="transcribe", language=language
        )
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        if language == "zh":
            prompt = [tokenizer.sot_prev, *tokenizer.encode(" " + ZH_PROMPT), *prompt]
        result = model.generate(
            encoded,
            [prompt],
            beam_size=1,
            max_length=len(prompt) + MAX_NEW_TOKENS,
            return_scores=True,
            return_no_speech_prob=True,
            repetition_penalty=1.05,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, (-1,)),
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        avg_logprob = float(result.scores[0]) if result.scores else -10.0
        no_speech = float(result.no_speech_prob)
        if no_speech > 0.6 and avg_logprob < -1.0:  # faster-whisper's silence rule
            tokens = []
        text = self.clean(tokenizer.decode(tokens), language)
        confidence = 0.0
        if text:
            value = math.exp(avg_logprob) * (1.0 - no_speech)
            confidence = round(min(max(value, 0.0), 1.0), 3)
        return Recognition(text, confidence, language, duration)

    def clean(self, text: str, language: str) -> str:
        text = collapse_repeats(text.strip())
        if language == "zh":
            text = _CJK_GAP.sub("", self._t2s.convert(text))
            if _PUNCT.sub("", text) == _PUNCT.sub("", ZH_PROMPT):
                return ""  # the prompt echoed back on silence
        return text.strip()
