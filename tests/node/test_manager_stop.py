"""The EHRs manager over the `Ledger` protocol (a real chain store behind the test fake): once stopped — before
the ledger closes its chain store and before the host stops delivering requests — it refuses what still arrives
as `unavailable` instead of reaching a closed key store or chain store."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from consensus.chainstore import ChainStore
from node.ehr import wire
from node.ehr.manager import ManagerService
from node.p2p.bridge import P2PHost
from storage.blockstore import Blockstore
from storage.objects import ObjectStore
from tests.consensus.ledger_helpers import Chain, key
from tests.node.store_ledger import StoreLedger


async def test_a_stopped_manager_refuses_requests_as_unavailable(tmp_path: Path) -> None:
    chain = Chain()
    store = ChainStore(tmp_path / "chain", chain.genesis, initial_map_size=1 << 20)
    objects = ObjectStore(Blockstore(tmp_path / "blocks"))
    host = cast(P2PHost, object())  # used only by start(), which this test does not call
    manager = ManagerService(host, key(7), StoreLedger(chain.genesis, store), objects, tmp_path / "keys")
    answer = await manager._serve("peer", b"not a request")
    with pytest.raises(wire.RequestRefused) as running:
        wire.decode_answer(answer)
    assert running.value.code == "malformed"  # running: the request itself is judged
    await manager.stop()
    with pytest.raises(wire.RequestRefused) as stopped:
        wire.decode_answer(await manager._serve("peer", b"not a request"))
    assert stopped.value.code == "unavailable"
    store.close()
