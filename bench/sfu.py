"""SFU capacity: confer's SFU against Janus VideoRoom under the same bot load.

Every run uses `confer loadtest` bots (pre-encoded 720p VP8 + Opus publishers, subscribers
that count packets without decoding) inside a private network namespace with only loopback
(plus the 127.0.0.2 address Janus needs, see DESIGN.md "Media plane"). For each scenario
(publishers x subscribers) it reports forwarded packets/s, the SFU's CPU per forwarded packet,
loss and join-to-first-frame, for confer (one worker = one core) and for Janus 1.1.2 in its
default configuration and its fastest one (`event_loops = 1`, `transport_wide_cc_ext =
false`). Results: bench/results/sfu.json and sfu.md.

Targets (issue 6): confer CPU/packet <= 1.5x Janus-fastest at the largest scenario;
join-to-first-frame p50 < 1 s; zero loss with 20 subscribers of one 720p publisher.
Set CONFER_BENCH_QUICK=1 for short windows (a smoke run, not a measurement). While iterating,
CONFER_BENCH_SCENARIOS=1x20 (comma-separated PxS) and CONFER_BENCH_CONFIGS=confer,fastest (of
confer, default, fastest) run a subset; a subset run prints its rows and writes no results.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SCENARIOS = [(1, 1), (1, 5), (1, 10), (1, 20), (2, 10)]
CONFIGS = ("confer", "default", "fastest")
JANUS_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
JANUS_PORT = 8088
NETNS = f"confer-bench-{os.getpid()}"
TARGET_RATIO = 1.5
# Bots and SFUs all use 127.0.0.2 (libnice answers checks only on its own address's path).
SAME_PATH = ["--ice-address", "127.0.0.2", "--bot-address", "127.0.0.2"]
TARGET_JOIN_P50 = 1.0


def _ns(*cmd: str) -> list[str]:
    return ["ip", "netns", "exec", NETNS, *cmd]


def make_netns() -> None:
    steps = [
        ["ip", "netns", "add", NETNS],
        ["ip", "-n", NETNS, "link", "set", "lo", "up"],
        # Janus 1.1.2 gathers no candidates on `lo`: give it a loopback-range address on
        # another device of the namespace.
        ["ip", "-n", NETNS, "link", "add", "jifb0", "type", "ifb"],
        ["ip", "-n", NETNS, "addr", "add", "127.0.0.2/32", "dev", "jifb0"],
        ["ip", "-n", NETNS, "link", "set", "jifb0", "up"],
    ]
    for cmd in steps:
        subprocess.run(cmd, check=True, capture_output=True)


def drop_netns() -> None:
    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)


def janus_config(folder: Path, fastest: bool) -> None:
    plugins = sorted(p.name for p in (JANUS_LIB / "plugins").glob("*.so"))
    transports = sorted(p.name for p in (JANUS_LIB / "transports").glob("*.so"))
    loops = "\tevent_loops = 1\n" if fastest else ""
    (folder / "janus.jcfg").write_text(
        "general: {\n"
        f'\tconfigs_folder = "{folder}"\n'
        f'\tplugins_folder = "{JANUS_LIB / "plugins"}"\n'
        f'\ttransports_folder = "{JANUS_LIB / "transports"}"\n'
        f'\tevents_folder = "{JANUS_LIB / "events"}"\n'
        f'\tloggers_folder = "{JANUS_LIB / "loggers"}"\n'
        "\tdebug_level = 2\n"
        f"{loops}"
        "}\n"
        'nat: {\n\tice_enforce_list = "127."\n}\n'
        'plugins: {\n\tdisable = "'
        + ",".join(p for p in plugins if p != "libjanus_videoroom.so")
        + '"\n}\n'
        'transports: {\n\tdisable = "'
        + ",".join(t for t in transports if t != "libjanus_http.so")
        + '"\n}\n'
        "events: {\n\tbroadcast = false\n}\n"
    )
    (folder / "janus.transport.http.jcfg").write_text(
        'general: {\n\tbase_path = "/janus"\n\thttp = true\n'
        f'\tport = {JANUS_PORT}\n\tip = "127.0.0.1"\n\thttps = false\n}}\n'
        "admin: {\n\tadmin_http = false\n\tadmin_https = false\n}\n"
    )
    (folder / "janus.plugin.videoroom.jcfg").write_text("general: {\n}\n")


def start_janus(fastest: bool) -> tuple[subprocess.Popen[bytes], Path]:
    folder = Path(tempfile.mkdtemp(prefix="confer-janus-"))
    janus_config(folder, fastest)
    log = open(folder / "janus.log", "wb")  # noqa: SIM115 - Janus writes to it
    proc = subprocess.Popen(
        _ns("janus", "-F", str(folder), "-C", str(folder / "janus.jcfg")),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("Janus exited: " + (folder / "janus.log").read_text()[-2000:])
        probe = subprocess.run(
            _ns("curl", "-s", f"http://127.0.0.1:{JANUS_PORT}/janus/info"), capture_output=True
        )
        if probe.returncode == 0 and b"janus" in probe.stdout:
            return proc, folder
        time.sleep(0.3)
    raise RuntimeError("Janus did not answer on its HTTP port")


def janus_pid(proc: subprocess.Popen[bytes]) -> int:
    """`ip netns exec` execs Janus in place, so its pid is the child's."""
    return proc.pid


def loadtest(target: str, pubs: int, subs: int, extra: list[str]) -> dict[str, Any]:
    quick = os.environ.get("CONFER_BENCH_QUICK") == "1"
    out = Path(tempfile.mkstemp(prefix="confer-lt-", suffix=".json")[1])
    cmd = _ns(
        sys.executable, "-m", "confer.sfu.loadtest", "--target", target,
        "--publishers", str(pubs), "--subscribers", str(subs),
        "--duration", "5" if quick else "15", "--warmup", "3" if quick else "6",
        "--json", str(out), *extra,
    )  # fmt: skip
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        return {
            "target": target,
            "publishers": pubs,
            "subscribers": subs,
            "error": (r.stderr or r.stdout)[-500:],
        }
    return json.loads(out.read_text())


def scenarios() -> list[tuple[int, int]]:
    """The scenarios to run: all, or those named in CONFER_BENCH_SCENARIOS (e.g. "1x20")."""
    chosen = os.environ.get("CONFER_BENCH_SCENARIOS", "")
    if not chosen:
        return SCENARIOS
    out = []
    for item in chosen.split(","):
        pubs, _, subs = item.strip().partition("x")
        out.append((int(pubs), int(subs)))
    return out


def configs() -> list[str]:
    chosen = os.environ.get("CONFER_BENCH_CONFIGS", "")
    names = [c.strip() for c in chosen.split(",") if c.strip()] or list(CONFIGS)
    unknown = set(names) - set(CONFIGS)
    if unknown:
        raise SystemExit(f"bench.sfu: unknown configs {sorted(unknown)}, choose from {CONFIGS}")
    return names


def run_confer() -> list[dict[str, Any]]:
    rows = []
    for pubs, subs in scenarios():
        row = loadtest("confer", pubs, subs, ["--workers", "1", *SAME_PATH])
        row["config"] = "confer (1 worker)"
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def run_janus(fastest: bool) -> list[dict[str, Any]]:
    rows = []
    label = "janus fastest" if fastest else "janus default"
    for pubs, subs in scenarios():
        proc, folder = start_janus(fastest)  # a fresh Janus per scenario: no leftovers
        try:
            extra = [
                "--janus-url",
                f"http://127.0.0.1:{JANUS_PORT}/janus",
                "--janus-pid",
                str(janus_pid(proc)),
                "--bot-address",
                "127.0.0.2",
            ]
            if fastest:
                extra.append("--janus-fast")
            row = loadtest("janus", pubs, subs, extra)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            shutil.rmtree(folder, ignore_errors=True)
        row["config"] = label
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def markdown(rows: list[dict[str, Any]], verdict: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        "# SFU capacity: confer vs Janus VideoRoom",
        "",
        f"Measured {meta['when']} on {meta['cpus']} cores; 1-minute load average before the run "
        f"{meta['loadavg_before']:.2f} (the machine was shared with other jobs: CPU figures taken "
        "under contention are noisier and higher than on an idle machine). Bots: "
        "`confer loadtest` (720p VP8 ~1.5 Mbit/s + Opus per publisher; subscribers count "
        "packets without decoding), loopback inside a network namespace. CPU = user + system "
        "time of the SFU process(es) over the window divided by packets the subscribers got.",
        "",
        "| config | pubs x subs | forwarded pkt/s | SFU CPU % of a core | µs CPU / forwarded pkt "
        "| of which system µs | loss % | join→first frame p50 / p95 (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(
                f"| {r['config']} | {r['publishers']}x{r['subscribers']} | error: "
                f"{r['error'][:80]!r} | | | | |"
            )
            continue
        lines.append(
            f"| {r['config']} | {r['publishers']}x{r['subscribers']} | {r['forwarded_pps']} | "
            f"{r['sfu_cpu_pct_of_one_core']} | {r['us_cpu_per_forwarded_packet']} | "
            f"{r.get('us_system_per_forwarded_packet')} | "
            f"{r['loss_pct']} | {r['join_to_first_frame_p50_s']} / "
            f"{r['join_to_first_frame_p95_s']} |"
        )
    lines += ["", "## Targets", ""]
    lines += [f"- {k}: {v}" for k, v in verdict.items()]
    lines += [
        "",
        "Per-core capacity (confer, one worker): at the µs/packet above, one core "
        "forwards about 1e6 / (µs per packet) packets per second, i.e. "
        f"{meta.get('capacity', 'n/a')}.",
        "",
    ]
    return "\n".join(lines)


def _terminate(*_: object) -> None:
    raise SystemExit(143)  # run the `finally` that removes the namespace


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    if os.geteuid() != 0:
        print("bench.sfu: needs root for its network namespace", file=sys.stderr)
        return 2
    from confer.sfu.bots import encoded_video

    encoded_video()  # encode (and cache) the publishers' video once, outside the windows
    meta: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "loadavg_before": os.getloadavg()[0],
    }
    make_netns()
    try:
        chosen = configs()
        rows = run_confer() if "confer" in chosen else []
        if shutil.which("janus"):
            if "default" in chosen:
                rows += run_janus(fastest=False)
            if "fastest" in chosen:
                rows += run_janus(fastest=True)
        else:
            meta["janus"] = "not installed (apt-get install janus): no comparison"
    finally:
        drop_netns()
    verdict = judge(rows, meta)
    if os.environ.get("CONFER_BENCH_SCENARIOS") or os.environ.get("CONFER_BENCH_CONFIGS"):
        print(json.dumps(verdict, indent=1))  # a subset: not a result to keep
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sfu.json").write_text(
        json.dumps({"meta": meta, "rows": rows, "targets": verdict}, indent=1) + "\n"
    )
    (RESULTS / "sfu.md").write_text(markdown(rows, verdict, meta))
    print(json.dumps(verdict, indent=1))
    return 0 if all(v.get("met") for v in verdict.values() if isinstance(v, dict)) else 1


def _row(rows: list[dict[str, Any]], config: str, pubs: int, subs: int) -> dict[str, Any] | None:
    return next(
        (
            r
            for r in rows
            if r.get("config") == config
            and r["publishers"] == pubs
            and r["subscribers"] == subs
            and "error" not in r
        ),
        None,
    )


def judge(rows: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    ours = _row(rows, "confer (1 worker)", 1, 20)
    janus = _row(rows, "janus fastest", 1, 20)
    out: dict[str, Any] = {}
    if ours is not None and janus is not None and janus["us_cpu_per_forwarded_packet"]:
        ratio = ours["us_cpu_per_forwarded_packet"] / janus["us_cpu_per_forwarded_packet"]
        out["cpu_per_packet_vs_janus_fastest_1x20"] = {
            "confer_us": ours["us_cpu_per_forwarded_packet"],
            "janus_fastest_us": janus["us_cpu_per_forwarded_packet"],
            "ratio": round(ratio, 2),
            "target": f"<= {TARGET_RATIO}",
            "met": ratio <= TARGET_RATIO,
        }
    else:
        out["cpu_per_packet_vs_janus_fastest_1x20"] = {
            "met": False,
            "why": "a run is missing or failed",
        }
    joins = [
        r["join_to_first_frame_p50_s"]
        for r in rows
        if r.get("config") == "confer (1 worker)" and r.get("join_to_first_frame_p50_s")
    ]
    p50 = sorted(joins)[len(joins) // 2] if joins else None
    out["join_to_first_frame_p50"] = {
        "seconds": p50,
        "target": f"< {TARGET_JOIN_P50}",
        "met": p50 is not None and p50 < TARGET_JOIN_P50,
    }
    out["loss_1x20"] = {
        "loss_pct": ours["loss_pct"] if ours else None,
        "target": "0",
        "met": bool(ours) and ours["loss_pct"] == 0,
    }
    single = _row(rows, "confer (1 worker)", 1, 1)
    if ours is not None and ours["us_cpu_per_forwarded_packet"] and single is not None:
        per_core = 1e6 / ours["us_cpu_per_forwarded_packet"]
        per_sub = single["forwarded_pps"]  # what one subscriber of one publisher receives
        meta["capacity"] = (
            f"~{per_core:,.0f} packets/s per core, ~{per_core / per_sub:,.0f} "
            "subscribers of one 720p publisher per core"
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
