"""The repair path's value fetch (node/ledger/repair.py): a block the machine lacks is fetched until obtained.

A validator restarted after a crash asked for the block its peers were locked on before its handshakes had
finished (no verified peer yet) and while requests still failed, made one pass over nobody, and never asked again
at that height: a real 4-node cluster then split 2–2 in every round. Here the host's requests fail for a while and
no peer is handshaken yet; the fetch must keep going, ask any connected peer, and deliver the value once, and it
must stop by itself when the height is over. The host and machine are fakes: this is the shell's retry logic
alone (the real cluster run is tests/node/test_ledger_crash_restart.py).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from consensus import actions
from consensus.inputs import ConsensusInput, ReceiveValue
from node.ledger import wire
from node.ledger.repair import LedgerRepair
from node.p2p.bridge import P2PError

VALUE_HASH = b"h" * 32
VALUE = b"the block"


class FlakyHost:
    """Connected to two peers; the first `failures` requests fail, then `liar` (if any) answers with a wrong
    value and every other peer with VALUE."""

    def __init__(self, failures: int, liar: str | None = None) -> None:
        self.failures, self.liar = failures, liar
        self.requests: list[str] = []

    def connected_peers(self) -> list[str]:
        return ["peer-a", "peer-b"]

    async def request(self, peer: str, protocol: str, payload: bytes, **kwargs: Any) -> bytes:
        self.requests.append(peer)
        await asyncio.sleep(0)
        if len(self.requests) <= self.failures:
            raise P2PError("stream reset")
        return wire.encode_value(b"not the block" if peer == self.liar else VALUE)


class HashingApp:
    """Names VALUE by VALUE_HASH and anything else by another hash."""

    def value_hash(self, value: bytes) -> bytes:
        return VALUE_HASH if value == VALUE else b"x" * 32


class FakeMachine:
    def __init__(self, height: int) -> None:
        self.height = height
        self.decision: object = None
        self.delivered: list[bytes] = []

    def value(self, value_hash: bytes) -> bytes | None:
        return self.delivered[0] if self.delivered else None

    def on_value(self, value_hash: bytes, value: bytes, now: float) -> list[actions.Action]:
        assert value_hash == VALUE_HASH
        self.delivered.append(value)
        return []


class Repair(LedgerRepair):
    fetch_retry_first_s = 0.001
    fetch_retry_max_s = 0.004

    def __init__(self, host: FlakyHost, machine: FakeMachine) -> None:
        self.host = cast(Any, host)
        self.machine = cast(Any, machine)
        self.fake_machine = machine
        self.app = cast(Any, HashingApp())
        self.mempool = cast(Any, object())
        self._compact = {}
        self._fetching = set()
        self._verified_peers = set()  # just restarted: no handshake has finished
        self._rejected_peers = set()

    def _submit(self, item: ConsensusInput) -> None:
        assert isinstance(item, ReceiveValue)  # the service would queue it for its driver task; here it runs at once
        self.fake_machine.on_value(item.value_hash, item.value, 0.0)


def test_a_value_is_fetched_again_and_again_from_any_connected_peer_until_it_arrives() -> None:
    host, machine = FlakyHost(failures=7), FakeMachine(height=5)
    asyncio.run(asyncio.wait_for(Repair(host, machine)._fetch_value(5, VALUE_HASH), timeout=10))
    assert machine.delivered == [VALUE]
    assert len(host.requests) == 8 and set(host.requests) == {"peer-a", "peer-b"}


def test_a_wrong_answer_is_not_delivered_and_the_next_peer_is_asked() -> None:
    host, machine = FlakyHost(failures=0, liar="peer-a"), FakeMachine(height=5)
    asyncio.run(asyncio.wait_for(Repair(host, machine)._fetch_value(5, VALUE_HASH), timeout=10))
    assert machine.delivered == [VALUE] and "peer-b" in host.requests


def test_the_fetch_ends_when_the_height_is_over_and_runs_once_per_value() -> None:
    async def scenario() -> tuple[FlakyHost, FakeMachine]:
        host, machine = FlakyHost(failures=10**9), FakeMachine(height=5)
        repair = Repair(host, machine)
        first = asyncio.create_task(repair._fetch_value(5, VALUE_HASH))
        await asyncio.sleep(0.02)
        await repair._fetch_value(5, VALUE_HASH)  # a second request for the same value joins the first
        assert not first.done()
        machine.height = 6  # decided meanwhile (block sync, or the others' precommits)
        await asyncio.wait_for(first, timeout=5)
        return host, machine

    host, machine = asyncio.run(scenario())
    assert machine.delivered == [] and len(host.requests) > 2
