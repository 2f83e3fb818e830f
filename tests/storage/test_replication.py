from __future__ import annotations

import pytest

from storage.address import CID, RAW
from storage.dht.keyspace import Contact
from storage.placement import closest_peers, plan_replication

CID_X = CID.of(RAW, b"x-ray")
PEERS = [Contact(f"peer-{i}".encode()) for i in range(8)]


def test_closest_peers_is_stable_and_sorted() -> None:
    ranked = closest_peers(CID_X, PEERS, 8)
    assert sorted(ranked, key=lambda p: p.peer_id) == sorted(PEERS, key=lambda p: p.peer_id)
    assert closest_peers(CID_X, reversed(PEERS), 3) == ranked[:3]


def test_fresh_object_goes_to_the_r_closest() -> None:
    plan = plan_replication(CID_X, 2, holders=[], live_peers=PEERS)
    assert list(plan.must_take) == closest_peers(CID_X, PEERS, 2) and not plan.healthy


def test_a_holder_leaving_triggers_one_new_copy_on_the_next_closest() -> None:
    first, second, third = closest_peers(CID_X, PEERS, 3)
    live = [p for p in PEERS if p != first]
    plan = plan_replication(CID_X, 2, holders=[first.peer_id, second.peer_id], live_peers=live)
    assert plan.must_take == (third,) and plan.live_holders == 1


def test_healthy_object_is_left_alone_even_if_a_closer_peer_joins() -> None:
    ranked = closest_peers(CID_X, PEERS, 8)
    holders = [ranked[3].peer_id, ranked[5].peer_id]
    plan = plan_replication(CID_X, 2, holders=holders, live_peers=PEERS)
    assert plan.healthy and plan.surplus == ()
    over = plan_replication(CID_X, 1, holders=holders, live_peers=PEERS)
    assert over.surplus == (ranked[5],)


def test_fewer_peers_than_r_and_bad_factor() -> None:
    plan = plan_replication(CID_X, 5, holders=[PEERS[0].peer_id], live_peers=PEERS[:2])
    assert plan.must_take == (PEERS[1],)
    with pytest.raises(ValueError):
        plan_replication(CID_X, 0, holders=[], live_peers=PEERS)
