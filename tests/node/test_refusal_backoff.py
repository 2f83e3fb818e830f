"""Peers that refuse our protocols are asked again after a growing pause, not every repair tick."""

from __future__ import annotations

import os

import pytest

from node.p2p.bridge import HostConfig, P2PHost, ProtocolRefused, RequestError
from node.p2p.refusal_backoff import RefusalBackoff


def test_refusals_back_off_exponentially_up_to_the_cap() -> None:
    backoff = RefusalBackoff(first_s=2.0, max_s=60.0)
    now, delays = 0.0, []
    for _ in range(8):
        assert backoff.may_ask("light", now)
        delays.append(backoff.refused("light", now))
        assert not backoff.may_ask("light", now + delays[-1] - 0.01)
        now += delays[-1]
    assert delays == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    # Polled as the old repair loop did (every 0.5 s for 5 minutes): ~600 requests then, a handful now.
    backoff, asked, t = RefusalBackoff(), 0, 0.0
    while t < 300.0:
        if backoff.may_ask("light", t):
            asked += 1
            backoff.refused("light", t)
        t += 0.5
    assert asked <= 8


def test_an_answer_or_a_disconnect_forgets_the_refusals() -> None:
    backoff = RefusalBackoff(first_s=2.0)
    backoff.refused("a", 0.0)
    backoff.refused("b", 0.0)
    backoff.answered("a")
    assert backoff.may_ask("a", 0.0) and backoff.refusals("a") == 0
    backoff.keep_only(["a"])  # b disconnected: a new connection may be a node that now serves the protocol
    assert backoff.may_ask("b", 0.0) and backoff.refusals("b") == 0


async def test_a_peer_without_the_protocol_is_a_refusal_not_a_failure() -> None:
    node, light = P2PHost(HostConfig(seed=os.urandom(32))), P2PHost(HostConfig(seed=os.urandom(32)))
    await node.start()
    await light.start()
    try:
        await node.dial(f"{light.listen_addrs[0]}/p2p/{light.peer_id}")
        with pytest.raises(ProtocolRefused):
            await node.request(light.peer_id, "/ehrnet/ledger/1.0.0", b"status", timeout_s=5)
        light.set_request_handler("/ehrnet/ledger/1.0.0", lambda peer, req: _boom())
        with pytest.raises(RequestError) as raised:  # served but failing: not a refusal
            await node.request(light.peer_id, "/ehrnet/ledger/1.0.0", b"status", timeout_s=5)
        assert not isinstance(raised.value, ProtocolRefused)
    finally:
        await node.stop()
        await light.stop()


async def _boom() -> bytes:
    raise RuntimeError("handler fails")
