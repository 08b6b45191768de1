"""The media plane as the signaling hub sees it: a thin proxy to SFU worker processes.

Media never touches the API's event loop: each meeting is placed on one worker (the least
loaded), calls are forwarded over a socket, and the worker's messages for clients come back
here to the hub's sink. When a worker dies its meetings move to a fresh one and their peers are
told (`media-reset`) to open a new connection, which lands on the new worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import sys
from dataclasses import asdict
from typing import Any

import orjson

from confer.errors import AppError, Unavailable, ValidationFailed
from confer.sfu import ipc, messages
from confer.sfu.background import spawn
from confer.sfu.captions import CaptionRelay
from confer.sfu.config import SfuConfig
from confer.signaling.media import MediaSink, PeerRef

log = logging.getLogger("confer.sfu")

REQUEST_TIMEOUT = 15.0


class WorkerHandle:
    def __init__(self, index: int, proc: asyncio.subprocess.Process) -> None:
        self.index = index
        self.proc = proc
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.meetings: set[int] = set()
        self.alive = True
        self.task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid


class SfuPlane:
    """Implements `confer.signaling.media.MediaPlane`."""

    def __init__(self, config: SfuConfig) -> None:
        self.config = config
        self.sink: MediaSink | None = None
        self.workers: list[WorkerHandle] = []
        self.placement: dict[int, WorkerHandle] = {}
        self.peers: dict[int, dict[tuple[int, str], PeerRef]] = {}
        self.disallowed: dict[int, dict[tuple[int, str], bool]] = {}
        self._ids = itertools.count(1)
        self._closing = False
        self._index = itertools.count()
        self._started = False
        self._start_lock = asyncio.Lock()
        self.captions: CaptionRelay | None = None  # live captions, when an AI service runs

    # -- lifecycle

    async def start(self) -> None:
        """Start the workers now (the bench does); otherwise the first call starts them."""
        await self._ensure_started()

    async def _ensure_started(self) -> None:
        if self._started:
            return
        async with self._start_lock:
            if not self._started:
                for _ in range(self.config.worker_count):
                    self.workers.append(await self._spawn())
                self._started = True

    async def _spawn(self) -> WorkerHandle:
        parent, child = socket.socketpair()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "confer.sfu.worker",
            str(child.fileno()),
            orjson.dumps(self.config.to_dict()).decode(),
            pass_fds=(child.fileno(),),
        )
        child.close()
        handle = WorkerHandle(next(self._index), proc)
        handle.reader, handle.writer = await asyncio.open_unix_connection(sock=parent)
        handle.task = asyncio.ensure_future(self._read(handle))
        return handle

    async def close(self) -> None:
        self._closing = True
        if self.captions is not None:
            await self.captions.close()
        for w in self.workers:
            if w.writer is not None:
                w.writer.close()
        for w in self.workers:
            try:
                await asyncio.wait_for(w.proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.kill()
                await w.proc.wait()
            if w.task is not None:
                w.task.cancel()
        self.workers.clear()

    # -- MediaPlane

    def attach(self, sink: MediaSink) -> None:
        self.sink = sink
        self.captions = CaptionRelay.for_sink(sink)
        if self.captions is not None:
            self.captions.audio_blocked = self._audio_muted

    def _audio_muted(self, meeting_id: int, user_id: int) -> bool:
        """Whether the host muted the user's microphone (not captioned either)."""
        return self.disallowed.get(meeting_id, {}).get((user_id, "audio")) is False

    async def handle(
        self, peer: PeerRef, msg_type: int, payload: dict[str, Any], *, can_publish: bool
    ) -> None:
        if msg_type not in messages.CLIENT_TYPES:
            raise ValidationFailed(f"Message type {msg_type} is not for the media server")
        if not isinstance(payload, dict):
            raise ValidationFailed("payload must be an object")
        await self._ensure_started()
        self.peers.setdefault(peer.meeting_id, {})[(peer.user_id, peer.peer_id)] = peer
        await self._request(
            self._worker_for(peer.meeting_id),
            {
                "op": "handle",
                "peer": asdict(peer),
                "type": msg_type,
                "payload": payload,
                "can_publish": can_publish,
                "captions": self.captions is not None and self.captions.flag(peer.meeting_id),
            },
        )

    async def peer_left(self, peer: PeerRef) -> None:
        peers = self.peers.get(peer.meeting_id, {})
        peers.pop((peer.user_id, peer.peer_id), None)
        if self.captions is not None:
            self.captions.close_where(peer.meeting_id, peer.user_id, peer.peer_id)
        w = self.placement.get(peer.meeting_id)
        if w is None:
            return
        await self._request(w, {"op": "peer_left", "peer": asdict(peer)})
        if not peers:
            self._forget(peer.meeting_id)
            if self.captions is not None:
                self.captions.close_where(peer.meeting_id)

    async def peer_moved(self, peer: PeerRef) -> None:
        await self.peer_left(peer)
        self.peers.setdefault(peer.meeting_id, {})[(peer.user_id, peer.peer_id)] = peer
        if self.sink is not None:
            await self.sink.send(peer, messages.MEDIA_RESET, {"reason": "node_lost"})

    async def set_publish_allowed(
        self, meeting_id: int, user_id: int, media_type: str, allowed: bool
    ) -> None:
        messages.check_media_type(media_type)
        self.disallowed.setdefault(meeting_id, {})[(user_id, media_type)] = allowed
        if self.captions is not None and media_type == "audio" and not allowed:
            self.captions.close_where(meeting_id, user_id)
        w = self.placement.get(meeting_id)
        if w is not None:
            await self._request(w, self._allowed_msg(meeting_id, user_id, media_type, allowed))

    async def settings_changed(self, meeting_id: int) -> None:
        msg = self.captions.update(meeting_id) if self.captions is not None else None
        w = self.placement.get(meeting_id)
        if msg is not None and w is not None:
            await self._request(w, msg)

    async def meeting_ended(self, meeting_id: int) -> None:
        w = self.placement.get(meeting_id)
        self._forget(meeting_id)
        if self.captions is not None:
            self.captions.close_where(meeting_id)
        if w is not None:
            await self._request(w, {"op": "ended", "meeting_id": meeting_id})

    # -- inspection (bench, tests)

    async def stats(self) -> list[dict[str, Any]]:
        out = []
        for w in list(self.workers):
            if w.alive:
                reply = await self._request(w, {"op": "stats"})
                out.append(reply.get("stats", {}))
        return out

    def worker_of(self, meeting_id: int) -> WorkerHandle | None:
        return self.placement.get(meeting_id)

    # -- internals

    @staticmethod
    def _allowed_msg(meeting_id: int, user_id: int, media_type: str, allowed: bool) -> dict:
        return {
            "op": "set_allowed",
            "meeting_id": meeting_id,
            "user_id": user_id,
            "media_type": media_type,
            "allowed": allowed,
        }

    def _forget(self, meeting_id: int) -> None:
        w = self.placement.pop(meeting_id, None)
        if w is not None:
            w.meetings.discard(meeting_id)
        self.peers.pop(meeting_id, None)
        self.disallowed.pop(meeting_id, None)

    def _worker_for(self, meeting_id: int) -> WorkerHandle:
        w = self.placement.get(meeting_id)
        if w is not None and w.alive:
            return w
        alive = [w for w in self.workers if w.alive]
        if not alive:
            raise Unavailable("The media server is restarting; try again shortly")
        w = min(alive, key=lambda h: len(h.meetings))
        w.meetings.add(meeting_id)
        self.placement[meeting_id] = w
        return w

    async def _request(self, w: WorkerHandle, msg: dict[str, Any]) -> dict[str, Any]:
        if not w.alive or w.writer is None:
            raise Unavailable("The media server is restarting; try again shortly")
        msg_id = next(self._ids)
        msg["id"] = msg_id
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        w.pending[msg_id] = fut
        try:
            w.writer.write(ipc.encode(msg))
            await w.writer.drain()
            reply = await asyncio.wait_for(fut, REQUEST_TIMEOUT)
        except (ConnectionError, TimeoutError) as exc:
            raise Unavailable("The media server did not answer") from exc
        finally:
            w.pending.pop(msg_id, None)
        err = reply.get("error")
        if err:
            if err.get("status") == 400:
                raise ValidationFailed(str(err.get("message")))
            raise AppError(str(err.get("message")), status=int(err.get("status", 500)))
        return reply

    async def _read(self, w: WorkerHandle) -> None:
        assert w.reader is not None
        try:
            while True:
                msg = await ipc.read(w.reader)
                if msg is None:
                    break
                op = msg.get("op")
                if op == "reply":
                    fut = w.pending.get(msg.get("id", -1))
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
                elif op in ("send", "broadcast"):
                    spawn(self._deliver(msg))
                elif op in ("audio", "audio_end") and self.captions is not None:
                    self.captions.on_frame(msg)
        except Exception:
            log.exception("SFU worker %s: bad frame", w.pid)
        await self._worker_died(w)

    async def _deliver(self, msg: dict[str, Any]) -> None:
        if self.sink is None:
            return
        try:
            if msg["op"] == "send":
                await self.sink.send(PeerRef(**msg["peer"]), msg["type"], msg["payload"])
            else:
                await self.sink.broadcast(msg["meeting_id"], msg["type"], msg["payload"])
        except Exception:
            log.exception("could not deliver an SFU message")

    async def _worker_died(self, w: WorkerHandle) -> None:
        if not w.alive:
            return
        w.alive = False
        for fut in w.pending.values():
            if not fut.done():
                fut.set_result({"error": {"status": 503, "message": "media worker died"}})
        if self._closing:
            return
        log.warning("SFU worker %s died; moving its %d meetings", w.pid, len(w.meetings))
        with contextlib.suppress(ValueError):
            self.workers.remove(w)
        try:
            self.workers.append(await self._spawn())
        except OSError:
            log.exception("could not start a replacement SFU worker")
        for meeting_id in list(w.meetings):
            self.placement.pop(meeting_id, None)
            if not self.peers.get(meeting_id):
                continue
            target = self._worker_for(meeting_id)
            for (user_id, media_type), allowed in self.disallowed.get(meeting_id, {}).items():
                with contextlib.suppress(AppError):
                    await self._request(
                        target, self._allowed_msg(meeting_id, user_id, media_type, allowed)
                    )
            for ref in list(self.peers.get(meeting_id, {}).values()):
                if self.sink is not None:
                    with contextlib.suppress(Exception):
                        await self.sink.send(
                            ref, messages.MEDIA_RESET, {"reason": "worker_restart"}
                        )
        w.meetings.clear()
