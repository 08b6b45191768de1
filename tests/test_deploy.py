"""The deployment files under deploy/: every placeholder filled, accepted by the real tools,
and in step with confer's own settings. (nginx and coturn serving for real: the gateway story
in tests/web/test_gateway.py and the TURN test in tests/sfu/test_through_signaling.py.)"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from deploy.local import HERE, PROCESSES, nginx_conf, render, self_signed

from confer.config import SERVICES, Settings
from tests.support.api import Api, ok
from tests.support.servers import ROOT, free_port

UNITS = HERE / "systemd"


def test_a_placeholder_left_unfilled_is_an_error_not_a_blank(tmp_path: Path) -> None:
    template = tmp_path / "t.conf"
    template.write_text("listen {{port}}; root {{root}};")
    assert render(template, {"port": 1, "root": "/srv"}) == "listen 1; root /srv;"
    with pytest.raises(ValueError, match="no value for root"):
        render(template, {"port": 1})


def test_nginx_accepts_the_rendered_gateway(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    upstreams = {s: [f"127.0.0.1:{port}"] for s, port in SERVICES.items()}
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        nginx_conf(
            tmp_path, https_port=8443, http_port=8080, cert=cert, key=key, upstreams=upstreams
        )
    )
    check = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_the_gateway_routes_every_service_and_only_from_its_own_headers() -> None:
    text = (HERE / "nginx" / "confer.conf").read_text()
    for service in SERVICES:
        assert f"upstream confer_{service} " in text
        assert f"proxy_pass http://confer_{service};" in text
    # A client's own X-Forwarded-For is replaced, never appended to...
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
    assert "$proxy_add_x_forwarded_for" not in text
    # ...in every location too: one that sets a header of its own inherits none of them.
    forwarding = ("Host", "X-Forwarded-For", "X-Forwarded-Proto", "X-Real-IP")
    for block in re.findall(r"location [^{]*\{[^}]*\}", text):
        if "proxy_set_header" in block:
            for header in forwarding:
                assert f"proxy_set_header {header} " in block, (header, block)


def test_the_one_box_deployment_runs_every_service_on_its_contract_port() -> None:
    running = {s for only in PROCESSES for s in only.split(",")}
    assert running == set(SERVICES)
    for only, port in PROCESSES.items():
        assert port in {SERVICES[s] for s in only.split(",")}


def test_every_setting_in_the_example_environment_is_one_confer_knows() -> None:
    env = {}
    for line in (UNITS / "confer.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    fields = {f"CONFER_{name.upper()}" for name in Settings.model_fields}
    cli = (ROOT / "src/confer/cli.py").read_text()  # --host, --port, --workers from the env
    flags = set(re.findall(r'os\.environ(?:\.get\(|\[)"(CONFER_[A-Z_]+)"', cli))
    assert "CONFER_HOST" in flags
    assert set(env) <= fields | flags, set(env) - fields - flags


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    confer = shutil.which("confer") or str(Path(__file__).parents[1] / ".venv/bin/confer")
    for unit in UNITS.glob("confer*"):
        text = unit.read_text().replace("/opt/confer/.venv/bin/confer", confer)
        (tmp_path / unit.name).write_text(text)
    (tmp_path / "confer@all.service").write_text((tmp_path / "confer@.service").read_text())
    names = ["confer@all.service", "confer-migrate.service", "confer.target"]
    check = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / n) for n in names)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0 and not check.stderr.strip(), check.stderr  # warnings too


def test_make_deploy_local_serves_the_platform_behind_nginx_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    """`make deploy-local`'s runner: every part from Debian's packages, then Ctrl+C (SIGTERM)."""
    https = free_port()
    offset = free_port() - 8080  # four free-ish ports from there; checked by the start itself
    args = ["--dir", str(tmp_path), "--https-port", str(https), "--port-offset", str(offset)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploy.local", *args],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("CONFER_")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "behind nginx at" in line:
                break
        assert "behind nginx at" in "".join(seen), "".join(seen)
        base = f"https://127.0.0.1:{https}"
        head = subprocess.run(
            ["curl", "-sk", "--http2", "-I", base + "/"], capture_output=True, text=True
        ).stdout
        assert head.startswith("HTTP/2 200"), head
        api = Api(base)
        try:
            user = api.register()  # the user service, through nginx
            ok(api.post("/api/v1/meetings", user, json={"title": "one box"}), 201)  # meeting
            ok(api.get("/api/v1/ai/status", user))  # media and AI
        finally:
            api.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    for port in (https, *(p + offset for p in PROCESSES.values())):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served"
