"""Chromium through the SFU when things go wrong or change: simulcast, loss, a dying worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.sfu.conftest import Client, Harness, wait_until
from tests.sfu.test_browser import decoding, frames

INJECTED_LOSS = 0.04


def camera_of(c: Client, user: int) -> dict[str, Any] | None:
    return next((v for v in c.videos() if v["user_id"] == user and v["source"] == "camera"), None)


def camera_mid(c: Client, user: int) -> str:
    tracks = c.state("tracks")
    return next(
        mid for mid, t in tracks.items() if t["user_id"] == user and t["source"] == "camera"
    )


def test_simulcast_subscriber_drops_to_a_lower_layer_for_a_small_tile(
    harness: Harness, open_client: Callable[..., Client]
) -> None:
    pub = open_client(harness.ws(7001, 1, "pub"), simulcast=True, width=1280, height=720)
    sub = open_client(harness.ws(7001, 2, "sub"), media=False)
    wait_until(lambda: decoding(sub, {1}), timeout=30)
    rids = wait_until(
        lambda: (
            {o["rid"] for o in pub.stats()["outbound"] if o["kind"] == "video"} >= {"q", "h"}
            and {o["rid"] for o in pub.stats()["outbound"] if o["kind"] == "video"}
        )
    )
    assert {"q", "h"} <= rids
    mid = camera_mid(sub, 1)
    sub.page.evaluate("items => sfu.constrain(items)", [{"mid": mid, "width": 1280, "height": 720}])
    big = wait_until(
        lambda: (
            (camera_of(sub, 1) or {}).get("frameHeight", 0) > 200
            and camera_of(sub, 1)["frameHeight"]
        ),
        timeout=40,
    )
    sub.page.evaluate("items => sfu.constrain(items)", [{"mid": mid, "width": 320, "height": 180}])
    small = wait_until(
        lambda: (
            0 < (camera_of(sub, 1) or {}).get("frameHeight", 0) <= 180
            and camera_of(sub, 1)["frameHeight"]
        ),
        timeout=30,
    )
    assert small < big
    assert decoding(sub, {1})  # the switch happened on a keyframe: decoding goes on


def test_nack_and_rtx_repair_loss_between_sfu_and_subscriber(
    harness_factory: Callable[..., Harness], open_client: Callable[..., Client]
) -> None:
    lossy = harness_factory(CONFER_SFU_TEST_SEND_LOSS=str(INJECTED_LOSS))
    open_client(lossy.ws(1, 1, "a"), base=lossy.url)
    b = open_client(lossy.ws(1, 2, "b"), base=lossy.url, media=False)
    wait_until(lambda: decoding(b, {1}), timeout=30)
    stalls = 0
    last = frames(b)[1]
    for _ in range(8):  # decoding never stops for a whole second
        b.page.wait_for_timeout(1000)
        now = frames(b)[1]
        stalls += now == last
        last = now
    assert stalls == 0
    video = camera_of(b, 1)
    assert video is not None
    assert video["packetsLost"] > 0 and video["nackCount"] > 0
    # Chrome counts the first transmission as lost even when RTX repairs it: nearly every
    # lost packet came back as a retransmission (a few may still be on their way).
    assert video["retransmittedPacketsReceived"] >= 0.8 * video["packetsLost"]
    assert video["freezeCount"] <= 1


def test_a_dead_worker_is_replaced_and_participants_renegotiate_onto_it(
    harness_factory: Callable[..., Harness], open_client: Callable[..., Client]
) -> None:
    h = harness_factory()
    a = open_client(h.ws(9, 1, "a"), base=h.url)
    b = open_client(h.ws(9, 2, "b"), base=h.url)
    wait_until(lambda: decoding(a, {2}) and decoding(b, {1}), timeout=30)
    before = h.stats()["pids"]
    killed = h.post("/control/crash", meeting=9)["killed"]
    assert killed in before
    wait_until(lambda: a.state("resets") >= 1 and b.state("resets") >= 1)
    after = wait_until(lambda: killed not in h.stats()["pids"] and h.stats()["pids"])
    assert len(after) == len(before)
    wait_until(lambda: decoding(a, {2}) and decoding(b, {1}), timeout=40)
