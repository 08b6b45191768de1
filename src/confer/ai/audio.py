"""Audio in: sniff the declared format, decode with PyAV to 16 kHz mono float32 for Whisper.

Decoding stops as soon as the duration limit is passed, so a small compressed file that
expands to hours of audio costs no more than the limit. Every failure is an `AudioError` with a
sentence a client can act on; PyAV's own exceptions never leak out.
"""

from __future__ import annotations

import io
from typing import Final

import numpy as np

SAMPLE_RATE: Final = 16000

# Declared format -> PyAV demuxer. `pcm` is raw signed 16-bit little-endian mono at
# the request's `sample_rate`, for clients that capture samples themselves.
DEMUXERS: Final = {
    "wav": "wav",
    "webm": "matroska",
    "ogg": "ogg",
    "ogg-opus": "ogg",
    "opus": "ogg",
    "mp3": "mp3",
    "pcm": "s16le",
}
FORMATS: Final = tuple(DEMUXERS)


class AudioError(ValueError):
    """The bytes are not decodable audio of the declared format, or break a limit."""


class AudioTooLong(AudioError):
    pass


def _looks_like(data: bytes, fmt: str) -> bool:
    head = data[:16]
    if fmt == "wav":
        return head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE"
    if fmt == "webm":
        return head[:4] == b"\x1a\x45\xdf\xa3"
    if fmt in ("ogg", "ogg-opus", "opus"):
        return head[:4] == b"OggS"
    if fmt == "mp3":
        return head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)
    return fmt == "pcm"


def sniff(data: bytes, fmt: str) -> None:
    """Cheap check before any decoder sees the bytes: right magic number for the format."""
    if fmt not in DEMUXERS:
        raise AudioError(f"unsupported format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not data:
        raise AudioError("audio_data is empty")
    if fmt == "pcm" and len(data) % 2:
        raise AudioError("pcm audio must be 16-bit samples (an even number of bytes)")
    if not _looks_like(data, fmt):
        raise AudioError(f"audio_data is not {fmt} audio (its header does not match)")


def decode(data: bytes, fmt: str, sample_rate: int, max_seconds: float) -> np.ndarray:
    """Decode to float32 mono at 16 kHz; raise AudioError for anything unusable."""
    sniff(data, fmt)
    if fmt == "pcm":
        return _decode_pcm(data, sample_rate, max_seconds)
    import av

    limit = int(max_seconds * SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r", format=DEMUXERS[fmt]) as container:
            streams = container.streams.audio
            if not streams:
                raise AudioError(f"the {fmt} data has no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(streams[0]):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += chunk.size
                if total > limit:
                    raise AudioTooLong(f"audio is longer than the {max_seconds:g} s limit")
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except AudioError:
        raise
    except (av.error.FFmpegError, ValueError, IndexError, OSError) as exc:
        raise AudioError(f"audio_data could not be decoded as {fmt}: {exc}") from exc
    if not chunks or sum(c.size for c in chunks) == 0:
        raise AudioError(f"the {fmt} data contains no audio samples")
    audio = np.concatenate(chunks).astype(np.float32, copy=False)
    if audio.size > limit:
        raise AudioTooLong(f"audio is longer than the {max_seconds:g} s limit")
    if not np.isfinite(audio).all():
        raise AudioError("decoded audio contains invalid samples")
    return audio


def _decode_pcm(data: bytes, sample_rate: int, max_seconds: float) -> np.ndarray:
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    if samples.size / sample_rate > max_seconds:
        raise AudioTooLong(f"audio is longer than the {max_seconds:g} s limit")
    return resample(samples, sample_rate)


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """Linear resampling to 16 kHz; enough for speech and free of extra dependencies."""
    if rate == SAMPLE_RATE or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    n_out = round(samples.size * SAMPLE_RATE / rate)
    positions = np.arange(n_out, dtype=np.float64) * (rate / SAMPLE_RATE)
    return np.interp(positions, np.arange(samples.size), samples).astype(np.float32)
