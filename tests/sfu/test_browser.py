"""Real headless Chromium through the SFU (driven by the test harness, one worker).

Each tab runs static/client.js: one RTCPeerConnection to the SFU, the spec's offer / answer /
ice-candidate messages with `to_user_id` 0, the SFU's own offers when tracks come and go.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.sfu.conftest import Client, Harness, wait_until

MEETING = iter(range(1000, 2000))


def frames(c: Client, source: str | None = None) -> dict[int, int]:
    """framesDecoded per publishing user id (for one source, if given)."""
    return {
        v["user_id"]: v["framesDecoded"] or 0
        for v in c.videos()
        if v["user_id"] is not None and (source is None or v["source"] == source)
    }


def decoding(c: Client, users: set[int], source: str = "camera") -> bool:
    """Each of `users`' video is being decoded with a frame size, and keeps advancing."""
    before = frames(c, source)
    if set(before) < users or any(before[u] == 0 for u in users):
        return False
    sized = all(
        (v["frameWidth"] or 0) > 0 and (v["frameHeight"] or 0) > 0
        for v in c.videos()
        if v["user_id"] in users and v["source"] == source
    )
    c.page.wait_for_timeout(700)
    after = frames(c, source)
    return sized and all(after[u] > before[u] for u in users)


def audio_received(c: Client) -> dict[int, int]:
    return {a["user_id"]: a["packetsReceived"] or 0 for a in c.audios() if a["user_id"]}


def hearing(c: Client, users: set[int]) -> bool:
    before = audio_received(c)
    if not users <= set(before):
        return False
    c.page.wait_for_timeout(500)
    after = audio_received(c)
    return all(after[u] > before[u] for u in users)


def test_two_participants_see_and_hear_each_other(
    harness: Harness, open_client: Callable[..., Client]
) -> None:
    m = next(MEETING)
    a = open_client(harness.ws(m, 1, "a"))
    b = open_client(harness.ws(m, 2, "b"))
    wait_until(lambda: decoding(a, {2}) and decoding(b, {1}))
    wait_until(lambda: hearing(a, {2}) and hearing(b, {1}))
    tracks = b.state("tracks")
    assert {t["source"] for t in tracks.values()} == {"camera", "microphone"}
    assert {t["user_id"] for t in tracks.values()} == {1}


def test_three_participants_each_receive_the_two_others(
    harness: Harness, open_client: Callable[..., Client]
) -> None:
    m = next(MEETING)
    clients = {u: open_client(harness.ws(m, u, f"p{u}")) for u in (1, 2, 3)}
    for u, c in clients.items():
        others = {1, 2, 3} - {u}
        wait_until(lambda c=c, others=others: decoding(c, others), timeout=30)
        wait_until(lambda c=c, others=others: hearing(c, others))


def test_screen_share_arrives_as_an_extra_video_and_goes_away(
    harness: Harness, open_client: Callable[..., Client]
) -> None:
    m = next(MEETING)
    a = open_client(harness.ws(m, 1, "a"))
    b = open_client(harness.ws(m, 2, "b"))
    wait_until(lambda: decoding(b, {1}))
    a.page.evaluate("sfu.shareScreen()")
    wait_until(lambda: decoding(b, {1}, "screen"), timeout=30)
    assert decoding(b, {1}, "camera")  # the camera keeps flowing beside it
    screen = [t for t in b.state("tracks").values() if t["source"] == "screen"]
    assert len(screen) == 1 and screen[0]["user_id"] == 1
    a.page.evaluate("sfu.stopScreen()")

    def screen_stopped() -> bool:
        before = frames(b, "screen").get(1, 0)
        b.page.wait_for_timeout(1000)
        return frames(b, "screen").get(1, 0) == before

    wait_until(screen_stopped)
    assert decoding(b, {1}, "camera")


def test_host_mute_stops_audio_reaching_others_until_allowed(
    harness: Harness, open_client: Callable[..., Client]
) -> None:
    m = next(MEETING)
    a = open_client(harness.ws(m, 1, "a"))
    b = open_client(harness.ws(m, 2, "b"))
    c = open_client(harness.ws(m, 3, "c"))
    wait_until(lambda: hearing(b, {1}) and hearing(c, {1}))
    harness.post("/control/allow", meeting=m, user=1, media_type="audio", allowed=False)
    wait_until(lambda: not hearing(b, {1}))  # packets already in flight drain
    muted_b, muted_c = audio_received(b)[1], audio_received(c)[1]
    b.page.wait_for_timeout(1500)
    assert audio_received(b)[1] == muted_b and audio_received(c)[1] == muted_c
    assert hearing(b, {3}) and decoding(b, {1})  # only user 1's audio is held back
    harness.post("/control/allow", meeting=m, user=1, media_type="audio", allowed=True)
    wait_until(lambda: hearing(b, {1}) and hearing(c, {1}))
    assert a.stats()["conn"] == "connected"


def test_audience_cannot_publish(harness: Harness, open_client: Callable[..., Client]) -> None:
    m = next(MEETING)
    a = open_client(harness.ws(m, 1, "a"))
    viewer = open_client(harness.ws(m, 2, "v", publish=False))
    wait_until(lambda: decoding(viewer, {1}))
    a.page.wait_for_timeout(1500)
    assert frames(a) == {} and audio_received(a) == {}
    assert not any(t["user_id"] == 2 for t in a.state("tracks").values())


def test_kicked_participant_transport_closes_and_others_stop_receiving_it(
    harness: Harness, open_client: Callable[..., Client]
) -> None:
    m = next(MEETING)
    a = open_client(harness.ws(m, 1, "a"))
    k = open_client(harness.ws(m, 2, "k"))
    wait_until(lambda: decoding(a, {2}) and decoding(k, {1}))
    harness.post("/control/kick", peer="k")
    wait_until(lambda: k.stats()["conn"] in ("failed", "closed", "disconnected"), timeout=15)

    def gone() -> bool:
        before = frames(a).get(2, 0)
        a.page.wait_for_timeout(800)
        return frames(a).get(2, 0) == before

    wait_until(gone)


def test_active_speaker_is_announced(harness: Harness, open_client: Callable[..., Client]) -> None:
    m = next(MEETING)
    a = open_client(harness.ws(m, 1, "a"))
    b = open_client(harness.ws(m, 2, "b"))
    speaker: dict[str, Any] = wait_until(lambda: b.state("speaker"), timeout=20)
    assert speaker["user_id"] in (1, 2) and speaker["peer_id"] in ("a", "b")
    assert a.state("speaker") is not None
