"""GET /api/v1/meetings/{id}/transcript: final captions from the real caption engine, stored
through the transcript store into the server's own database (SQLite and PostgreSQL), served
to the meeting's participants as JSON, WebVTT and SRT."""

from __future__ import annotations

import re
import time
from typing import Any

import numpy as np
import pytest

from confer.ai.captions import CaptionEngine, CaptionEvent
from confer.ai.recognizer import Recognizer
from confer.ai.transcripts import TranscriptStore
from confer.db.session import Database
from tests.ai.speech import espeak, opus_packets, pcm16k, wer, with_silence
from tests.support.api import Api, User, err, ok
from tests.support.servers import ConferServer

SAID = "Please send the meeting notes to everyone before Friday."


def visible(api: Api, full_name: str) -> User:
    user = api.register(full_name=full_name)
    deadline = time.monotonic() + 10
    while api.get("/api/v1/users/profile", user).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return user


def meeting_with(api: Api) -> tuple[int, User, User, User]:
    host, speaker, outsider = (visible(api, n) for n in ("Host Person", "Speaker One", "Out"))
    body = {"title": "Weekly <sync> & notes", "settings": {"enable_ai_analysis": True}}
    meeting_id = ok(api.post("/api/v1/meetings", host, json=body), 201)["meeting_id"]
    ok(api.post(f"/api/v1/meetings/{meeting_id}/join", speaker, json={}))
    return meeting_id, host, speaker, outsider


def db_url(server: ConferServer) -> str:
    return server.env.get("CONFER_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{server.data_dir / 'confer.db'}"
    )


@pytest.fixture(scope="module")
def spoken(recognizer: Recognizer) -> list[CaptionEvent]:
    """Captions of one speaker saying SAID twice, from Opus packets, before any meeting exists
    (meeting and user ids are rewritten per test)."""
    events: list[CaptionEvent] = []
    engine = CaptionEngine(recognizer, events.append, partial_interval=1.0)
    engine.open(1, 0, 0, "en", "fixture")
    speech = pcm16k(espeak(SAID))
    audio = np.concatenate([with_silence(speech, 0.5, 1.5), with_silence(speech, 0.0, 1.5)])
    for payload, ts in opus_packets(audio):
        for job in engine.feed(1, payload, ts):
            engine.run_job(job)
    return events


async def store(server: ConferServer, events: list[dict[str, Any]]) -> None:
    db = Database(db_url(server))
    try:
        transcripts = TranscriptStore(db)
        for event in events:
            await transcripts.on_caption(event)
    finally:
        await db.dispose()


def retarget(events: list[CaptionEvent], meeting_id: int, user_id: int) -> list[dict[str, Any]]:
    out = []
    for e in events:
        d = e.as_dict()
        d.update(meeting_id=meeting_id, user_id=user_id)
        d["utterance_id"] = f"{meeting_id}-{d['utterance_id']}"
        out.append(d)
    return out


async def test_participants_read_the_final_captions_in_order(
    api: Api, server: ConferServer, spoken: list[CaptionEvent]
) -> None:
    meeting_id, host, speaker, _ = meeting_with(api)
    events = retarget(spoken, meeting_id, speaker.user_id)
    await store(server, events + events[-1:])  # a repeated final is kept once
    for reader in (host, speaker):
        data = ok(api.get(f"/api/v1/meetings/{meeting_id}/transcript", reader))
        segments = data["segments"]
        assert data["meeting_id"] == meeting_id and data["total"] == len(segments) == 2
        assert all(s["user_id"] == speaker.user_id for s in segments)
        assert all(s["speaker_name"] == "Speaker One" for s in segments)
        assert all(wer(SAID, s["text"]) <= 0.35 for s in segments), segments
        assert segments[0]["end"] <= segments[1]["start"]
        assert segments[0]["start"] == 0.0 or segments[0]["start"] < 1.0
        assert all(s["language"] == "en" and 0 < s["confidence"] <= 1 for s in segments)


async def test_partials_and_empty_finals_are_not_transcript(
    api: Api, server: ConferServer, spoken: list[CaptionEvent]
) -> None:
    meeting_id, host, speaker, _ = meeting_with(api)
    partials = [e for e in retarget(spoken, meeting_id, speaker.user_id) if not e["final"]]
    assert partials
    empty = {**partials[0], "final": True, "text": "  ", "utterance_id": f"{meeting_id}-empty"}
    await store(server, [*partials, empty])
    data = ok(api.get(f"/api/v1/meetings/{meeting_id}/transcript", host))
    assert data["segments"] == [] and data["total"] == 0


async def test_webvtt_and_srt_downloads(
    api: Api, server: ConferServer, spoken: list[CaptionEvent]
) -> None:
    meeting_id, _host, speaker, _ = meeting_with(api)
    await store(server, retarget(spoken, meeting_id, speaker.user_id))
    cue = r"(\d\d):(\d\d):(\d\d)[.,](\d\d\d) --> (\d\d):(\d\d):(\d\d)[.,](\d\d\d)"
    for path, kind in (
        (f"/api/v1/meetings/{meeting_id}/transcript?format=vtt", "vtt"),
        (f"/api/v1/meetings/{meeting_id}/transcript.vtt", "vtt"),
        (f"/api/v1/meetings/{meeting_id}/transcript?format=srt", "srt"),
        (f"/api/v1/meetings/{meeting_id}/transcript.srt", "srt"),
    ):
        r = api.get(path, speaker)
        assert r.status_code == 200, r.text
        assert f"transcript.{kind}" in r.headers["content-disposition"]
        text = r.text
        times = re.findall(cue, text)
        assert len(times) == 2, text
        if kind == "vtt":
            assert r.headers["content-type"].startswith("text/vtt")
            assert text.startswith("WEBVTT\n") and "<v Speaker One>" in text
            assert "&lt;sync&gt; &amp; notes" in text and "<sync>" not in text
        else:
            assert r.headers["content-type"].startswith("application/x-subrip")
            assert text.startswith("1\n") and "Speaker One: " in text
        assert "friday" in text.lower()


async def test_only_participants_may_read(
    api: Api, server: ConferServer, spoken: list[CaptionEvent]
) -> None:
    meeting_id, _, speaker, outsider = meeting_with(api)
    await store(server, retarget(spoken, meeting_id, speaker.user_id)[:1])
    path = f"/api/v1/meetings/{meeting_id}/transcript"
    err(api.get(path, outsider), 403, err_type="PermissionDenied")
    err(api.get(path + ".vtt", outsider), 403)
    err(api.get(path), 401, 10004)
    err(api.get("/api/v1/meetings/999999/transcript", speaker), 404, 20001)
    err(api.get(path + "?format=docx", speaker), 400, err_type="ValidationError")
