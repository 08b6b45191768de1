"""The media plane across nodes: each meeting's media on one SFU node, reached over the bus.

With Redis configured every `confer serve` process (a node; `--workers N` makes N of them on one
host) gets a `DistributedPlane`. The hub calls it as it would call the local `SfuPlane`; it
looks up the meeting's owner in `Placement` (placing the meeting on the least-loaded node with
room the first time) and runs the call there: directly when the owner is this node, otherwise
as a request on the bus topic `media:{owner}`, answered on `media-reply:{node}`. What the owner's
SFU says to a client goes through its hub's sink, which reaches sockets on any node. Media
itself flows from the browser straight to the owner's UDP address (its ICE candidates).

A node that runs no SFU (`--only signaling`) forwards everything. Each node watches the owners
of the meetings it forwards for: one whose bus subscription is gone (a killed process) has its
meetings placed elsewhere, its pending calls fail at once, and the peers of those meetings get
`media-reset` and reconnect their media to the new owner. An owner that finds one of its
meetings placed elsewhere (it looked dead during a stall) gives it up the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from confer.bus import EventBus
from confer.errors import AppError, Unavailable, ValidationFailed
from confer.periodic import cancel, every
from confer.sfu import messages
from confer.sfu.background import spawn
from confer.sfu.placement import Placement
from confer.signaling.media import MediaSink, PeerRef

log = logging.getLogger("confer.sfu.distributed")

REQUEST_TIMEOUT = 15.0
ANNOUNCE_EVERY = 0.5  # seconds between a media node's heartbeats
ANNOUNCE_TTL = 2.0  # a node silent this long gets no new meetings
WATCH_EVERY = 0.5  # seconds between checks that the owners this node forwards to are alive


def request_topic(node: str) -> str:
    return f"media:{node}"


def reply_topic(node: str) -> str:
    return f"media-reply:{node}"


class Moved(Exception):
    """The node asked is not (or no longer) the meeting's owner."""

    def __init__(self, owner: str) -> None:
        super().__init__(owner)
        self.owner = owner


def error_body(exc: AppError) -> dict[str, Any]:
    return {"status": exc.status, "message": exc.message, "type": exc.type, "code": exc.code}


def error_from(body: dict[str, Any]) -> AppError:
    status = int(body.get("status", 500))
    if status == 400:
        return ValidationFailed(str(body.get("message")))
    exc = AppError(str(body.get("message")), status=status, code=body.get("code"))
    exc.type = str(body.get("type") or "ServiceUnavailable")
    return exc


class DistributedPlane:
    """Implements `confer.signaling.media.MediaPlane` over the nodes sharing a Redis."""

    def __init__(
        self,
        bus: EventBus,
        placement: Placement,
        local: Any | None,
        *,
        capacity: int,
        wants_captions: Callable[[int], bool],
    ) -> None:
        self.bus = bus
        self.placement = placement
        self.local: Any | None = local  # this node's SfuPlane, or None (no SFU here)
        self.capacity = capacity
        self.wants_captions = wants_captions
        # Readable in logs and Redis: which host and process a meeting's media lives on.
        self.node = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.sink: MediaSink | None = None
        self.owners: dict[int, str] = {}  # meeting -> owner, for meetings with peers here
        self.peers: dict[int, dict[tuple[int, str], PeerRef]] = {}
        self.allowed: dict[int, dict[tuple[int, str], bool]] = {}
        self.owned: set[int] = set()  # meetings this node's SFU serves
        self._pending: dict[int, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self._ids = itertools.count(1)
        self._unsubscribe: list[Callable[[], Awaitable[None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._watching = asyncio.Lock()
        self._silent: dict[str, int] = {}  # owner -> readings in a row without a subscriber

    # -- lifecycle

    async def start(self) -> None:
        self._unsubscribe.append(await self.bus.subscribe(reply_topic(self.node), self._on_reply))
        if self.local is not None:
            self._unsubscribe.append(
                await self.bus.subscribe(request_topic(self.node), self._on_request)
            )
            await self._announce()
            self._tasks.append(asyncio.create_task(every(ANNOUNCE_EVERY, self._announce, log)))
        self._tasks.append(asyncio.create_task(every(WATCH_EVERY, self.watch, log)))

    async def close(self) -> None:
        await cancel(self._tasks)
        if self.local is not None:
            with contextlib.suppress(Exception):
                await self.placement.withdraw(self.node)
        for unsubscribe in self._unsubscribe:
            with contextlib.suppress(Exception):
                await unsubscribe()
        self._fail_pending(lambda _node: True, "The media plane is shutting down")
        if self.local is not None:
            await self.local.close()
        await self.placement.close()

    async def _announce(self) -> None:
        """Heartbeat; also renews this node's meetings and gives up any another node now holds
        (re-placed while this one looked dead: a stall, a Redis blip), so none stays split."""
        assert self.local is not None
        load = sum(len(p) for p in self.local.peers.values())
        await self.placement.announce(self.node, load, self.capacity)
        for meeting_id in await self.placement.keep(self.node, sorted(self.owned)):
            if meeting_id not in self.owned:  # a heartbeat running alongside took care of it
                continue
            log.warning("meeting %s moved to another media node; resetting its peers", meeting_id)
            self.owned.discard(meeting_id)
            for peer in list(self.local.peers.get(meeting_id, {}).values()):
                if self.sink is not None:
                    with contextlib.suppress(Exception):
                        await self.sink.send(peer, messages.MEDIA_RESET, {"reason": "node_lost"})
            await self.local.meeting_ended(meeting_id)

    # -- MediaPlane

    def attach(self, sink: MediaSink) -> None:
        self.sink = sink
        if self.local is not None:
            self.local.attach(sink)

    async def handle(
        self, peer: PeerRef, msg_type: int, payload: dict[str, Any], *, can_publish: bool
    ) -> None:
        if msg_type not in messages.CLIENT_TYPES:
            raise ValidationFailed(f"Message type {msg_type} is not for the media server")
        if not isinstance(payload, dict):
            raise ValidationFailed("payload must be an object")
        self.peers.setdefault(peer.meeting_id, {})[(peer.user_id, peer.peer_id)] = peer
        request = {
            "op": "handle",
            "peer": asdict(peer),
            "type": msg_type,
            "payload": payload,
            "can_publish": can_publish,
            "captions": self.wants_captions(peer.meeting_id),
        }
        await self._call(peer.meeting_id, request, place=True)

    async def peer_left(self, peer: PeerRef) -> None:
        peers = self.peers.get(peer.meeting_id, {})
        peers.pop((peer.user_id, peer.peer_id), None)
        await self._call(peer.meeting_id, {"op": "peer_left", "peer": asdict(peer)})
        if not peers:
            self._forget(peer.meeting_id)

    async def peer_moved(self, peer: PeerRef) -> None:
        """See `MediaPlane.peer_moved`: its transport, wherever it lives, is dropped."""
        with contextlib.suppress(AppError):
            await self._call(peer.meeting_id, {"op": "peer_left", "peer": asdict(peer)})
        self.peers.setdefault(peer.meeting_id, {})[(peer.user_id, peer.peer_id)] = peer
        if self.sink is not None:
            await self.sink.send(peer, messages.MEDIA_RESET, {"reason": "node_lost"})

    async def set_publish_allowed(
        self, meeting_id: int, user_id: int, media_type: str, allowed: bool
    ) -> None:
        messages.check_media_type(media_type)
        self.allowed.setdefault(meeting_id, {})[(user_id, media_type)] = allowed
        await self._call(meeting_id, allowed_request(meeting_id, user_id, media_type, allowed))

    async def settings_changed(self, meeting_id: int) -> None:
        request = {
            "op": "settings",
            "meeting_id": meeting_id,
            "captions": self.wants_captions(meeting_id),
        }
        await self._call(meeting_id, request)

    async def meeting_ended(self, meeting_id: int) -> None:
        await self._call(meeting_id, {"op": "ended", "meeting_id": meeting_id})
        self._forget(meeting_id)

    # -- inspection (bench, tests)

    async def stats(self) -> list[dict[str, Any]]:
        return await self.local.stats() if self.local is not None else []

    # -- the requesting side

    def _forget(self, meeting_id: int) -> None:
        self.owners.pop(meeting_id, None)
        self.peers.pop(meeting_id, None)
        self.allowed.pop(meeting_id, None)

    async def _owner(self, meeting_id: int, *, instead_of: str = "") -> str:
        node = await self.placement.place(meeting_id, instead_of=instead_of)
        if node is None:
            raise Unavailable("No media server has room for this meeting; try again shortly")
        self.owners[meeting_id] = node
        # What the host decided holds on the new owner before any media reaches it.
        for (user_id, media_type), allowed in list(self.allowed.get(meeting_id, {}).items()):
            with contextlib.suppress(Exception):  # the next mute is sent again anyway
                await self._send(node, allowed_request(meeting_id, user_id, media_type, allowed))
        return node

    async def _call(self, meeting_id: int, request: dict[str, Any], *, place: bool = False) -> None:
        """Run `request` on the meeting's owner. Only `handle` places an unplaced meeting; the
        other calls concern media that does not exist until then (a node that forwarded
        nothing for the meeting yet looks its owner up)."""
        for _ in range(3):
            owner = self.owners.get(meeting_id)
            if owner is None and not place:
                owner = await self.placement.owner(meeting_id)
                if owner is None:
                    return
            elif owner is None:
                owner = await self._owner(meeting_id)
            try:
                await self._send(owner, request)
                return
            except Moved as moved:
                self.owners[meeting_id] = moved.owner
        raise Unavailable("The media server for this meeting keeps moving; try again shortly")

    async def _send(self, owner: str, request: dict[str, Any]) -> dict[str, Any]:
        if owner == self.node:
            reply = await self._serve(request)
        else:
            rid = next(self._ids)
            fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._pending[rid] = (owner, fut)
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):  # a stalled Redis included
                    await self.bus.publish(
                        request_topic(owner), {**request, "rid": rid, "from": self.node}
                    )
                    reply = await fut
            except TimeoutError as exc:
                raise Unavailable("The media server did not answer") from exc
            except Exception as exc:  # the bus itself (Redis unreachable)
                log.warning("media request to %s not sent: %s", owner, exc)
                raise Unavailable("The media server cannot be reached; try again") from exc
            finally:
                self._pending.pop(rid, None)
        if "moved" in reply:
            raise Moved(str(reply["moved"]))
        if "error" in reply:
            raise error_from(reply["error"])
        return reply

    async def _on_reply(self, body: dict[str, Any]) -> None:
        entry = self._pending.get(body.get("rid", -1))
        if entry is not None and not entry[1].done():
            entry[1].set_result(body)

    # -- the owning side

    async def _on_request(self, body: dict[str, Any]) -> None:
        # The bus delivers in order from one reader: never wait for the SFU here.
        spawn(self._answer(body))

    async def _answer(self, body: dict[str, Any]) -> None:
        try:
            reply = await self._serve(body)
        except Exception:  # the caller must hear back, not wait out its time-out
            log.exception("media request %s failed", body.get("op"))
            reply = {"error": error_body(Unavailable("The media server failed; try again"))}
        reply["rid"] = body.get("rid")
        with contextlib.suppress(Exception):
            await self.bus.publish(reply_topic(str(body.get("from"))), reply)

    async def _serve(self, request: dict[str, Any]) -> dict[str, Any]:
        local = self.local
        if local is None:
            return {"error": error_body(Unavailable("No media server runs on this node"))}
        try:
            op = request.get("op")
            meeting_id = int(
                request["peer"]["meeting_id"] if "peer" in request else request["meeting_id"]
            )
            if meeting_id not in self.owned:
                # Only the owner acts on a meeting; a peer's first offer claims an unowned one.
                if op == "handle":
                    owner = await self.placement.claim(meeting_id, self.node)
                else:
                    owner = await self.placement.owner(meeting_id) or self.node
                if owner != self.node:
                    return {"moved": owner}
                if op == "handle":
                    self.owned.add(meeting_id)
            if op == "handle":
                peer = PeerRef(**request["peer"])
                self._captions(peer.meeting_id, request)
                await local.handle(
                    peer,
                    int(request["type"]),
                    request["payload"],
                    can_publish=bool(request["can_publish"]),
                )
            elif op == "peer_left":
                peer = PeerRef(**request["peer"])
                await local.peer_left(peer)
                await self._release_if_empty(peer.meeting_id)
            elif op == "allowed":
                await local.set_publish_allowed(
                    int(request["meeting_id"]),
                    int(request["user_id"]),
                    str(request["media_type"]),
                    bool(request["allowed"]),
                )
            elif op == "settings":
                self._captions(int(request["meeting_id"]), request)
                await local.settings_changed(int(request["meeting_id"]))
            elif op == "ended":
                await local.meeting_ended(int(request["meeting_id"]))
                await self._release_if_empty(int(request["meeting_id"]))
            else:
                raise ValidationFailed(f"unknown media request {op!r}")
        except AppError as exc:
            return {"error": error_body(exc)}
        except (KeyError, TypeError, ValueError) as exc:
            return {"error": error_body(ValidationFailed(f"malformed media request: {exc}"))}
        return {}

    def _captions(self, meeting_id: int, request: dict[str, Any]) -> None:
        """The requester's room knows the meeting's AI setting; ours may hold no socket."""
        relay = getattr(self.local, "captions", None)
        if relay is not None:
            relay.remote[meeting_id] = bool(request.get("captions"))

    async def _release_if_empty(self, meeting_id: int) -> None:
        assert self.local is not None
        if not self.local.peers.get(meeting_id) and meeting_id in self.owned:
            self.owned.discard(meeting_id)
            relay = getattr(self.local, "captions", None)
            if relay is not None:
                relay.remote.pop(meeting_id, None)
            await self.placement.release(meeting_id, self.node)

    # -- owners that die

    async def watch(self) -> None:
        """Re-place the meetings whose owner stopped listening on the bus. Two readings in a
        row (WATCH_EVERY apart) make it dead: a subscription that reconnects is gone for an
        instant."""
        async with self._watching:
            remote = {o for o in self.owners.values() if o != self.node}
            if not remote:
                self._silent.clear()
                return
            listening = await self.placement.listening([bus_channel(o) for o in remote])
            for owner in remote:
                if listening.get(bus_channel(owner), 0) > 0:
                    self._silent.pop(owner, None)
                    continue
                self._silent[owner] = self._silent.get(owner, 0) + 1
                if self._silent[owner] >= 2:
                    del self._silent[owner]
                    await self._owner_died(owner)
            for gone in set(self._silent) - remote:
                del self._silent[gone]

    def _fail_pending(self, which: Callable[[str], bool], why: str) -> None:
        for rid, (node, fut) in list(self._pending.items()):
            if which(node) and not fut.done():
                fut.set_result({"error": error_body(Unavailable(why))})
                self._pending.pop(rid, None)

    async def _owner_died(self, owner: str) -> None:
        log.warning("media node %s is gone; moving its meetings", owner)
        await self.placement.withdraw(owner)
        self._fail_pending(lambda node: node == owner, "The media server was lost")
        for meeting_id, node in list(self.owners.items()):
            if node != owner:
                continue
            self.owners.pop(meeting_id, None)
            try:
                await self._owner(meeting_id, instead_of=owner)
            except Exception:  # no room anywhere, or Redis away: the next offer tries again
                log.exception("meeting %s has no media server now", meeting_id)
            finally:
                for peer in list(self.peers.get(meeting_id, {}).values()):
                    if self.sink is not None:
                        with contextlib.suppress(Exception):
                            await self.sink.send(
                                peer, messages.MEDIA_RESET, {"reason": "node_lost"}
                            )


def bus_channel(node: str) -> str:
    """The Redis channel behind a node's request topic (see `confer.bus.redis`)."""
    from confer.bus.redis import PREFIX

    return PREFIX + request_topic(node)


def allowed_request(meeting_id: int, user_id: int, media_type: str, allowed: bool) -> dict:
    return {
        "op": "allowed",
        "meeting_id": meeting_id,
        "user_id": user_id,
        "media_type": media_type,
        "allowed": allowed,
    }
