"""Real speech for the AI tests: a recording a package ships, espeak-ng voices, and encoders.

- `beckett.wav` ships in the `useful-moonshine-onnx` wheel (the `test` extra installs it); we
  locate it through the wheel's file list without importing the package.
- espeak-ng (Debian) speaks English with `en-us` and Mandarin with `cmn-latn-pinyin` from
  tone-numbered pinyin; its plain `cmn` voice reads hanzi as English-sounding romanization.
- PyAV encodes the same speech to every container the API accepts, and to 20 ms Opus RTP
  payloads like a browser's microphone track.
"""

from __future__ import annotations

import importlib.metadata
import io
import re
import shutil
import subprocess
import unicodedata
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

BECKETT_TEXT = "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better."

ENGLISH = [
    "Please send the meeting notes to everyone before Friday.",
    "The quarterly budget review starts at ten in the morning.",
    "We will discuss the new product design and the release schedule.",
]
# (expected simplified Chinese, pinyin with tone numbers for espeak-ng at 120 words/minute).
# espeak's Mandarin is rough; these are sentences Whisper base can mostly follow.
MANDARIN = [
    ("我们明天上午开会", "wo3 men5 ming2 tian1 shang4 wu3 kai1 hui4"),
    ("我们明天开会", "wo3 men5 ming2 tian1 kai1 hui4"),
    ("我们下午开会", "wo3 men5 xia4 wu3 kai1 hui4"),
    ("我同意你的看法", "wo3 tong2 yi4 ni3 de5 kan4 fa3"),
    ("我们下次再讨论", "wo3 men5 xia4 ci4 zai4 tao3 lun4"),
]


def beckett_path() -> Path:
    dist = importlib.metadata.distribution("useful-moonshine-onnx")
    for f in dist.files or ():
        if f.name == "beckett.wav":
            return Path(str(dist.locate_file(f)))
    raise FileNotFoundError("beckett.wav is not in the useful-moonshine-onnx wheel")


def espeak(text: str, voice: str = "en-us", speed: int = 150) -> bytes:
    exe = shutil.which("espeak-ng")
    assert exe, "espeak-ng is not installed (apt-get install espeak-ng)"
    out = subprocess.run(
        [exe, "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True, check=True
    )
    return out.stdout


def pcm16k(data: bytes, fmt: str = "wav") -> np.ndarray:
    from confer.ai.audio import decode

    return decode(data, fmt, 16000, 600)


def with_silence(audio: np.ndarray, before: float = 0.5, after: float = 1.0) -> np.ndarray:
    pad = lambda s: np.zeros(int(s * 16000), dtype=np.float32)  # noqa: E731
    return np.concatenate([pad(before), audio, pad(after)])


# -- scoring ----------------------------------------------------------------------------


def _distance(a: list[str], b: list[str]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def hanzi(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) == "Lo"]


# The word error rate under which a recognition is "the same words". The model's int8 output
# changes by a word or two from one CPU to another (Beckett's 12 words came out with WER 0 on
# one machine and 0.17 on another), so no bound may be one word tight; audio played at the
# wrong speed stays above it (test_the_wrong_sample_rate_is_not_recognized).
SAME_WORDS = 0.3


def wer(reference: str, hypothesis: str) -> float:
    ref = words(reference)
    return _distance(ref, words(hypothesis)) / max(len(ref), 1)


def cer(reference: str, hypothesis: str) -> float:
    ref = hanzi(reference)
    return _distance(ref, hanzi(hypothesis)) / max(len(ref), 1)


# -- encoders ---------------------------------------------------------------------------

_CONTAINERS = {
    "wav": ("wav", "pcm_s16le", 16000),
    "ogg": ("ogg", "libopus", 48000),
    "webm": ("webm", "libopus", 48000),
    "mp3": ("mp3", "libmp3lame", 44100),
}


def encode(audio: np.ndarray, fmt: str) -> bytes:
    """16 kHz mono float32 -> a file of `fmt` (wav, ogg (Opus), webm (Opus), mp3, pcm)."""
    if fmt == "pcm":
        return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    container, codec, rate = _CONTAINERS[fmt]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=rate)
        frame = av.AudioFrame.from_ndarray(
            (np.clip(audio, -1, 1) * 32767).astype(np.int16).reshape(1, -1),
            format="s16",
            layout="mono",
        )
        frame.sample_rate = 16000
        frame.time_base = Fraction(1, 16000)
        frame.pts = 0
        for f in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def opus_packets(audio: np.ndarray, start_ts: int = 12345) -> list[tuple[bytes, int]]:
    """20 ms Opus payloads at 48 kHz with their RTP timestamps, as a WebRTC sender makes."""
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate = 48000
    enc.layout = "mono"
    enc.format = "s16"
    enc.bit_rate = 32000
    enc.time_base = Fraction(1, 48000)
    enc.options = {"frame_duration": "20", "application": "voip"}
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48000, frame_size=960)
    frame = av.AudioFrame.from_ndarray(
        (np.clip(audio, -1, 1) * 32767).astype(np.int16).reshape(1, -1),
        format="s16",
        layout="mono",
    )
    frame.sample_rate = 16000
    frame.time_base = Fraction(1, 16000)
    frame.pts = 0
    packets: list[tuple[bytes, int]] = []
    for f in [*resampler.resample(frame), *resampler.resample(None)]:
        for p in enc.encode(f):
            packets.append(bytes(p))
    packets += [bytes(p) for p in enc.encode(None)]
    return [(p, (start_ts + i * 960) & 0xFFFFFFFF) for i, p in enumerate(packets)]
