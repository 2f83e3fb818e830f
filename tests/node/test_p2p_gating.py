"""Connection control on real hosts over loopback: blocking peers by peer ID, healing, disconnecting once, and
redialling a peer that came back (fault injection without root relies on all of it)."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator

import pytest

from node.p2p.bridge import DialError, HostConfig, P2PError, P2PHost, RequestError, peer_id_from_seed
from node.p2p.peering import BootstrapPeer, PeeringService
from tests.harness import await_until

ECHO = "/ehrnet/test/echo/1"


async def echo(peer: str, request: bytes) -> bytes:
    return request


@pytest.fixture
async def pair() -> AsyncIterator[tuple[P2PHost, P2PHost]]:
    a, b = P2PHost(HostConfig(seed=os.urandom(32))), P2PHost(HostConfig(seed=os.urandom(32)))
    await a.start()
    await b.start()
    a.set_request_handler(ECHO, echo)
    b.set_request_handler(ECHO, echo)
    try:
        await b.dial(a.listen_addrs[0])
        await await_until(lambda: b.peer_id in a.connected_peers(), timeout_s=5)
        yield a, b
    finally:
        await b.stop()
        await a.stop()


async def stays(predicate: object, seconds: float) -> bool:
    """True if `predicate()` holds throughout `seconds` (for "nothing happens" properties)."""
    assert callable(predicate)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not predicate():
            return False
        await asyncio.sleep(0.05)
    return bool(predicate())


async def test_a_blocked_peer_is_cut_off_both_ways_until_healed(pair: tuple[P2PHost, P2PHost]) -> None:
    a, b = pair
    await a.set_blocked_peers({b.peer_id})
    assert a.blocked_peers == {b.peer_id}
    assert b.peer_id not in a.connected_peers()
    await await_until(lambda: a.peer_id not in b.connected_peers(), timeout_s=5, what="b sees the close")
    # a neither dials b nor opens streams to it (which would dial implicitly) ...
    with pytest.raises(DialError, match="blocked"):
        await a.dial(b.listen_addrs[0])
    with pytest.raises(RequestError, match="blocked"):
        await a.request(b.peer_id, ECHO, b"x", timeout_s=5)
    # ... and refuses b's connections: b's dials get nowhere, and b cannot reach a's protocols.
    for _ in range(3):
        with pytest.raises(P2PError):
            await b.dial(a.listen_addrs[0])
            await b.request(a.peer_id, ECHO, b"x", timeout_s=5)
    assert await stays(lambda: b.peer_id not in a.connected_peers(), 1.0)
    # Healed: connections and streams work again at once.
    await a.set_blocked_peers(set())
    assert a.blocked_peers == frozenset()
    await b.dial(a.listen_addrs[0])
    assert await b.request(a.peer_id, ECHO, b"back") == b"back"
    assert await a.request(b.peer_id, ECHO, b"again") == b"again"


async def test_blocking_needs_well_formed_peer_ids(pair: tuple[P2PHost, P2PHost]) -> None:
    a, b = pair
    with pytest.raises(P2PError, match="bad peer ID"):
        await a.set_blocked_peers({"not-a-peer-id"})
    assert a.blocked_peers == frozenset() and b.peer_id in a.connected_peers()


async def test_disconnect_closes_the_connection_once(pair: tuple[P2PHost, P2PHost]) -> None:
    a, b = pair
    assert await a.disconnect(b.peer_id) is True
    assert b.peer_id not in a.connected_peers()
    await await_until(lambda: a.peer_id not in b.connected_peers(), timeout_s=5, what="b sees the close")
    assert await a.disconnect(b.peer_id) is False
    await b.dial(a.listen_addrs[0])  # nothing was blocked
    assert await b.request(a.peer_id, ECHO, b"x") == b"x"


async def test_a_peer_that_failed_a_dial_is_dialled_again_as_soon_as_it_is_back() -> None:
    # py-libp2p's swarm refused for 60 s to dial a peer whose last dial failed (its negative cache): a restarted
    # peer stayed unreachable for a minute whatever the redial loop did.
    seed = os.urandom(32)
    with socket.socket() as probe:  # a port with nothing listening yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    addr = f"/ip4/127.0.0.1/tcp/{port}/p2p/{peer_id_from_seed(seed)}"
    a, b = P2PHost(HostConfig(seed=os.urandom(32))), P2PHost(HostConfig(seed=seed, listen=f"/ip4/127.0.0.1/tcp/{port}"))
    await a.start()
    try:
        with pytest.raises(DialError):
            await a.dial(addr)  # b is not up yet
        await b.start()
        await a.dial(addr)
        assert b.peer_id in a.connected_peers()
    finally:
        await b.stop()
        await a.stop()


def peering(seed: bytes, others: list[tuple[str, str]]) -> PeeringService:
    bootstrap = [BootstrapPeer(name=peer_id[-6:], peer_id=peer_id, multiaddr=addr) for peer_id, addr in others]
    return PeeringService(HostConfig(seed=seed), bootstrap)


@pytest.fixture
async def two_services() -> AsyncIterator[tuple[PeeringService, PeeringService]]:
    """Two p2p services that list each other as bootstrap peers, running their redial and keepalive loops."""
    first = peering(os.urandom(32), [])
    await first.start()
    second = peering(os.urandom(32), [(first.host.peer_id, first.host.listen_addrs[0])])
    await second.start()
    first.add_bootstrap_peer(BootstrapPeer("second", second.host.peer_id, second.host.listen_addrs[0]))
    runs = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
    try:
        await await_until(
            lambda: second.host.peer_id in first.host.connected_peers(), timeout_s=10, what="services connect"
        )
        yield first, second
    finally:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        await second.stop()
        await first.stop()


async def test_the_redial_loop_skips_blocked_peers_and_reconnects_soon_after_a_heal(
    two_services: tuple[PeeringService, PeeringService],
) -> None:
    first, second = two_services
    one, two = first.host, second.host
    await one.set_blocked_peers({two.peer_id})
    assert await stays(lambda: two.peer_id not in one.connected_peers(), 3.0), "a blocked peer got back in"
    healed = time.monotonic()
    await one.set_blocked_peers(set())
    await await_until(lambda: two.peer_id in one.connected_peers(), timeout_s=10, what="reconnected after heal")
    # Both sides redial; either reconnects the pair. The bound is the redial backoff's cap with its jitter.
    assert time.monotonic() - healed < PeeringService.max_backoff_s * (1 + PeeringService.jitter) + 2.0


async def test_a_disconnected_bootstrap_peer_is_redialled(two_services: tuple[PeeringService, PeeringService]) -> None:
    first, second = two_services
    assert await first.host.disconnect(second.host.peer_id)
    await await_until(
        lambda: second.host.peer_id in first.host.connected_peers(), timeout_s=5, what="the redial loop reconnects"
    )


async def test_a_dial_hanging_on_a_silent_peer_does_not_hold_back_the_others() -> None:
    # The redial loop used to dial all due peers together and wait for every dial: one peer that accepts TCP but
    # never answers (a paused process) held every other redial back for the whole dial timeout.
    held: list[asyncio.StreamWriter] = []  # kept open, never answered: what a paused process looks like
    silent = await asyncio.start_server(lambda reader, writer: held.append(writer), "127.0.0.1", 0)
    silent_port = silent.sockets[0].getsockname()[1]
    silent_id = peer_id_from_seed(os.urandom(32))
    late_seed = os.urandom(32)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        late_port = probe.getsockname()[1]
    service = peering(
        os.urandom(32),
        [
            (silent_id, f"/ip4/127.0.0.1/tcp/{silent_port}/p2p/{silent_id}"),
            (peer_id_from_seed(late_seed), f"/ip4/127.0.0.1/tcp/{late_port}/p2p/{peer_id_from_seed(late_seed)}"),
        ],
    )
    await service.start()
    running = asyncio.create_task(service.run())
    late = P2PHost(HostConfig(seed=late_seed, listen=f"/ip4/127.0.0.1/tcp/{late_port}"))
    try:
        await await_until(lambda: service.dial_failures >= 1, timeout_s=5, what="a first failed dial to the late peer")
        await late.start()
        up_at = time.monotonic()
        await await_until(
            lambda: late.peer_id in service.host.connected_peers(), timeout_s=15, what="late peer dialled"
        )
        assert time.monotonic() - up_at < HostConfig(seed=bytes(32)).dial_timeout_s - 1.0
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await late.stop()
        await service.stop()
        for writer in held:
            writer.close()
        silent.close()
