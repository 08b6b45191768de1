"""`confer loadtest`: bots publish and subscribe through an SFU; CPU per forwarded packet.

Targets: `confer` starts confer's SFU workers in-process (the same `SfuPlane` the API uses,
without HTTP in front), `janus` drives a running Janus VideoRoom over its HTTP API. The same
bots meet both, so the figures compare. Output: one JSON object (stdout or --json).

    confer loadtest --publishers 1 --subscribers 20 --duration 20
    confer loadtest --target janus --janus-url http://127.0.0.1:8088/janus --janus-pid 1234
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from confer.sfu.bots import Bot, encoded_video

TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (its finished children not included)."""
    user, system = process_cpu_split(pid)
    return user + system


def process_cpu_split(pid: int) -> tuple[float, float]:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="confer loadtest", description=__doc__.split("\n")[0])
    ap.add_argument("--target", choices=["confer", "janus"], default="confer")
    ap.add_argument("--publishers", type=int, default=1)
    ap.add_argument("--subscribers", type=int, default=5)
    ap.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=8.0, help="seconds after the last join")
    ap.add_argument("--workers", type=int, default=1, help="confer SFU worker processes")
    ap.add_argument("--ice-address", default="127.0.0.1", help="address the SFU listens on")
    ap.add_argument("--bot-address", default="127.0.0.1", help="address the bots use")
    ap.add_argument("--janus-url", default="http://127.0.0.1:8088/janus")
    ap.add_argument("--janus-pid", type=int, default=0, help="Janus process to measure")
    ap.add_argument(
        "--janus-fast", action="store_true", help="create the room without transport-wide CC"
    )
    ap.add_argument("--json", default="", help="write the result here as well")
    args = ap.parse_args(argv)
    if not 1 <= args.publishers <= 16 or not 0 <= args.subscribers <= 200:
        ap.error("publishers must be 1-16 and subscribers 0-200")
    if not 1 <= args.duration <= 600:
        ap.error("duration must be 1-600 seconds")
    return args


class ConferTarget:
    """confer's SFU: an SfuPlane with its worker processes, reached without HTTP."""

    def __init__(self, args: argparse.Namespace) -> None:
        from confer.sfu.config import SfuConfig
        from confer.sfu.plane import SfuPlane

        self.plane = SfuPlane(SfuConfig(workers=args.workers, ice_addresses=[args.ice_address]))
        self.plane.attach(self)
        self.bots: dict[str, Bot] = {}
        self.queues: dict[str, asyncio.Queue[tuple[int, dict[str, Any]]]] = {}
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.plane.start()

    def pids(self) -> list[int]:
        return [w.pid for w in self.plane.workers]

    def _ref(self, bot: Bot) -> Any:
        from confer.signaling.media import PeerRef

        return PeerRef(1, int(bot.name.split("-")[1]), bot.name, bot.name)

    async def send(self, peer: Any, msg_type: int, payload: dict[str, Any]) -> None:
        q = self.queues.get(peer.peer_id)
        if q is not None:
            q.put_nowait((msg_type, payload))

    async def broadcast(self, meeting_id: int, msg_type: int, payload: dict[str, Any]) -> None:
        return None

    async def join(self, bot: Bot) -> None:
        self.bots[bot.name] = bot
        q: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue()
        self.queues[bot.name] = q
        self.tasks.append(asyncio.ensure_future(self._serve(bot, q)))
        offer = await bot.offer()
        await self.plane.handle(
            self._ref(bot), 1, {"type": "offer", "sdp": offer}, can_publish=bot.publish
        )

    async def _serve(self, bot: Bot, q: asyncio.Queue[tuple[int, dict[str, Any]]]) -> None:
        while True:
            msg_type, payload = await q.get()
            if msg_type == 2:
                bot.accept_answer(payload["sdp"])
            elif msg_type == 1:
                answer = await bot.answer(payload["sdp"], first=False)
                await self.plane.handle(
                    self._ref(bot), 2, {"type": "answer", "sdp": answer}, can_publish=bot.publish
                )

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await self.plane.close()


class JanusTarget:
    """A Janus VideoRoom over the HTTP transport (long-polled events)."""

    def __init__(self, args: argparse.Namespace) -> None:
        import httpx

        self.url = args.janus_url.rstrip("/")
        self.http = httpx.AsyncClient(timeout=30)
        self.pid = args.janus_pid
        self.fast = args.janus_fast
        self.session = 0
        self.room = 4242
        self.feeds: list[int] = []
        self.waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.poller: asyncio.Task[None] | None = None
        self.n = 0

    def pids(self) -> list[int]:
        return [self.pid] if self.pid else []

    def _tx(self) -> str:
        self.n += 1
        return f"t{self.n}"

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.http.post(self.url + path, json=body)
        data = r.json()
        if data.get("janus") == "error":
            raise RuntimeError(f"Janus: {data}")
        return data

    async def start(self) -> None:
        data = await self._post("", {"janus": "create", "transaction": self._tx()})
        self.session = data["data"]["id"]
        self.poller = asyncio.ensure_future(self._poll())
        handle = await self._attach()
        await self._message(
            handle,
            {
                "request": "create",
                "room": self.room,
                "publishers": 16,
                "bitrate": 3_000_000,
                "videocodec": "vp8",
                "audiocodec": "opus",
            },
            sync=True,
        )

    async def _attach(self) -> int:
        data = await self._post(
            f"/{self.session}",
            {"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": self._tx()},
        )
        return int(data["data"]["id"])

    async def _message(
        self,
        handle: int,
        body: dict[str, Any],
        jsep: dict[str, Any] | None = None,
        sync: bool = False,
    ) -> dict[str, Any]:
        tx = self._tx()
        msg: dict[str, Any] = {"janus": "message", "transaction": tx, "body": body}
        if jsep is not None:
            msg["jsep"] = jsep
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiters[tx] = fut
        data = await self._post(f"/{self.session}/{handle}", msg)
        if data.get("janus") == "success":
            self.waiters.pop(tx, None)
            return data
        return await asyncio.wait_for(fut, 30)

    async def _poll(self) -> None:
        while True:
            r = await self.http.get(f"{self.url}/{self.session}", params={"maxev": 10}, timeout=60)
            events = r.json()
            for ev in events if isinstance(events, list) else [events]:
                fut = self.waiters.pop(ev.get("transaction", ""), None)
                if fut is not None and not fut.done() and ev.get("janus") == "event":
                    fut.set_result(ev)

    async def join(self, bot: Bot) -> None:
        handle = await self._attach()
        if bot.publish:
            offer = await bot.offer()
            ev = await self._message(
                handle,
                {
                    "request": "joinandconfigure",
                    "room": self.room,
                    "ptype": "publisher",
                    "display": bot.name,
                    "audio": True,
                    "video": True,
                },
                {"type": "offer", "sdp": offer},
            )
            self.feeds.append(int(ev["plugindata"]["data"]["id"]))
            bot.accept_answer(ev["jsep"]["sdp"])
            return
        streams = [{"feed": f} for f in self.feeds]
        ev = await self._message(
            handle,
            {"request": "join", "room": self.room, "ptype": "subscriber", "streams": streams},
        )
        answer = await bot.answer(ev["jsep"]["sdp"], first=True)
        await self._message(
            handle, {"request": "start", "room": self.room}, {"type": "answer", "sdp": answer}
        )

    async def close(self) -> None:
        if self.poller is not None:
            self.poller.cancel()
        await self.http.aclose()


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def send_feedback(bots: Callable[[], list[Bot]]) -> None:
    """Receiver reports from subscribing bots once a second, as a browser sends them."""
    while True:
        await asyncio.sleep(1.0)
        for b in bots():
            if b.transport is not None and b.stats.streams:
                b.transport.send_rtcp(b.report())


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from confer.sfu import adapter

    adapter.use_host_addresses([args.bot_address])
    video = encoded_video()
    target: ConferTarget | JanusTarget = (
        ConferTarget(args) if args.target == "confer" else JanusTarget(args)
    )
    await target.start()
    pubs = [Bot(f"bot-{i + 1}", True, video) for i in range(args.publishers)]
    subs = [Bot(f"bot-{args.publishers + i + 1}", False) for i in range(args.subscribers)]
    feedback = asyncio.ensure_future(send_feedback(lambda: subs))
    try:
        for b in pubs:
            await target.join(b)
        await until(lambda: all(b.stats.connected_at for b in pubs), 30)
        for b in subs:
            await target.join(b)
        await until(lambda: all(b.stats.first_frame is not None for b in subs), 60)
        await asyncio.sleep(args.warmup)
        pids = target.pids()
        before = [(b.stats.packets, b.stats.lost) for b in subs]
        sys0 = sum(process_cpu_split(p)[1] for p in pids)
        cpu0, t0 = sum(process_cpu(p) for p in pids), time.monotonic()
        load0 = os.getloadavg()
        await asyncio.sleep(args.duration)
        cpu1, t1 = sum(process_cpu(p) for p in pids), time.monotonic()
        system = sum(process_cpu_split(p)[1] for p in pids) - sys0
        after = [(b.stats.packets, b.stats.lost) for b in subs]
        window = t1 - t0
        got = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
        lost = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
        cpu = cpu1 - cpu0
        joins = [b.stats.first_frame for b in subs if b.stats.first_frame is not None]
        return {
            "target": args.target,
            "publishers": args.publishers,
            "subscribers": args.subscribers,
            "window_s": round(window, 2),
            "forwarded_pps": round(got / window, 1),
            "sfu_cpu_s": round(cpu, 3),
            "sfu_cpu_pct_of_one_core": round(100 * cpu / window, 1),
            "us_cpu_per_forwarded_packet": round(1e6 * cpu / got, 2) if got else None,
            "us_system_per_forwarded_packet": round(1e6 * system / got, 2) if got else None,
            "loss_pct": round(100 * lost / max(1, got + lost), 3),
            "join_to_first_frame_p50_s": _round(_percentile(joins, 0.5)),
            "join_to_first_frame_p95_s": _round(_percentile(joins, 0.95)),
            "subscribers_with_video": len(joins),
            "loadavg_1m_at_start": round(load0[0], 2),
            "cpus": os.cpu_count(),
        }
    finally:
        feedback.cancel()
        for b in pubs + subs:
            await b.close()
        await target.close()


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


async def until(cond: Callable[[], bool], limit: float) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("bots did not get going in time")
        await asyncio.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = asyncio.run(run(args))
    except (TimeoutError, RuntimeError, OSError) as exc:
        print(f"confer loadtest: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(result)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
