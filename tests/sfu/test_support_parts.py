"""Packet cache, speaker detection, receive statistics, bandwidth estimate, layer choice."""

from __future__ import annotations

import pytest

from confer.sfu import simulcast
from confer.sfu.estimator import BandwidthEstimate, RateMeter, ReceiveStats
from confer.sfu.packetcache import PacketCache
from confer.sfu.speaker import SpeakerDetector, parse_audio_level


def test_packet_cache_returns_only_the_packet_it_still_holds() -> None:
    cache = PacketCache(8)
    for seq in range(20):
        cache.store(seq, bytes([seq]))
    assert cache.get(19) == b"\x13" and cache.get(12) == b"\x0c"
    assert cache.get(11) is None  # overwritten by 19
    with pytest.raises(ValueError):
        PacketCache(6)


def test_dominant_speaker_needs_to_be_clearly_louder() -> None:
    det = SpeakerDetector()
    t = 0.0
    for _ in range(50):
        t += 0.02
        det.observe("a", 20, True, t)
        det.observe("b", 110, False, t)
    assert det.tick(t) == "a"
    for _ in range(5):  # a short burst from b does not take over
        t += 0.02
        det.observe("b", 25, True, t)
    assert det.tick(t) is None
    for _ in range(100):
        t += 0.02
        det.observe("a", 120, False, t)
        det.observe("b", 15, True, t)
    assert det.tick(t) == "b"
    assert parse_audio_level(b"\x9e") == (30, True)


def test_receive_stats_count_loss_and_list_gaps() -> None:
    st = ReceiveStats(90000)
    for seq in (65530, 65531, 65534, 65535, 0, 1):  # 65532 and 65533 lost
        st.update(seq, seq * 3000, seq / 30)
    assert st.missing == {65532, 65533}
    block = st.report(9, 10.0)
    assert block.packets_lost == 2 and block.highest_seq == 0x10001
    assert block.fraction_lost == (2 << 8) // 8
    st.update(65532, 0, 1.0)  # retransmission arrives
    assert st.missing == {65533}
    assert st.report(9, 11.0).fraction_lost == 0


def test_bandwidth_estimate_backs_off_under_loss_and_respects_remb() -> None:
    bwe = BandwidthEstimate(start=1_000_000)
    bwe.on_loss(0.3, 1.0)
    assert bwe.bitrate == 850_000
    bwe.on_remb(400_000)
    assert bwe.bitrate == 400_000
    for i in range(50):
        bwe.on_loss(0.0, 2.0 + i)
    assert bwe.bitrate == 400_000  # clean reports never exceed the delay-based ceiling


def test_rate_meter_measures_bits_per_second() -> None:
    meter = RateMeter()
    for i in range(300):
        meter.add(1000, 1.0 + i / 100)
    meter.roll(4.0)
    assert meter.bitrate == 800_000


def test_layer_choice_fits_tile_then_budget() -> None:
    now = 10.0
    layers = [
        simulcast.LayerInfo("f", 720, 2_000_000, now),
        simulcast.LayerInfo("q", 180, 150_000, now),
        simulcast.LayerInfo("h", 360, 500_000, now),
    ]
    assert simulcast.choose(layers, None, 5_000_000, now) == 0
    assert simulcast.choose(layers, 180, 5_000_000, now) == 1
    assert simulcast.choose(layers, 300, 5_000_000, now) == 2
    assert simulcast.choose(layers, 720, 600_000, now) == 2
    assert simulcast.choose(layers, 720, 10_000, now) == 1  # lowest layer is kept
    layers[0].last_packet = 0.0  # the publisher stopped sending its top layer
    assert simulcast.choose(layers, None, 5_000_000, now) == 2
    unknown = [simulcast.LayerInfo(r, 0, 0, now) for r in ("h", "f", "q")]
    assert simulcast.choose(unknown, 180, 10**7, now) == 2
