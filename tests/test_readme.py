"""The README tells the truth: its curl walk-through runs, and it documents every setting."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from confer.config import Settings
from tests.support.servers import ConferServer

README = Path(__file__).resolve().parents[1] / "README.md"


def walkthrough() -> str:
    text = README.read_text()
    match = re.search(r"<!-- walkthrough -->\s*```sh\n(.*?)```", text, re.S)
    assert match, "the README lost its walk-through block"
    return match.group(1)


def test_every_setting_is_documented() -> None:
    text = README.read_text()
    missing = [
        f"CONFER_{name.upper()}"
        for name in Settings.model_fields
        if f"CONFER_{name.upper()}" not in text
    ]
    assert not missing, f"README does not document {missing}"


def test_the_curl_walkthrough_runs_against_a_fresh_server(
    server_factory: Callable[..., ConferServer], tmp_path: Path
) -> None:
    srv = server_factory()
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough()],
        env={"BASE": srv.url, "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # Registration answered in the contract's shape.
    assert '"username": "user123"' in out and '"code": 200' in out
    # Start, join (with websocket_url and session token), wrong password, list, roles, end.
    assert '"active"' in out
    assert '"websocket_url":' in out and '"session_token":' in out
    assert re.search(r"^20004$", out, re.M)
    assert '"meeting_code":' in out or '"total": 1' in out
    assert re.search(r"^1$", out, re.M)  # the guest has joined
    assert "# Agenda" in out
    assert '"audience"' in out and '"ended"' in out
    assert re.search(r"^20002$", out, re.M)
    # Refresh once succeeds, the replay is refused.
    assert re.search(r"^200\n10004$", out, re.M)
