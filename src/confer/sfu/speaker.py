"""Audio levels (RFC 6464) -> the dominant speaker of a meeting.

Publishers' audio packets carry their own level (-dBov, 0 loudest, 127 silence) and a voice
activity flag; no audio is decoded. Each speaker's recent loudness is smoothed, and the
dominant speaker changes only when someone else is clearly louder for a while, so a cough does
not flip every client's layout.
"""

from __future__ import annotations

from dataclasses import dataclass

SILENCE_DBOV = 127
SPEECH_DBOV = 60  # quieter than -60 dBov counts as silence
HALF_LIFE = 0.4  # seconds: how fast a speaker's score follows its level
SWITCH_MARGIN = 1.25  # a challenger must be this much louder than the dominant speaker
MIN_SCORE = 8.0


def parse_audio_level(value: bytes | bytearray | memoryview) -> tuple[int, bool]:
    """(level in -dBov, voice activity) of an ssrc-audio-level extension value."""
    if len(value) < 1:
        raise ValueError("empty audio level extension")
    return value[0] & 0x7F, bool(value[0] & 0x80)


@dataclass(slots=True)
class _Speaker:
    score: float = 0.0
    updated: float = 0.0


class SpeakerDetector:
    """Keyed by any hashable id (the SFU uses the publishing peer)."""

    def __init__(self) -> None:
        self._speakers: dict[object, _Speaker] = {}
        self.dominant: object | None = None

    def observe(self, key: object, level: int, voice: bool, now: float) -> None:
        loudness = float(max(0, SPEECH_DBOV - level)) if voice or level < SPEECH_DBOV else 0.0
        sp = self._speakers.get(key)
        if sp is None:
            sp = self._speakers[key] = _Speaker(0.0, now)
        dt = max(0.0, now - sp.updated)
        keep = 0.5 ** (dt / HALF_LIFE) if dt else 0.9
        keep = min(keep, 0.98)
        sp.score = sp.score * keep + loudness * (1 - keep)
        sp.updated = now

    def forget(self, key: object) -> None:
        self._speakers.pop(key, None)
        if self.dominant == key:
            self.dominant = None

    def scores(self, now: float) -> dict[object, float]:
        """Scores decayed to `now`, so a speaker who stopped sending fades out."""
        return {
            k: sp.score * 0.5 ** (max(0.0, now - sp.updated) / HALF_LIFE)
            for k, sp in self._speakers.items()
        }

    def tick(self, now: float) -> object | None:
        """The new dominant speaker when it changed, else None."""
        scores = self.scores(now)
        if not scores:
            return None
        best = max(scores, key=lambda k: scores[k])
        if scores[best] < MIN_SCORE or best == self.dominant:
            return None
        current = scores.get(self.dominant, 0.0) if self.dominant is not None else 0.0
        if scores[best] < current * SWITCH_MARGIN:
            return None
        self.dominant = best
        return best
