"""The signaling service: `/ws/signaling`, rooms, presence, relay and heartbeats."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Mount `/ws/signaling` and register the hub's startup / shutdown hooks (being written)."""
