"""Debian's Chromium as this machine must start it (never a downloaded browser)."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"

# Headless on a closed network: no background traffic, no component downloads.
HEADLESS_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Fake camera and microphone, and ICE over loopback.
MEDIA_FLAGS = [
    *HEADLESS_FLAGS,
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
]

# Several pages share one browser: none may be throttled as "hidden"; media plays unprompted.
SHARED_PAGE_FLAGS = [
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--autoplay-policy=no-user-gesture-required",
]
