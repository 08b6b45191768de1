"""The browser client: static ES modules served at `/` and `/join/{meeting_code}`."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Mount the client's pages and static assets (being written)."""
