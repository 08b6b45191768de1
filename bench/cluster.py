"""Two nodes against one, same load, same run: signaling fan-out, SFU forwarding, failover.

Every configuration is real `confer serve` processes sharing one PostgreSQL and one Redis
(the one-node row uses Redis too, so the rows differ only in the number of nodes). Clients are
spread round-robin over the nodes, as nginx spreads them.

1. Signaling: ROOMS meetings x PER_ROOM members hold WebSockets; RATE chat messages/s in
   aggregate for SECONDS, each from a random member and delivered to every member of its
   room. Reported: deliveries made / expected, latency (send -> read, wall clock, same host)
   p50 / p99, and CPU per delivery summed over every confer process and Redis.
2. Media: MEETINGS meetings of 1 publisher (pre-encoded 720p VP8 + Opus bots, confer's load
   bots) and SUBS subscribers, over the real signaling (offer / answer with `to_user_id` 0);
   each meeting's media lives on the SFU of the node placement picked, wherever the bots'
   sockets are. Reported: forwarded packets/s, loss, join -> first frame, CPU per forwarded
   packet summed over every confer process and its SFU workers, and the busiest process's
   share of a core (what bounds a node).
3. A media node killed: one signaling node holds the bots' sockets, two media-only nodes the
   meetings' media; SIGKILL the one holding more meetings and time every moved subscriber's
   way back to media (media-reset, a new transport, a first frame; target < 5 s).

Bounded: fixed counts, fixed durations, hard time-outs. Settings (environment):
BENCH_CLUSTER_ROOMS (10), _PER_ROOM (20), _RATE (200), _SECONDS (10), _MEETINGS (4), _SUBS (5).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import websockets
from tests.support.servers import ConferServer, Postgres, Redis

from confer.sfu import adapter
from confer.sfu.bots import Bot, encoded_video
from confer.sfu.loadtest import process_cpu, send_feedback, until

RESULTS = Path(__file__).parent / "results"
PASSWORD = "Bench-pass-1"
TARGET_FAILOVER_S = 5.0  # issue 13: media back within 5 s of a node's death


def setting(name: str, default: int) -> int:
    return int(os.environ.get(f"BENCH_CLUSTER_{name}", default))


ROOMS, PER_ROOM = setting("ROOMS", 10), setting("PER_ROOM", 20)
RATE, SECONDS = setting("RATE", 200), setting("SECONDS", 10)
MEETINGS, SUBS = setting("MEETINGS", 4), setting("SUBS", 5)


def tree_pids(root: int) -> list[int]:
    """`root` and its descendants (a node's SFU and AI workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_of(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            out[pid] = process_cpu(pid)
    return out


class Cluster:
    """Nodes sharing one database and Redis; `roles` gives each node's `--only` (None: all)."""

    def __init__(self, roles: list[str | None], pg: Postgres, redis: Redis, db: int) -> None:
        self.env = {
            "CONFER_DATABASE_URL": pg.create_database(f"cluster_{db}"),
            "CONFER_REDIS_URL": redis.url.rsplit("/", 1)[0] + f"/{db}",
            "CONFER_SECRET_KEY": "bench-cluster-secret-shared-by-the-nodes-0123",
            "CONFER_SFU_ICE_ADDRESSES": "127.0.0.1",
            "CONFER_SFU_WORKERS": "1",
            "CONFER_AI_ENABLED": "false",
        }
        self.redis = redis
        self.nodes = []
        for i, only in enumerate(roles):
            args = (["--only", only] if only else []) + (["--no-migrate"] if i else [])
            self.nodes.append(ConferServer(self.env, args).start())

    def pids(self) -> list[int]:
        pids = [p for n in self.nodes if n.proc for p in tree_pids(n.proc.pid)]
        return pids + ([self.redis.proc.pid] if self.redis.proc else [])

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


async def register(http: httpx.AsyncClient, tag: str) -> dict[str, Any]:
    name = f"{tag}{random.randrange(10**9)}"
    r = await http.post(
        "/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
    )
    r.raise_for_status()
    return r.json()["data"]


async def meeting_of(http: httpx.AsyncClient, size: int, tag: str) -> tuple[int, list[dict]]:
    """A meeting with `size` members (the host first), all joined over REST."""
    users = [await register(http, tag) for _ in range(size)]
    auth = {"Authorization": f"Bearer {users[0]['token']}"}
    r = await http.post("/api/v1/meetings", headers=auth, json={"title": f"bench {tag}"})
    mid = int(r.json()["data"]["meeting_id"])
    for u in users:
        r = await http.post(
            f"/api/v1/meetings/{mid}/join",
            headers={"Authorization": f"Bearer {u['token']}"},
            json={},
        )
        r.raise_for_status()
    return mid, users


def ws_url(node: ConferServer, user: dict[str, Any], meeting_id: int, peer: str) -> str:
    return (
        f"{node.ws_url}?token={user['token']}&meeting_id={meeting_id}"
        f"&user_id={user['user_id']}&peer_id={peer}"
    )


# -- signaling ---------------------------------------------------------------------------------


async def signaling(cluster: Cluster) -> dict[str, Any]:
    nodes = cluster.nodes
    async with httpx.AsyncClient(base_url=nodes[0].url, timeout=60) as http:
        rooms = await asyncio.gather(*(meeting_of(http, PER_ROOM, f"s{r}x") for r in range(ROOMS)))
    latencies: list[float] = []
    sockets: list[tuple[int, Any]] = []
    readers = []

    async def read(ws: Any) -> None:
        async for raw in ws:
            msg = json.loads(raw)
            if msg.get("type") == 8:
                sent = json.loads(msg["payload"]["content"])["t"]
                latencies.append(time.time() - sent)

    i = 0
    for mid, users in rooms:
        for u in users:
            node = nodes[i % len(nodes)]
            i += 1
            ws = await websockets.connect(ws_url(node, u, mid, f"p{u['user_id']}"), max_size=None)
            await ws.recv()  # room-info
            sockets.append((mid, ws))
            readers.append(asyncio.ensure_future(read(ws)))
    await asyncio.sleep(2)  # joins announced and settled
    latencies.clear()
    pids = cluster.pids()
    before, t0 = cpu_of(pids), time.monotonic()
    sent = 0
    interval = 1.0 / RATE
    while time.monotonic() - t0 < SECONDS:
        mid, ws = random.choice(sockets)
        body = {
            "type": 8,
            "meeting_id": mid,
            "payload": {"content": json.dumps({"t": time.time()})},
        }
        await ws.send(json.dumps(body))
        sent += 1
        await asyncio.sleep(max(0.0, t0 + sent * interval - time.monotonic()))
    expected = sent * PER_ROOM
    with contextlib.suppress(TimeoutError):  # late deliveries count in the latency
        await until(lambda: len(latencies) >= expected, 20)
    after = cpu_of(pids)
    cpu = sum(after[p] - before.get(p, after[p]) for p in after)
    for r in readers:
        r.cancel()
    for _, ws in sockets:
        await ws.close()
    lat = sorted(latencies)
    return {
        "nodes": len(nodes),
        "sockets": len(sockets),
        "chats_per_s": RATE,
        "deliveries": len(lat),
        "expected": expected,
        "p50_ms": round(1000 * lat[len(lat) // 2], 1) if lat else None,
        "p99_ms": round(1000 * lat[int(0.99 * (len(lat) - 1))], 1) if lat else None,
        "us_cpu_per_delivery": round(1e6 * cpu / max(1, len(lat)), 2),
    }


# -- media -------------------------------------------------------------------------------------


class SignaledBot:
    """A load bot that speaks the contract's signaling to whichever node it was given."""

    def __init__(self, bot: Bot, url: str, meeting_id: int) -> None:
        self.bot, self.url, self.meeting_id = bot, url, meeting_id
        self.task: asyncio.Task[None] | None = None
        self.resets = 0

    async def start(self) -> None:
        self.ws = await websockets.connect(self.url, max_size=None)
        await self.ws.recv()  # room-info
        self.task = asyncio.ensure_future(self._serve())
        await self._send(1, {"type": "offer", "sdp": await self.bot.offer()})

    async def _send(self, msg_type: int, payload: dict[str, Any]) -> None:
        body = {
            "type": msg_type,
            "meeting_id": self.meeting_id,
            "to_user_id": 0,
            "payload": payload,
        }
        await self.ws.send(json.dumps(body))

    async def _serve(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if msg.get("from_user_id") not in (0, None):
                continue
            if msg["type"] == 32:  # media-reset: a new transport, offered afresh
                self.resets += 1
                old = self.bot
                self.bot = Bot(old.name, old.publish, old.video)
                await old.close()
                await self._send(1, {"type": "offer", "sdp": await self.bot.offer()})
            elif msg["type"] == 2:
                self.bot.accept_answer(msg["payload"]["sdp"])
            elif msg["type"] == 1:
                answer = await self.bot.answer(msg["payload"]["sdp"], first=False)
                await self._send(2, {"type": "answer", "sdp": answer})

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
        await self.ws.close()
        await self.bot.close()


async def bots_in_meetings(
    cluster: Cluster, sockets_on: list[ConferServer]
) -> tuple[list[int], list[SignaledBot], list[SignaledBot], asyncio.Task[None]]:
    """MEETINGS meetings of 1 publisher and SUBS subscribers, connected round-robin to
    `sockets_on`, publishers first; returns once every subscriber has a first frame."""
    adapter.use_host_addresses(["127.0.0.1"])
    video = encoded_video()
    async with httpx.AsyncClient(base_url=cluster.nodes[0].url, timeout=60) as http:
        meetings = [await meeting_of(http, 1 + SUBS, f"m{i}x") for i in range(MEETINGS)]
    pubs: list[SignaledBot] = []
    subs: list[SignaledBot] = []
    i = 0
    for mid, users in meetings:
        for j, u in enumerate(users):
            node = sockets_on[i % len(sockets_on)]
            i += 1
            bot = Bot(f"bot-{u['user_id']}", j == 0, video if j == 0 else None)
            (pubs if j == 0 else subs).append(SignaledBot(bot, ws_url(node, u, mid, bot.name), mid))
    feedback = asyncio.ensure_future(send_feedback(lambda: [s.bot for s in subs]))
    for b in pubs:
        await b.start()
    await until(lambda: all(b.bot.stats.connected_at for b in pubs), 60)
    for b in subs:
        await b.start()
    await until(lambda: all(b.bot.stats.first_frame is not None for b in subs), 90)
    return [mid for mid, _ in meetings], pubs, subs, feedback


async def close_bots(bots: list[SignaledBot], feedback: asyncio.Task[None]) -> None:
    feedback.cancel()
    for b in bots:
        with contextlib.suppress(Exception):
            await b.close()


async def media(cluster: Cluster) -> dict[str, Any]:
    meetings, pubs, subs, feedback = await bots_in_meetings(cluster, cluster.nodes)
    try:
        await asyncio.sleep(5)
        pids = cluster.pids()
        before = [(b.bot.stats.packets, b.bot.stats.lost) for b in subs]
        cpu0, t0 = cpu_of(pids), time.monotonic()
        await asyncio.sleep(SECONDS)
        cpu1, window = cpu_of(pids), time.monotonic() - t0
        after = [(b.bot.stats.packets, b.bot.stats.lost) for b in subs]
        got = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
        lost = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
        used = {p: cpu1[p] - cpu0.get(p, cpu1[p]) for p in cpu1}
        joins = sorted(b.bot.stats.first_frame or 0.0 for b in subs)
        owners = {cluster_redis_get(cluster, f"confer:media:meeting:{m}") for m in meetings}
        return {
            "nodes": len(cluster.nodes),
            "meetings": MEETINGS,
            "subscribers_each": SUBS,
            "sfus_used": len(owners),
            "forwarded_pps": round(got / window, 1),
            "loss_pct": round(100 * lost / max(1, got + lost), 3),
            "join_to_first_frame_p50_s": round(joins[len(joins) // 2], 3),
            "us_cpu_per_forwarded_packet": round(1e6 * sum(used.values()) / max(1, got), 2),
            "busiest_process_pct_of_core": round(100 * max(used.values()) / window, 1),
        }
    finally:
        await close_bots(pubs + subs, feedback)


async def failover(cluster: Cluster) -> dict[str, Any]:
    """Sockets on the first (signaling) node, media on the two media-only nodes: SIGKILL the
    media node holding the most meetings and time each subscriber's way back to media."""
    meetings, pubs, subs, feedback = await bots_in_meetings(cluster, cluster.nodes[:1])
    try:
        owners = [cluster_redis_get(cluster, f"confer:media:meeting:{m}") for m in meetings]
        victim_id = max(set(owners), key=owners.count)
        victim = next(
            n for n in cluster.nodes[1:] if n.proc is not None and f":{n.proc.pid}:" in victim_id
        )
        moved = [m for m, o in zip(meetings, owners, strict=True) if o == victim_id]
        hit = [b for b in subs if b.meeting_id in moved]
        assert victim.proc is not None
        victim.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()

        def back(b: SignaledBot) -> float | None:
            """Seconds from the kill to the first whole video frame on the new transport."""
            first = b.bot.stats.first_frame
            return (
                None if b.resets == 0 or first is None else b.bot.stats.joined_at + first - killed
            )

        await until(lambda: all(back(b) is not None for b in hit), 60)
        times = sorted(back(b) or 0.0 for b in hit)
        return {
            "meetings_moved": len(moved),
            "subscribers_moved": len(hit),
            "media_back_p50_s": round(times[len(times) // 2], 2),
            "media_back_max_s": round(times[-1], 2),
            "untouched_meetings_reset": sum(b.resets for b in subs if b.meeting_id not in moved),
        }
    finally:
        await close_bots(pubs + subs, feedback)


def cluster_redis_get(cluster: Cluster, key: str) -> str | None:
    import redis

    raw = redis.Redis.from_url(cluster.env["CONFER_REDIS_URL"]).get(key)
    return raw.decode() if raw else None


# -- report ------------------------------------------------------------------------------------


def markdown(
    sig: list[dict[str, Any]],
    med: list[dict[str, Any]],
    lost: dict[str, Any],
    meta: dict[str, Any],
) -> str:
    lines = [
        f"# Cluster benchmark ({meta['at']})",
        "",
        "`python -m bench cluster` (bench/cluster.py): one node against two, the same load in "
        f"the same run, on {os.cpu_count()} CPUs shared with the load generators "
        f"(1-minute load average {meta['load_start']:.2f} at the start).",
        "",
        f"## Signaling: {ROOMS} rooms x {PER_ROOM} sockets, {RATE} chats/s for {SECONDS} s",
        "",
        "| nodes | deliveries / expected | p50 ms | p99 ms | CPU per delivery "
        "(all nodes + Redis) |",
        "|---|---|---|---|---|",
    ]
    for r in sig:
        lines.append(
            f"| {r['nodes']} | {r['deliveries']} / {r['expected']} | {r['p50_ms']} | "
            f"{r['p99_ms']} | {r['us_cpu_per_delivery']} µs |"
        )
    lines += [
        "",
        f"## Media: {MEETINGS} meetings x (1 publisher + {SUBS} subscribers), 720p VP8 + Opus",
        "",
        "| nodes | SFUs used | forwarded packets/s | loss | join → first frame p50 | "
        "CPU per forwarded packet (all processes) | busiest process |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in med:
        if "error" in r:
            lines.append(f"| {r['nodes']} | error: {r['error']} | | | | | |")
            continue
        lines.append(
            f"| {r['nodes']} | {r['sfus_used']} | {r['forwarded_pps']} | {r['loss_pct']} % | "
            f"{r['join_to_first_frame_p50_s']} s | {r['us_cpu_per_forwarded_packet']} µs | "
            f"{r['busiest_process_pct_of_core']} % of a core |"
        )
    lines += [
        "",
        "With two nodes the bots' sockets alternate between them, so about half of every "
        "meeting's SFU-bound messages travel over Redis to the node that holds its media; the "
        "media itself goes straight from each bot to that node's SFU. The CPU per delivery and "
        "per packet sum every process on the machine that serves the load, so a cost the "
        "second node adds (the bus hop, Redis) shows in them.",
        "",
        "## A media node killed (SIGKILL)",
        "",
        f"One signaling node holds every socket; {MEETINGS} meetings as above have their media "
        "on two media-only nodes (`--only media`). The one holding more meetings is killed; "
        "timed from the kill to each moved subscriber's first whole video frame on the new "
        "transport it opened after its `media-reset` (target: within 5 s).",
        "",
    ]
    if "error" in lost:
        lines.append(f"Error: {lost['error']}")
    else:
        lines += [
            "| meetings moved | subscribers moved | media back p50 | media back max | "
            "resets of meetings not moved |",
            "|---|---|---|---|---|",
            f"| {lost['meetings_moved']} | {lost['subscribers_moved']} | "
            f"{lost['media_back_p50_s']} s | {lost['media_back_max_s']} s | "
            f"{lost['untouched_meetings_reset']} |",
        ]
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    pg, redis = Postgres().start(), Redis().start()
    meta = {
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_start": os.getloadavg()[0],
    }
    sig: list[dict[str, Any]] = []
    med: list[dict[str, Any]] = []
    lost: dict[str, Any] = {}
    try:
        for roles, db in (([None], 11), ([None, None], 12)):
            cluster = Cluster(roles, pg, redis, db)
            try:
                sig.append(asyncio.run(signaling(cluster)))
                print(json.dumps(sig[-1]), flush=True)
                try:
                    med.append(asyncio.run(media(cluster)))
                except (TimeoutError, OSError) as exc:
                    med.append({"nodes": len(roles), "error": str(exc)})
                print(json.dumps(med[-1]), flush=True)
            finally:
                cluster.stop()
        cluster = Cluster(["user,meeting,signaling", "media", "media"], pg, redis, 13)
        try:
            lost = asyncio.run(failover(cluster))
        except (TimeoutError, OSError) as exc:
            lost = {"error": str(exc)}
        finally:
            cluster.stop()
        print(json.dumps(lost), flush=True)
    finally:
        redis.stop()
        pg.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cluster.json").write_text(
        json.dumps({"meta": meta, "signaling": sig, "media": med, "failover": lost}, indent=2)
        + "\n"
    )
    (RESULTS / "cluster.md").write_text(markdown(sig, med, lost, meta))
    complete = all(r["deliveries"] == r["expected"] for r in sig)
    ok = complete and all("error" not in r for r in med) and "error" not in lost
    return 0 if ok and lost.get("media_back_max_s", 99) < TARGET_FAILOVER_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
