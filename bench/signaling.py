"""Signaling capacity of one `confer serve` process: idle sockets and chat fan-out latency.

1. 50 meetings x 100 participants = 5,000 WebSocket connections held open (idle, each sending
   the spec's heartbeat every 20 s on its own phase): the server's RSS must stay under 1 GiB.
2. On those connections, 500 chat messages/s in aggregate (10/s per room, each from a random
   member): every message is delivered to the 100 sockets of its room, 50,000 deliveries/s.
   Delivery latency (server receive -> store -> fan-out -> client socket) must have p99 < 100 ms.

The server is a real `confer serve` on SQLite, started as the tests start it, with its own
fd limit raised. Users, meetings and participant rows are seeded straight into its database
and access tokens minted with its secret (registering 5,000 users through argon2 would only
measure password hashing). Clients are deliberately light, being half of the machine's load:
a minimal RFC 6455 client (real handshake, join through the protocol, masked frames, pongs;
no permessage-deflate offered, as most native clients) as a uvloop protocol that parses every
whole frame of a read in place, in several processes; each message's send time (wall clock,
same host) is carried in its content. After the sending seconds the clients wait (at most
DRAIN_S) for every delivery, so CPU per delivery divides by all the work done and the late
ones count in the latency. Bounded: 5,000 connections, fixed load duration, hard time-outs.

The CPU of a bare uvloop write to a loopback socket is measured first, as a reference: a
delivery is one such write, so the server's CPU per delivery cannot go below it.

Settings (environment): BENCH_SIG_ROOMS (50), BENCH_SIG_PER_ROOM (100),
BENCH_SIG_SECONDS (10), BENCH_SIG_PROCS (4 client processes), BENCH_SIG_RATES ("50,500"),
BENCH_SIG_PROFILE (a directory: py-spy profiles of the server in each phase).
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing as mp
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import uvloop
from tests.support.servers import ConferServer

from confer.auth.tokens import TokenCodec

RESULTS = Path(__file__).parent / "results"
CLOSES: dict[Any, int] = {}  # close codes (and lost connections) seen by a client process
SECRET = "bench-signaling-secret-0123456789-abcdefghijklmnop"
TARGET_RSS_MIB = 1024
TARGET_P99_MS = 100.0
TARGET_RATE = 500
DRAIN_S = 30.0  # after a load phase, how long clients wait for deliveries still on the way


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# --- a minimal WebSocket client -----------------------------------------------------------------


class WsClient(asyncio.Protocol):
    """Client side of RFC 6455 for text frames: enough to join, chat, ping and time deliveries."""

    def __init__(self, latencies: list[float], counts: list[int]) -> None:
        self.buf = b""
        self.joined = False
        self.open = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.latencies = latencies
        self.counts = counts
        self.handshaken = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Parse every whole frame of this read in place; keep only an incomplete tail."""
        if self.buf:
            data, self.buf = self.buf + data, b""
        pos, n = 0, len(data)
        if not self.handshaken:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf = data
                return
            if not data.startswith(b"HTTP/1.1 101"):
                self.open.set_exception(RuntimeError(data[:200].decode()))
                return
            pos = end + 4
            self.handshaken = True
        now = time.time()
        while n - pos >= 2:
            length = data[pos + 1] & 0x7F
            head = pos + 2
            if length == 126:
                if n - pos < 4:
                    break
                length, head = int.from_bytes(data[pos + 2 : pos + 4], "big"), pos + 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, head = int.from_bytes(data[pos + 2 : pos + 10], "big"), pos + 10
            stop = head + length
            if stop > n:
                break
            opcode = data[pos] & 0x0F
            pos = stop
            if opcode == 9:  # the server's keepalive ping: answer as browsers do
                self.send(data[head:stop], opcode=10)
                continue
            if opcode == 8:
                code = int.from_bytes(data[head : head + 2], "big") if length >= 2 else 1005
                CLOSES[code] = CLOSES.get(code, 0) + 1
                continue
            self.counts[0] += 1
            if not self.joined:
                self.joined = True
                self.open.set_result(None)  # room-info
            at = data.find(b'"content":"t=', head, stop)
            if at >= 0:
                end = data.index(b'"', at + 13, stop)
                self.latencies.append(now - float(data[at + 13 : end]))
        if pos < n:
            self.buf = data[pos:]

    def connection_lost(self, exc: Exception | None) -> None:
        CLOSES["lost"] = CLOSES.get("lost", 0) + 1

    def send(self, text: str | bytes, opcode: int = 1) -> None:
        data = text.encode() if isinstance(text, str) else text
        mask = os.urandom(4)
        n = len(data)
        first = 0x80 | opcode
        head = bytes([first, 0x80 | n]) if n < 126 else bytes([first, 0xFE]) + n.to_bytes(2, "big")
        key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        masked = (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")
        assert self.transport is not None
        self.transport.write(head + mask + masked)


async def connect(port: int, path: str, latencies: list[float], counts: list[int]) -> WsClient:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(lambda: WsClient(latencies, counts), "127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    assert proto.transport is not None
    proto.transport.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await asyncio.wait_for(proto.open, 120)  # a starved server may take long to admit
    return proto


# --- client processes ---------------------------------------------------------------------------


def client_process(
    port: int, rooms: list[tuple[int, list[tuple[int, str]]]], ctl: Any, ready: Any, out: Any
) -> None:
    # uvloop, as the server uses: the default loop's per-read cost would make the load
    # generator, not the server, the bottleneck at 50,000 frames/s.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_client(port, rooms, ctl, ready, out))


async def _client(
    port: int, rooms: list[tuple[int, list[tuple[int, str]]]], ctl: Any, ready: Any, out: Any
) -> None:
    """Connect every member of `rooms`, then run the load phases the parent asks for."""
    latencies: list[float] = []
    counts = [0]
    sem = asyncio.Semaphore(50)
    by_room: dict[int, list[WsClient]] = {}

    failed: list[str] = []

    async def one(meeting_id: int, user_id: int, token: str) -> None:
        async with sem:
            path = (
                f"/ws/signaling?token={token}&meeting_id={meeting_id}&user_id={user_id}"
                f"&peer_id=b{user_id}"
            )
            try:
                client = await connect(port, path, latencies, counts)
            except Exception as exc:  # counted, not fatal: the result shows it
                failed.append(repr(exc)[:200])
                return
            by_room.setdefault(meeting_id, []).append(client)

    async def pinger() -> None:
        """Every socket says something every 20 s, as the spec's heartbeat asks, each on its
        own phase (as independent browsers would), not all 5,000 in the same instant."""
        period = 20.0
        while True:
            clients = [c for cs in list(by_room.values()) for c in cs]
            if not clients:
                await asyncio.sleep(1.0)
                continue
            step, start = period / len(clients), time.monotonic()
            for i, c in enumerate(clients):
                await asyncio.sleep(max(0.0, start + i * step - time.monotonic()))
                c.send('{"type":11}')
            await asyncio.sleep(max(0.0, start + period - time.monotonic()))

    async def chatter(clients: list[WsClient], rate: float, seconds: float) -> tuple[int, int]:
        """(messages sent, deliveries to expect: each goes to every member, sender included)."""
        sent, period, start = 0, 1.0 / rate, time.monotonic()
        while time.monotonic() - start < seconds:
            msg = {"type": 8, "payload": {"content": f"t={time.time():.6f}"}}
            random.choice(clients).send(orjson.dumps(msg).decode())
            sent += 1
            await asyncio.sleep(max(0.0, start + sent * period - time.monotonic()))
        return sent, sent * len(clients)

    ping = asyncio.create_task(pinger())
    await asyncio.gather(*(one(m, u, t) for m, members in rooms for u, t in members))
    ready.put(sum(len(v) for v in by_room.values()))
    while (phase := await asyncio.to_thread(ctl.get)) is not None:
        rate, seconds = phase
        latencies.clear()
        counts[0] = 0
        cpu0 = time.process_time()
        done = await asyncio.gather(*(chatter(cs, rate, seconds) for cs in by_room.values()))
        sent, expected = sum(d[0] for d in done), sum(d[1] for d in done)
        # Every delivery is counted (late ones with their latency), for at most DRAIN_S more.
        for _ in range(int(DRAIN_S * 10)):
            if len(latencies) >= expected:
                break
            await asyncio.sleep(0.1)
        out.put(
            {
                "sent": sent,
                "latencies": list(latencies),
                "closes": dict(CLOSES),
                "failed": failed,
                "cpu": time.process_time() - cpu0,
            }
        )
    ping.cancel()


# --- reference: what a bare loopback write costs on this host -----------------------------------


class _Sink(asyncio.Protocol):
    def data_received(self, data: bytes) -> None:
        pass


def _sink_process(port: int, n: int, ready: Any, done: Any) -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(n):
            await loop.create_connection(_Sink, "127.0.0.1", port)
        ready.put(n)
        await asyncio.to_thread(done.get)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run())


def write_floor(sockets: int = 2000, rate: int = 40000, seconds: float = 3.0) -> float:
    """CPU µs per `transport.write` of one 300-byte frame, sent in bursts of 100 to sockets
    read by two other processes: the kernel's part of a delivery, which no server code avoids."""

    async def run() -> float:
        loop = asyncio.get_running_loop()
        transports: list[asyncio.Transport] = []

        class Accept(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                transports.append(transport)  # type: ignore[arg-type]

        server = await loop.create_server(Accept, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ctx = mp.get_context("spawn")
        ready, done = ctx.Queue(), ctx.Queue()
        sinks = [
            ctx.Process(target=_sink_process, args=(port, sockets // 2, ready, done))
            for _ in range(2)
        ]
        for p in sinks:
            p.start()
        for _ in sinks:
            await asyncio.to_thread(ready.get, True, 120)
        for _ in range(3000):  # the last accepts, at most 30 s
            if len(transports) >= sockets:
                break
            await asyncio.sleep(0.01)
        frame = b"\x81\x7e\x01\x28" + b"x" * 296
        bursts, cpu0, start, writes = rate / 100, time.process_time(), time.monotonic(), 0
        while time.monotonic() - start < seconds:
            first = (writes // 100 % (sockets // 100)) * 100
            for t in transports[first : first + 100]:
                t.write(frame)
            writes += 100
            await asyncio.sleep(max(0.0, start + writes / 100 / bursts - time.monotonic()))
        cpu = time.process_time() - cpu0
        for _ in sinks:
            done.put(None)
        for p in sinks:
            p.join(10)
        server.close()
        return cpu / writes * 1e6

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return round(runner.run(run()), 2)


# --- server side --------------------------------------------------------------------------------


def seed(db_path: Path, rooms: int, per_room: int, codec: TokenCodec) -> list[Any]:
    """Users, meetings and joined participants, straight into the server's database."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    con = sqlite3.connect(db_path, timeout=30)
    cur = con.cursor()
    plan = []
    for r in range(rooms):
        members = []
        for i in range(per_room):
            name = f"b{r}x{i}x{os.getpid()}"
            cur.execute(
                "INSERT INTO users (username, email, password_hash, full_name, is_active,"
                " created_at, updated_at) VALUES (?, ?, 'x', ?, 1, ?, ?)",
                (name, f"{name}@bench.invalid", name, now, now),
            )
            uid = cur.lastrowid
            assert uid is not None
            members.append((uid, codec.issue_access(uid, name, f"{name}@bench.invalid")))
        host = members[0][0]
        cur.execute(
            "INSERT INTO meetings (meeting_code, title, description, host_id, duration,"
            " max_participants, is_public, status, settings, created_at, updated_at)"
            " VALUES (?, 'bench', '', ?, 60, ?, 0, 'active', '{}', ?, ?)",
            (f"B{os.getpid() % 1000:03d}-{r:03d}-XYZ"[:11], host, per_room, now, now),
        )
        mid = cur.lastrowid
        for uid, _ in members:
            cur.execute(
                "INSERT INTO participants (meeting_id, user_id, role, state, joined_at,"
                " last_active_at, audio_muted, video_muted, muted_by_host, can_share_screen)"
                " VALUES (?, ?, ?, 'joined', ?, ?, 0, 0, 0, 0)",
                (mid, uid, "host" if uid == host else "participant", now, now),
            )
        plan.append((mid, members))
    con.commit()
    con.close()
    return plan


def proc_stat(pid: int) -> tuple[float, float]:
    """(RSS MiB, CPU seconds, user + system) of a process."""
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profile(pid: int, rate: int, seconds: int) -> subprocess.Popen[bytes] | None:
    """BENCH_SIG_PROFILE=DIR: a py-spy flame graph of the server during each load phase."""
    where = os.environ.get("BENCH_SIG_PROFILE")
    if not where:
        return None
    Path(where).mkdir(parents=True, exist_ok=True)
    out = Path(where) / f"signaling-{rate}.txt"
    cmd = [str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(pid), "-r", "200"]
    cmd += ["-d", str(seconds), "-f", "raw", "-o", str(out), "--nonblocking"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def main() -> int:
    floor_us = write_floor()
    print(f"bare loopback write: {floor_us} µs CPU each", flush=True)
    rooms, per_room = env_int("BENCH_SIG_ROOMS", 50), env_int("BENCH_SIG_PER_ROOM", 100)
    rates = [int(x) for x in os.environ.get("BENCH_SIG_RATES", "50,500").split(",")]
    seconds, procs = env_int("BENCH_SIG_SECONDS", 10), env_int("BENCH_SIG_PROCS", 4)
    load_start = round(os.getloadavg()[0], 2)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server inherits it
    srv = ConferServer(
        {
            "CONFER_SECRET_KEY": SECRET,
            "CONFER_WS_SEND_QUEUE": "1024",
            "CONFER_SFU_ENABLED": "0",
            # Every simulated client comes from 127.0.0.1.
            "CONFER_WS_CONNECT_RATE": "100000",
            "CONFER_WS_CONNECT_BURST": "100000",
        }
    ).start()
    phases = []
    try:
        assert srv.proc is not None
        codec = TokenCodec(SECRET, "meeting-system", 86400)
        plan = seed(srv.data_dir / "confer.db", rooms, per_room, codec)
        mp_ctx = mp.get_context("spawn")
        ready, out = mp_ctx.Queue(), mp_ctx.Queue()
        shares = [share for share in (plan[i::procs] for i in range(procs)) if share]
        ctls = [mp_ctx.Queue() for _ in shares]
        workers = [
            mp_ctx.Process(target=client_process, args=(srv.port, share, ctl, ready, out))
            for share, ctl in zip(shares, ctls, strict=True)
        ]
        rss0, _ = proc_stat(srv.proc.pid)
        t0 = time.monotonic()
        for w in workers:
            w.start()
        connected = sum(ready.get(timeout=600) for _ in workers)
        connect_s = time.monotonic() - t0
        time.sleep(3)
        rss_idle, _ = proc_stat(srv.proc.pid)
        for rate in rates:
            _, cpu0 = proc_stat(srv.proc.pid)
            wall0 = time.monotonic()
            for ctl in ctls:
                ctl.put((rate / rooms, seconds))
            spy = profile(srv.proc.pid, rate, seconds)
            reports = [out.get(timeout=300) for _ in workers]
            if spy is not None:
                spy.wait(seconds + 30)
            rss_load, cpu1 = proc_stat(srv.proc.pid)
            wall = time.monotonic() - wall0
            phases.append(
                phase_result(rate, seconds, per_room, reports, cpu1 - cpu0, wall, rss_load)
            )
            print(json.dumps(phases[-1]), flush=True)
        for ctl in ctls:
            ctl.put(None)
        for w in workers:
            w.join(30)
    finally:
        log_copy = Path(tempfile.gettempdir()) / "confer-bench-signaling-server.log"
        log_copy.write_text(srv.log())
        print(f"server log kept at {log_copy}", flush=True)
        srv.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    target = next((p for p in phases if p["chat_rate"] == TARGET_RATE), None)
    result = {
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpus": os.cpu_count(),
        "loadavg_1m_start": load_start,
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "rooms": rooms,
        "per_room": per_room,
        "connections": connected,
        "connect_seconds": round(connect_s, 1),
        "rss_mib_empty": round(rss0, 1),
        "rss_mib_idle": round(rss_idle, 1),
        "rss_kib_per_connection": round((rss_idle - rss0) * 1024 / max(1, connected), 1),
        "bare_write_cpu_us": floor_us,
        "phases": phases,
        "targets": {"rss_mib": TARGET_RSS_MIB, "p99_ms": TARGET_P99_MS, "rate": TARGET_RATE},
    }
    result["met"] = bool(
        connected == rooms * per_room
        and rss_idle < TARGET_RSS_MIB
        and target is not None
        and target["latency_ms"]["p99"] < TARGET_P99_MS
        and target["deliveries_timed"] >= 0.99 * target["deliveries_expected"]
    )
    write(result)
    print(json.dumps(result, indent=2))
    return 0 if result["met"] else 1


def closes(reports: list[Any]) -> dict[str, int]:
    total: dict[str, int] = {}
    for r in reports:
        for k, v in r["closes"].items():
            total[str(k)] = total.get(str(k), 0) + v
    return total


def phase_result(
    rate: int,
    seconds: int,
    per_room: int,
    reports: list[Any],
    cpu: float,
    wall: float,
    rss: float,
) -> dict[str, Any]:
    lat = [x * 1000 for r in reports for x in r["latencies"]]
    sent = sum(r["sent"] for r in reports)
    return {
        "chat_rate": rate,
        "seconds": seconds,
        "chats_sent": sent,
        "deliveries_expected": sent * per_room,
        "deliveries_timed": len(lat),
        "deliveries_per_second": round(len(lat) / seconds),
        "latency_ms": {
            k: round(pct(lat, p), 2)
            for k, p in (("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9), ("max", 100))
        },
        "server_cpu_us_per_delivery": round(cpu / max(1, len(lat)) * 1e6, 2),
        "phase_seconds": round(wall, 1),
        "server_cpu_share": round(cpu / wall, 2),
        "clients_cpu_us_per_delivery": round(
            sum(r["cpu"] for r in reports) / max(1, len(lat)) * 1e6, 2
        ),
        "rss_mib": round(rss, 1),
        "client_closes_so_far": closes(reports),
        "connect_failures": [f for r in reports for f in r["failed"]][:5],
    }


def write(r: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "signaling.json").write_text(json.dumps(r, indent=2) + "\n")
    t = r["targets"]
    rows = [
        (
            f"concurrent connections ({r['rooms']} rooms x {r['per_room']})",
            r["connections"],
            r["rooms"] * r["per_room"],
        ),
        (
            "server RSS: empty / idle with all connections",
            f"{r['rss_mib_empty']} / {r['rss_mib_idle']} MiB",
            f"< {t['rss_mib']} MiB",
        ),
        ("RSS per idle connection", f"{r['rss_kib_per_connection']} KiB", ""),
        ("time to connect everyone", f"{r['connect_seconds']} s", ""),
        (
            "reference: CPU of one bare uvloop `transport.write` to a loopback socket",
            f"{r.get('bare_write_cpu_us')} µs",
            "",
        ),
    ]
    for p in r["phases"]:
        lat = p["latency_ms"]
        goal = f"p99 < {t['p99_ms']:g} ms" if p["chat_rate"] == t["rate"] else "(reference)"
        rows += [
            (
                f"**{p['chat_rate']} chats/s** for {p['seconds']} s: deliveries timed / expected",
                f"{p['deliveries_timed']} / {p['deliveries_expected']}",
                "all",
            ),
            (
                "delivery latency p50 / p90 / p99 / p99.9 / max",
                f"{lat['p50']} / {lat['p90']} / {lat['p99']} / {lat['p99.9']} / {lat['max']} ms",
                goal,
            ),
            (
                "server CPU per delivery; CPU share used",
                f"{p['server_cpu_us_per_delivery']} µs; {p['server_cpu_share']}",
                "",
            ),
        ]
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    (RESULTS / "signaling.md").write_text(
        f"# Signaling benchmark ({r['when']})\n\n"
        "`python -m bench signaling` (bench/signaling.py): one `confer serve` process (SQLite),\n"
        f"{r['cpus']} CPUs shared with the load generator and whatever else runs; 1-minute load\n"
        f"average {r.get('loadavg_1m_start')} when it started, {r['loadavg_1m']} when it ended.\n\n"
        "| measure | value | target |\n|---|---|---|\n"
        f"{table}\n\n"
        f"Targets met: **{'yes' if r['met'] else 'no'}**. Latency is wall clock from the sender's\n"
        "send call to the receiver's read, both on this host, so it includes the client\n"
        "processes' own scheduling on the shared CPUs. CPU per delivery: CPU seconds used during\n"
        "the phase (sending, then draining) over the deliveries made; it includes the kernel's\n"
        "loopback TCP work (see the bare-write reference) and, for the server, every message's\n"
        "receive, storage and the idle sockets' heartbeats.\n"
    )
