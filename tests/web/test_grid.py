"""The video grid module in a real Chromium: 1 to 25+ tiles, phone sizes, the screen-share stage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.web.client import Client

pytestmark = pytest.mark.timeout(60)

# Builds a Grid of `n` tiles in a fixed-size box and reports where every tile landed.
LAYOUT = """
async ([n, width, height, screens]) => {
  const app = document.querySelector('script[type=module]').src;
  const { Grid } = await import(app.replace('/js/app.js', '/js/ui/grid.js'));
  document.getElementById('grid-box')?.remove();
  const box = document.createElement('div');
  box.id = 'grid-box';
  Object.assign(box.style, { position: 'fixed', left: '0', top: '0', width: width + 'px',
    height: height + 'px', display: 'flex', zIndex: 100, background: '#000' });
  document.body.append(box);
  const grid = new Grid();
  box.append(grid.el);
  for (let i = 0; i < n; i += 1) grid.tile(`${i}:camera`, { userId: i, name: `Person ${i}` });
  for (let i = 0; i < screens; i += 1) {
    grid.tile(`${i}:screen`, { userId: i, name: `Person ${i}`, source: 'screen' });
  }
  grid.layout();
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const area = grid.strip.getBoundingClientRect();
  const tiles = [...grid.el.querySelectorAll('.tile')].map((t) => {
    const r = t.getBoundingClientRect();
    return { key: t.dataset.key, x: r.x, y: r.y, w: r.width, h: r.height,
      staged: t.parentNode === grid.stageMain };
  });
  return { tiles, scroll: grid.strip.classList.contains('scroll'),
    stage: grid.el.classList.contains('has-stage'),
    area: { x: area.x, y: area.y, w: area.width, h: area.height,
      scrollH: grid.strip.scrollHeight } };
}
"""


@pytest.fixture
def layout(clients: Callable[..., Client]) -> Callable[..., dict[str, Any]]:
    c = clients("grid")
    c.page.goto("/")
    c.page.wait_for_selector("#login-form")

    def run(n: int, width: int, height: int, screens: int = 0) -> dict[str, Any]:
        return c.page.evaluate(LAYOUT, [n, width, height, screens])  # type: ignore[no-any-return]

    return run


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["w"] - 0.5
        and b["x"] < a["x"] + a["w"] - 0.5
        and a["y"] < b["y"] + b["h"] - 0.5
        and b["y"] < a["y"] + a["h"] - 0.5
    )


@pytest.mark.parametrize(
    ("n", "min_width"), [(1, 1000), (2, 600), (4, 600), (9, 400), (16, 280), (25, 230)]
)
def test_up_to_25_tiles_fit_on_a_laptop_screen_without_scrolling(
    layout: Callable[..., dict[str, Any]], n: int, min_width: int
) -> None:
    out = layout(n, 1264, 700)
    tiles = out["tiles"]
    assert len(tiles) == n and not out["scroll"]
    for t in tiles:
        assert t["w"] >= min_width, t
        assert abs(t["w"] / t["h"] - 16 / 9) < 0.02, t
        assert t["x"] >= 0 and t["x"] + t["w"] <= 1264 + 0.5, t
        assert t["y"] >= 0 and t["y"] + t["h"] <= 700 + 0.5, t
    assert not any(overlaps(a, b) for i, a in enumerate(tiles) for b in tiles[i + 1 :])


def test_a_crowd_on_a_phone_scrolls_in_readable_tiles(
    layout: Callable[..., dict[str, Any]],
) -> None:
    out = layout(40, 380, 640)
    assert out["scroll"]
    assert out["area"]["scrollH"] > out["area"]["h"]
    widths = {round(t["w"]) for t in out["tiles"]}
    assert min(widths) >= 130
    columns = {round(t["x"]) for t in out["tiles"]}
    assert len(columns) >= 2
    assert all(t["x"] + t["w"] <= 380 + 0.5 for t in out["tiles"])


def test_a_screen_share_takes_the_stage_and_people_go_to_a_strip(
    layout: Callable[..., dict[str, Any]],
) -> None:
    out = layout(6, 1264, 700, screens=1)
    assert out["stage"]
    staged = [t for t in out["tiles"] if t["staged"]]
    assert [t["key"] for t in staged] == ["0:screen"]
    assert staged[0]["w"] > 1000
    strip = [t for t in out["tiles"] if not t["staged"]]
    assert len(strip) == 6
    assert len({round(t["y"]) for t in strip}) == 1  # one row
    assert all(t["y"] >= staged[0]["y"] + staged[0]["h"] for t in strip)
