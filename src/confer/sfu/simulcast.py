"""Which simulcast layer a subscriber gets: the smallest that fills its tile, within budget.

Layers are ranked low to high by what is known of them: frame height from keyframes, else
measured bitrate, else the conventional rid names. A subscriber states the size it renders each
tile at (message `video-constraints`); the layer chosen is the lowest whose height covers the
tile, stepped down while it does not fit in the subscriber's share of its bandwidth estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

RID_ORDER = {
    "q": 0,
    "l": 0,
    "low": 0,
    "0": 0,
    "h": 1,
    "m": 1,
    "mid": 1,
    "1": 1,
    "f": 2,
    "high": 2,
    "2": 2,
}
STALE_AFTER = 2.0  # seconds without a packet: the publisher stopped sending this layer


@dataclass(slots=True)
class LayerInfo:
    rid: str
    height: int  # 0 when unknown
    bitrate: int  # bits per second, 0 when unknown
    last_packet: float


def rank(layers: list[LayerInfo]) -> list[int]:
    """Indexes of `layers`, lowest quality first."""

    def key(i: int) -> tuple[int, int, int]:
        layer = layers[i]
        return (layer.height, layer.bitrate, RID_ORDER.get(layer.rid.lower(), i))

    if all(layer.height for layer in layers):
        return sorted(range(len(layers)), key=key)
    if all(layer.bitrate for layer in layers):
        return sorted(range(len(layers)), key=lambda i: (layers[i].bitrate, i))
    return sorted(range(len(layers)), key=lambda i: RID_ORDER.get(layers[i].rid.lower(), i))


def choose(layers: list[LayerInfo], tile_height: int | None, budget: int, now: float) -> int:
    """Index of the layer to forward, or -1 when no layer is being received."""
    order = [i for i in rank(layers) if now - layers[i].last_packet < STALE_AFTER]
    if not order:
        return -1
    pick = len(order) - 1
    if tile_height is not None and tile_height > 0:
        for pos, i in enumerate(order):
            height = layers[i].height or _guess_height(pos, len(order))
            if height >= tile_height * 0.9:
                pick = pos
                break
    while pick > 0 and layers[order[pick]].bitrate > budget:
        pick -= 1
    return order[pick]


def _guess_height(pos: int, count: int) -> int:
    """Heights Chrome uses for 720p simulcast when no keyframe has told us yet."""
    return (180, 360, 720)[pos + 3 - count] if count <= 3 else 720
