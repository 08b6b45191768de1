"""An SFU worker process: hosts meetings, speaks frames with the API process over a socket.

Started by `plane.py` as `python -m confer.sfu.worker <fd> <config json>`; it exits when the
socket closes, so an API process that dies takes its workers with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
import socket
import sys
import time
from typing import Any

import orjson

from confer.sfu import adapter, ipc
from confer.sfu.captions import set_tap
from confer.sfu.config import SfuConfig
from confer.sfu.peer import BadRequest
from confer.sfu.room import Room

log = logging.getLogger("confer.sfu")

FAST_TICK = 0.05
SLOW_TICK = 1.0
SPEAKER_TICK = 0.3


class Worker:
    def __init__(self, writer: asyncio.StreamWriter, config: SfuConfig) -> None:
        self.writer = writer
        self.config = config
        self.rooms: dict[int, Room] = {}

    def emit(self, msg: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            self.writer.write(ipc.encode(msg))

    def outbox(self, ref: dict[str, Any], msg_type: int, payload: dict[str, Any]) -> None:
        self.emit({"op": "send", "peer": ref, "type": msg_type, "payload": payload})

    def broadcast(self, meeting_id: int, msg_type: int, payload: dict[str, Any]) -> None:
        self.emit(
            {"op": "broadcast", "meeting_id": meeting_id, "type": msg_type, "payload": payload}
        )

    def room(self, meeting_id: int) -> Room:
        r = self.rooms.get(meeting_id)
        if r is None:
            r = self.rooms[meeting_id] = Room(meeting_id, self.outbox, self.broadcast, self.config)
        return r

    async def dispatch(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        reply: dict[str, Any] = {"op": "reply", "id": msg.get("id")}
        try:
            if op == "handle":
                ref = msg["peer"]
                room = self.room(ref["meeting_id"])
                set_tap(room, bool(msg.get("captions")), self.emit, self.writer)
                await room.handle(ref, msg["type"], msg["payload"], msg["can_publish"])
            elif op == "peer_left":
                ref = msg["peer"]
                room = self.rooms.get(ref["meeting_id"])
                if room is not None:
                    await room.peer_left(ref)
                    if not room.peers:
                        del self.rooms[ref["meeting_id"]]
            elif op == "captions":
                room = self.rooms.get(msg["meeting_id"])
                if room is not None:
                    set_tap(room, bool(msg["enabled"]), self.emit, self.writer)
            elif op == "set_allowed":
                self.room(msg["meeting_id"]).set_allowed(
                    msg["user_id"], msg["media_type"], msg["allowed"]
                )
            elif op == "ended":
                room = self.rooms.pop(msg["meeting_id"], None)
                if room is not None:
                    await room.close()
            elif op == "stats":
                reply["stats"] = self.stats()
            elif op == "crash":  # test switch: die like a segfault would
                os._exit(70)
        except BadRequest as exc:
            reply["error"] = {"status": 400, "message": str(exc)}
        except Exception as exc:
            log.exception("SFU worker failed on %s", op)
            reply["error"] = {"status": 500, "message": f"media error: {type(exc).__name__}"}
        if msg.get("id") is not None:
            self.emit(reply)

    def stats(self) -> dict[str, Any]:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        peers = [p for r in self.rooms.values() for p in r.peers.values()]
        return {
            "pid": os.getpid(),
            "cpu_user": ru.ru_utime,
            "cpu_system": ru.ru_stime,
            "maxrss_kb": ru.ru_maxrss,
            "rooms": len(self.rooms),
            "peers": len(peers),
            "packets_in": sum(p.packets_in for p in peers),
            "packets_out": sum(r.packets_out for r in self.rooms.values()),
        }

    async def ticker(self) -> None:
        last_slow = last_speaker = time.monotonic()
        while True:
            await asyncio.sleep(FAST_TICK)
            now = time.monotonic()
            for room in list(self.rooms.values()):
                room.tick_fast(now)
                if now - last_speaker >= SPEAKER_TICK:
                    room.tick_speaker(now)
                if now - last_slow >= SLOW_TICK:
                    room.tick_slow(now)
            if now - last_speaker >= SPEAKER_TICK:
                last_speaker = now
            if now - last_slow >= SLOW_TICK:
                last_slow = now
            with contextlib.suppress(ConnectionError):
                await self.writer.drain()


async def serve(fd: int, config: SfuConfig) -> None:
    # The forwarding path allocates a few short-lived tuples per packet; collecting the young
    # generation every 700 of them costs more than the cycles it ever finds.
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    adapter.check_internals()
    adapter.use_host_addresses(config.ice_addresses)
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    worker = Worker(writer, config)
    ticker = asyncio.ensure_future(worker.ticker())
    pending: set[asyncio.Task[None]] = set()
    try:
        while True:
            msg = await ipc.read(reader)
            if msg is None:
                break
            # Each peer serialises its own messages; different peers run concurrently.
            task = asyncio.ensure_future(worker.dispatch(msg))
            pending.add(task)
            task.add_done_callback(pending.discard)
    finally:
        ticker.cancel()
        for room in list(worker.rooms.values()):
            with contextlib.suppress(Exception):
                await room.close()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        level=os.environ.get("CONFER_SFU_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s sfu-worker[%(process)d] %(levelname)s %(message)s",
    )
    config = SfuConfig.from_dict(orjson.loads(args[1]))
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        pass
    profile = os.environ.get("CONFER_SFU_PROFILE")  # a directory: cProfile dumps land there
    if not profile:
        asyncio.run(serve(int(args[0]), config))
        return
    import cProfile

    prof = cProfile.Profile(time.process_time)  # CPU time: contention does not inflate it
    prof.enable()
    try:
        asyncio.run(serve(int(args[0]), config))
    finally:
        prof.disable()
        prof.dump_stats(os.path.join(profile, f"sfu-worker-{os.getpid()}.prof"))


if __name__ == "__main__":
    main()
