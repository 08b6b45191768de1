"""POST /api/v1/ai/speech/recognition over real HTTP against a real server and model."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable

import httpx
import numpy as np
import pytest

from confer.ai.recognizer import ZH_PROMPT
from tests.ai.conftest import NO_MEDIA
from tests.ai.speech import (
    BECKETT_TEXT,
    SAME_WORDS,
    beckett_path,
    cer,
    encode,
    espeak,
    pcm16k,
    wer,
)
from tests.support.api import Api, err, ok
from tests.support.servers import ConferServer

PATH = "/api/v1/ai/speech/recognition"


def body(data: bytes, **fields: object) -> dict[str, object]:
    return {"audio_data": base64.b64encode(data).decode(), **fields}


def test_the_spec_request_returns_text_confidence_language_duration(ai_api: Api) -> None:
    user = ai_api.register()
    r = ai_api.post(
        PATH,
        user,
        json=body(beckett_path().read_bytes(), language="en", format="wav", sample_rate=16000),
    )
    data = ok(r)
    assert set(data) == {"text", "confidence", "language", "duration"}
    assert wer(BECKETT_TEXT, data["text"]) <= SAME_WORDS, data
    assert data["language"] == "en"
    assert data["duration"] == pytest.approx(9.96, abs=0.05)
    assert 0.2 < data["confidence"] <= 1.0


@pytest.mark.parametrize("fmt", ["webm", "ogg", "mp3", "pcm"])
def test_compressed_and_raw_formats_decode_to_the_same_words(ai_api: Api, fmt: str) -> None:
    user = ai_api.register()
    audio = pcm16k(beckett_path().read_bytes())
    rate = 16000
    if fmt == "pcm":  # raw samples carry no header: the request's sample_rate says how fast
        rate = 8000
        audio = audio[::2]
    data = ok(ai_api.post(PATH, user, json=body(encode(audio, fmt), format=fmt, sample_rate=rate)))
    assert wer(BECKETT_TEXT, data["text"]) <= SAME_WORDS, data
    assert data["duration"] == pytest.approx(9.96, abs=0.1)


def test_automatic_language_detects_english(ai_api: Api) -> None:
    user = ai_api.register()
    speech = espeak("Please send the meeting notes to everyone before Friday.")
    for language in ("auto", None):
        data = ok(ai_api.post(PATH, user, json=body(speech, language=language)))
        assert data["language"] == "en"
        assert "friday" in data["text"].lower()


def test_mandarin_comes_back_in_simplified_characters(ai_api: Api) -> None:
    from opencc import OpenCC

    user = ai_api.register()
    speech = espeak("wo3 men5 ming2 tian1 shang4 wu3 kai1 hui4", "cmn-latn-pinyin", 120)
    data = ok(ai_api.post(PATH, user, json=body(speech, language="zh")))
    assert data["language"] == "zh"
    assert cer("我们明天上午开会", data["text"]) <= 0.25, data  # traditional: 我們明天上午開會
    assert OpenCC("t2s").convert(data["text"]) == data["text"]


def test_silence_is_an_empty_transcript_not_the_prompt(ai_api: Api) -> None:
    user = ai_api.register()
    silence = encode(np.zeros(16000 * 3, dtype=np.float32), "wav")
    data = ok(ai_api.post(PATH, user, json=body(silence, language="zh")))
    assert data["text"] == "" and data["confidence"] == 0.0
    assert ZH_PROMPT not in data["text"]


def test_confidence_comes_from_the_model_not_a_constant(ai_api: Api) -> None:
    user = ai_api.register()
    clear = ok(ai_api.post(PATH, user, json=body(beckett_path().read_bytes(), language="en")))
    rng = np.random.default_rng(7)
    babble = (rng.standard_normal(16000 * 4) * 0.3).astype(np.float32)
    audio = pcm16k(beckett_path().read_bytes())[: 16000 * 4] * 0.15 + babble
    noisy = ok(ai_api.post(PATH, user, json=body(encode(audio, "wav"), language="en")))
    assert clear["confidence"] > noisy["confidence"], (clear, noisy)


def test_requires_a_token(ai_api: Api) -> None:
    err(ai_api.post(PATH, json=body(b"RIFF")), 401, 10004)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"language": "fr"}, "language"),
        ({"format": "flac"}, "format"),
        ({"sample_rate": 1000}, "sample_rate"),
        ({"audio_data": "not base64!!"}, "audio_data"),
    ],
)
def test_bad_fields_are_validation_errors(
    ai_api: Api, fields: dict[str, object], field: str
) -> None:
    user = ai_api.register()
    payload = {**body(beckett_path().read_bytes()), **fields}
    e = err(ai_api.post(PATH, user, json=payload), 400, err_type="ValidationError")
    assert field in str(e["error"]["details"])


def test_missing_audio_is_a_validation_error(ai_api: Api) -> None:
    user = ai_api.register()
    err(ai_api.post(PATH, user, json={"format": "wav"}), 400, err_type="ValidationError")


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (b"hello, this is plain text and not audio at all", "wav"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt garbage that is not a wave file", "wav"),
        (b"OggS" + bytes(200), "ogg"),
        (bytes(range(256)) * 4, "mp3"),
        (b"\x1a\x45\xdf\xa3" + b"\xff" * 100, "webm"),
        (b"", "wav"),
    ],
)
def test_not_audio_is_40002_never_500(ai_api: Api, data: bytes, fmt: str) -> None:
    user = ai_api.register()
    e = err(ai_api.post(PATH, user, json=body(data, format=fmt)), 400, 40002)
    assert e["error"]["details"]


def test_audio_in_another_format_than_declared_is_40002(ai_api: Api) -> None:
    user = ai_api.register()
    mp3 = encode(pcm16k(beckett_path().read_bytes()), "mp3")
    e = err(ai_api.post(PATH, user, json=body(mp3, format="wav")), 400, 40002)
    assert "not wav" in e["error"]["details"]


def test_audio_over_the_duration_limit_is_413(tight_api: Api) -> None:
    user = tight_api.register()
    ten_seconds = encode(pcm16k(beckett_path().read_bytes()), "mp3")  # small, but 10 s long
    e = err(tight_api.post(PATH, user, json=body(ten_seconds, format="mp3")), 413)
    assert "5 s" in e["error"]["details"]


def test_audio_over_the_size_limit_is_413(tight_api: Api) -> None:
    user = tight_api.register()
    e = err(tight_api.post(PATH, user, json=body(bytes(300_001), format="pcm")), 413)
    assert "300000" in e["error"]["details"]


def _post_all(api: Api, payloads: list[tuple[object, dict[str, object]]]) -> list[httpx.Response]:
    results: list[httpx.Response | None] = [None] * len(payloads)
    barrier = threading.Barrier(len(payloads))

    def go(i: int, user: object, payload: dict[str, object]) -> None:
        with httpx.Client(base_url=api.base_url, timeout=300) as http:
            barrier.wait()
            results[i] = http.post(PATH, json=payload, headers=user.auth)  # type: ignore[attr-defined]

    threads = [threading.Thread(target=go, args=(i, *p)) for i, p in enumerate(payloads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None]


def test_overload_is_503_in_the_envelope(tight_api: Api) -> None:
    speech = encode(pcm16k(beckett_path().read_bytes())[: 16000 * 4], "wav")
    users = [tight_api.register() for _ in range(4)]
    responses = _post_all(tight_api, [(u, body(speech)) for u in users])
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses, statuses
    busy = next(r for r in responses if r.status_code == 503)
    e = err(busy, 503, 40001, "ServiceUnavailable")
    assert "busy" in e["error"]["details"] and busy.headers["retry-after"] == "1"


def test_one_user_may_not_run_recognitions_in_parallel(tight_api: Api) -> None:
    user = tight_api.register()
    speech = encode(pcm16k(beckett_path().read_bytes())[: 16000 * 4], "wav")
    responses = _post_all(tight_api, [(user, body(speech)), (user, body(speech))])
    assert sorted(r.status_code for r in responses) == [200, 429]
    limited = next(r for r in responses if r.status_code == 429)
    assert "at once" in err(limited, 429, err_type="RateLimited")["error"]["details"]


def test_per_user_rate_limit_is_429(tight_api: Api) -> None:
    user = tight_api.register()
    short = encode(np.zeros(8000, dtype=np.float32), "wav")
    statuses = [tight_api.post(PATH, user, json=body(short)).status_code for _ in range(6)]
    assert statuses[:5] == [200] * 5 and statuses[5] == 429, statuses
    other = tight_api.register()
    ok(tight_api.post(PATH, other, json=body(short)))


def _unavailable(srv: ConferServer, needle: str) -> None:
    """The API answers 40001 in plain words, and says so in its status."""
    api = Api(srv.url)
    try:
        user = api.register()
        e = err(api.post(PATH, user, json=body(beckett_path().read_bytes())), 503, 40001)
        assert needle in e["error"]["details"], e
        status = ok(api.get("/api/v1/ai/status", user))
        assert status["state"] in ("failed", "idle") and status["state"] != "ready"
    finally:
        api.close()


def test_disabled_service_answers_40001(server_factory: Callable[..., ConferServer]) -> None:
    _unavailable(server_factory({**NO_MEDIA, "CONFER_AI_ENABLED": "false"}), "disabled")


def test_model_failing_its_checksum_answers_40001(
    server_factory: Callable[..., ConferServer],
) -> None:
    _unavailable(server_factory({**NO_MEDIA, "CONFER_AI_MODEL_SHA256": "0" * 64}), "sha256")


def test_missing_ai_extra_answers_40001(
    server_factory: Callable[..., ConferServer], tmp_path_factory: pytest.TempPathFactory
) -> None:
    # A faster_whisper that cannot be imported stands for an install without the `ai` extra.
    shim = tmp_path_factory.mktemp("no-ai") / "faster_whisper"
    shim.mkdir()
    (shim / "__init__.py").write_text("raise ImportError('No module named faster_whisper')\n")
    env = {**NO_MEDIA, "PYTHONPATH": str(shim.parent)}
    _unavailable(server_factory(env), "not installed")
