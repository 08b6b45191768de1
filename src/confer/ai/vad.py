"""Streaming voice-activity detection: Silero VAD (shipped inside faster-whisper) frame by frame.

faster-whisper runs Silero over a whole file; captions need it live, so we keep the model's
recurrent state per speaker and feed 32 ms frames as they arrive. A hysteresis (enter at one
probability, leave below a lower one, and only after enough silence) turns the per-frame
probabilities into utterance boundaries that do not flap on short pauses between words.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

FRAME = 512  # samples at 16 kHz: 32 ms, what Silero v5/v6 expects
_CONTEXT = 64


class SileroModel:
    """One ONNX session shared by every speaker stream (onnxruntime sessions are thread-safe)."""

    def __init__(self) -> None:
        import onnxruntime
        from faster_whisper.utils import get_assets_path

        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        path = os.path.join(get_assets_path(), "silero_vad_v6.onnx")
        self.session = onnxruntime.InferenceSession(
            path, providers=["CPUExecutionProvider"], sess_options=opts
        )

    def new_state(self) -> dict[str, Any]:
        return {
            "h": np.zeros((1, 1, 128), dtype=np.float32),
            "c": np.zeros((1, 1, 128), dtype=np.float32),
            "context": np.zeros((1, _CONTEXT), dtype=np.float32),
        }

    def probability(self, frame: np.ndarray, state: dict[str, Any]) -> float:
        window = np.concatenate([state["context"], frame.reshape(1, FRAME)], axis=1)
        out, state["h"], state["c"] = self.session.run(
            None, {"input": window, "h": state["h"], "c": state["c"]}
        )
        state["context"] = window[:, -_CONTEXT:]
        return float(np.asarray(out).reshape(-1)[0])


@dataclass(frozen=True, slots=True)
class Boundary:
    kind: str  # "start" | "end"
    sample: int  # absolute sample index in the speaker's stream


class Segmenter:
    """Turns audio into utterance start / end boundaries for one speaker."""

    def __init__(
        self,
        model: SileroModel,
        *,
        threshold: float = 0.5,
        min_speech_ms: int = 96,
        silence_ms: int = 480,
        pad_ms: int = 192,
    ) -> None:
        self.model = model
        self.state = model.new_state()
        self.threshold = threshold
        self.leave = max(threshold - 0.15, 0.05)
        self.min_speech = max(1, min_speech_ms * 16 // FRAME)
        self.min_silence = max(1, silence_ms * 16 // FRAME)
        self.pad = pad_ms * 16
        self.position = 0  # samples consumed
        self.in_speech = False
        self._run = 0  # consecutive frames voting for a change of state
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> list[Boundary]:
        out: list[Boundary] = []
        buf = np.concatenate([self._pending, samples]) if self._pending.size else samples
        n = buf.size // FRAME
        for i in range(n):
            frame = buf[i * FRAME : (i + 1) * FRAME]
            p = self.model.probability(frame, self.state)
            self.position += FRAME
            if not self.in_speech:
                self._run = self._run + 1 if p >= self.threshold else 0
                if self._run >= self.min_speech:
                    self.in_speech, self._run = True, 0
                    start = self.position - self.min_speech * FRAME - self.pad
                    out.append(Boundary("start", max(start, 0)))
            else:
                self._run = self._run + 1 if p < self.leave else 0
                if self._run >= self.min_silence:
                    self.in_speech, self._run = False, 0
                    end = self.position - self.min_silence * FRAME + self.pad
                    out.append(Boundary("end", min(end, self.position)))
        self._pending = buf[n * FRAME :].copy()
        return out

    @property
    def pausing(self) -> bool:
        """In an utterance, but the last frames were silent: its end may be near."""
        return self.in_speech and self._run > 0

    def force_end(self) -> Boundary | None:
        """Close an utterance that is still open (stream closed or length cap reached)."""
        if not self.in_speech:
            return None
        self.in_speech, self._run = False, 0
        return Boundary("end", self.position)

    def reopen(self) -> Boundary:
        """After a length cap: the speaker is still talking, so a new utterance starts now."""
        self.in_speech, self._run = True, 0
        return Boundary("start", self.position)
