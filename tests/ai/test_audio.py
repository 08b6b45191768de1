"""Decoding what clients send: every accepted container, limits, and garbage."""

from __future__ import annotations

import numpy as np
import pytest

from confer.ai.audio import AudioError, AudioTooLong, decode, sniff
from tests.ai.speech import beckett_path, encode, pcm16k


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return pcm16k(beckett_path().read_bytes())


@pytest.mark.parametrize("fmt", ["wav", "ogg", "webm", "mp3", "pcm"])
def test_each_format_decodes_to_16k_mono_of_the_same_length(speech: np.ndarray, fmt: str) -> None:
    audio = decode(encode(speech, fmt), fmt, 16000, 60)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert audio.size / 16000 == pytest.approx(speech.size / 16000, abs=0.1)
    # The same sound, not just the same length: energy envelopes agree.
    n = min(audio.size, speech.size) // 1600 * 1600
    env = lambda a: np.sqrt((a[:n].reshape(-1, 1600) ** 2).mean(axis=1))  # noqa: E731
    assert np.corrcoef(env(audio), env(speech))[0, 1] > 0.9


def test_ogg_opus_aliases_share_the_ogg_demuxer(speech: np.ndarray) -> None:
    data = encode(speech[:16000], "ogg")
    for fmt in ("ogg-opus", "opus"):
        assert decode(data, fmt, 16000, 60).size == pytest.approx(16000, abs=400)


def test_pcm_is_resampled_from_the_declared_rate(speech: np.ndarray) -> None:
    at_8k = encode(speech[::2], "pcm")
    audio = decode(at_8k, "pcm", 8000, 60)
    assert audio.size == pytest.approx(speech.size, abs=2)


def test_decoding_stops_at_the_duration_limit(speech: np.ndarray) -> None:
    for fmt in ("mp3", "pcm", "wav"):
        with pytest.raises(AudioTooLong, match="3 s"):
            decode(encode(speech, fmt), fmt, 16000, 3)


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        (b"", "wav", "empty"),
        (b"just some text", "wav", "not wav"),
        (b"ID3" + bytes(100), "wav", "not wav"),
        (b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk", "wav", "could not be decoded"),
        (b"OggS" + bytes(300), "ogg", ""),
        (b"\x1a\x45\xdf\xa3" + b"\x42" * 300, "webm", ""),
        (b"\xff\xfb" + bytes(range(256)) * 3, "mp3", ""),
        (b"\x00\x01\x02", "pcm", "even number"),
        (b"RIFF....WAVE", "flac", "unsupported format"),
    ],
)
def test_garbage_is_an_audio_error(data: bytes, fmt: str, message: str) -> None:
    with pytest.raises(AudioError, match=message or None):
        decode(data, fmt, 16000, 60)


def test_a_video_only_webm_has_no_audio_stream() -> None:
    import io

    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="webm") as out:
        stream = out.add_stream("libvpx", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            frame.pts = i
            for p in stream.encode(frame):
                out.mux(p)
        for p in stream.encode(None):
            out.mux(p)
    with pytest.raises(AudioError, match="no audio stream"):
        decode(buf.getvalue(), "webm", 16000, 60)


def test_sniff_accepts_each_format_by_its_magic(speech: np.ndarray) -> None:
    for fmt in ("wav", "ogg", "webm", "mp3", "pcm"):
        sniff(encode(speech[:8000], fmt), fmt)
