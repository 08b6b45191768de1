"""Property-based fuzzing: whatever a client sends, a bad message gets an error (13) and the
server stays healthy (the same socket still answers ping with pong)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.signaling.support import Client, meeting
from tests.support.api import Api
from tests.support.servers import ConferServer

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)
# Envelopes with the right field names but any values, mostly of the wrong kind.
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values,
        "type": st.integers(-5, 40) | json_values,
        "from_user_id": json_values,
        "to_user_id": st.integers(-3, 10**6) | json_values,
        "meeting_id": json_values,
        "session_id": json_values,
        "peer_id": json_values,
        "payload": json_values
        | st.dictionaries(
            st.sampled_from(
                [
                    "sdp",
                    "type",
                    "candidate",
                    "sdpMid",
                    "sdpMLineIndex",
                    "content",
                    "action",
                    "media_type",
                    "user_id",
                    "scope",
                ]
            ),
            json_values,
            max_size=5,
        ),
        "timestamp": json_values,
    },
)
raw_frames = st.text(max_size=200) | st.binary(max_size=200)


def is_valid_effect(reply: dict[str, Any]) -> bool:
    return isinstance(reply.get("type"), int) and isinstance(reply.get("payload"), dict)


def test_fuzzed_envelopes_get_errors_and_the_server_stays_up(sig: ConferServer, sapi: Api) -> None:
    m = meeting(sapi, 0)
    loop = asyncio.new_event_loop()  # hypothesis drives a synchronous function
    state: dict[str, Any] = {}
    seen: list[int] = []

    async def client() -> Client:
        c = state.get("c")
        if c is None or c.ws.close_code is not None:  # a fuzzed leave-room closes it
            c = state["c"] = await Client.connect(
                sig, m.host, m.id, "fuzz_peer", query={"session_id": "fuzzer"}
            )
        return c  # type: ignore[no-any-return]

    async def run(env: Any) -> None:
        c = await client()
        await c.send(env[1] if isinstance(env, tuple) else orjson.dumps(env).decode())
        if c.ws.close_code is not None:
            return
        await c.send({"type": 11, "id": "barrier"})
        while True:
            try:
                reply = await c.next()
            except Exception:
                assert c.ws.close_code == 1000, c.ws.close_code  # only leave-room closes
                return
            assert is_valid_effect(reply)
            if reply["type"] == 13:
                assert isinstance(reply["payload"]["code"], int)
                assert reply["payload"]["message"]
                assert reply["payload"]["code"] != 500, reply
                seen.append(reply["payload"]["code"])
            if reply["type"] == 12:
                return

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(env=envelopes | raw_frames.map(lambda x: ("raw", x)))
    def probe(env: Any) -> None:
        loop.run_until_complete(run(env))

    try:
        probe()
        loop.run_until_complete(run({"type": 11}))  # still serving
    finally:
        if "c" in state:
            loop.run_until_complete(state["c"].close())
        loop.close()
    assert 400 in seen
