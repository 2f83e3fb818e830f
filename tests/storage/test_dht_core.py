from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.dht.keyspace import KEY_BITS, Contact, common_prefix_length
from storage.dht.lookup import Lookup, LookupKind
from storage.dht.providers import ProviderStore, RepublishSchedule
from storage.dht.routing import RoutingTable


def _contacts(n: int, seed: int = 7) -> list[Contact]:
    rng = random.Random(seed)
    return [Contact(rng.randbytes(32), (f"/ip4/127.0.0.1/tcp/{4000 + i}",)) for i in range(n)]


def _same_bucket(local: Contact, count: int, cpl: int = 0) -> list[Contact]:
    found: list[Contact] = []
    for contact in _contacts(400, seed=11):
        if common_prefix_length(local.key, contact.key) == cpl:
            found.append(contact)
        if len(found) == count:
            break
    return found


def test_full_bucket_returns_oldest_to_ping_and_replaces_it_on_failure() -> None:
    local = Contact(b"local")
    table = RoutingTable(local, k=3)
    peers = _same_bucket(local, 5)
    for t, peer in enumerate(peers[:3]):
        assert table.observe(peer, float(t)) is None
    assert table.observe(peers[3], 10.0) == peers[0]  # ping the least recently seen, do not evict yet
    assert peers[3].peer_id not in table
    assert table.peer_failed(peers[0].peer_id, 11.0) == peers[3]
    assert peers[0].peer_id not in table and peers[3].peer_id in table and len(table) == 3


def test_answered_ping_keeps_old_peer_and_moves_it_to_the_tail() -> None:
    local = Contact(b"local")
    table = RoutingTable(local, k=2)
    a, b, c = _same_bucket(local, 3)
    table.observe(a, 0.0)
    table.observe(b, 1.0)
    assert table.observe(c, 2.0) == a
    table.ping_answered(a.peer_id, 3.0)
    assert table.observe(c, 4.0) == b  # now b is the oldest
    assert c.peer_id not in table


def test_observe_ignores_self() -> None:
    local = Contact(b"me")
    table = RoutingTable(local)
    assert table.observe(Contact(b"me"), 0.0) is None and len(table) == 0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), count=st.integers(1, 30))
def test_closest_matches_brute_force(seed: int, count: int) -> None:
    contacts = _contacts(80, seed)
    table = RoutingTable(contacts[0], k=20)
    for contact in contacts[1:]:
        table.observe(contact, 0.0)
    target = random.Random(seed).getrandbits(KEY_BITS)
    expected = sorted(table.contacts(), key=lambda c: c.key ^ target)[:count]
    assert table.closest(target, count) == expected


def test_refresh_targets_land_in_their_bucket_and_stale_buckets_are_reported() -> None:
    local = Contact(b"local")
    table = RoutingTable(local)
    rng = random.Random(3)
    for index in (0, 1, 17, 200, 255):
        assert common_prefix_length(local.key, table.random_key_in_bucket(index, rng)) == index
    table.observe(_same_bucket(local, 1)[0], 0.0)
    assert table.stale_buckets(now=100.0, interval=50.0) == [0]
    assert table.stale_buckets(now=10.0, interval=50.0) == []


def _network(n: int) -> dict[bytes, RoutingTable]:
    contacts = _contacts(n, seed=5)
    tables = {c.peer_id: RoutingTable(c, k=8) for c in contacts}
    rng = random.Random(1)
    for table in tables.values():
        for contact in rng.sample(contacts, 40):
            table.observe(contact, 0.0)
    return tables


def _drive(lookup: Lookup, tables: dict[bytes, RoutingTable], dead: set[bytes], holders: set[bytes]) -> int:
    now = 0.0
    while not lookup.finished:
        batch = lookup.next_queries(now)
        if not batch and lookup.in_flight == 0:
            break
        now += 1.0
        for peer in batch:
            if peer.peer_id in dead:
                lookup.on_failure(peer.peer_id, now)
                continue
            providers = [Contact(b"provider")] * 2 if peer.peer_id in holders else []
            lookup.on_response(peer.peer_id, tables[peer.peer_id].closest(lookup.target, 8), providers, now)
    return int(now)


def test_find_node_converges_on_the_true_closest_peers() -> None:
    tables = _network(150)
    origin = next(iter(tables.values()))
    target = random.Random(9).getrandbits(KEY_BITS)
    lookup = Lookup(target, origin.closest(target, 8), local_id=origin.local.peer_id, k=8)
    _drive(lookup, tables, set(), set())
    everyone = sorted((t.local for t in tables.values() if t is not origin), key=lambda c: c.key ^ target)
    assert lookup.closest(3) == everyone[:3]
    assert lookup.in_flight == 0 and lookup.queries_sent >= 3


def test_alpha_bounds_in_flight_queries_and_timeouts_fail_them() -> None:
    seeds = _contacts(10)
    lookup = Lookup(0, seeds, alpha=3, timeout=5.0)
    first = lookup.next_queries(0.0)
    assert len(first) == 3 and lookup.next_queries(1.0) == []
    assert lookup.expire(4.0) == []
    assert sorted(c.peer_id for c in lookup.expire(5.0)) == sorted(c.peer_id for c in first)
    assert lookup.failures == 3 and len(lookup.next_queries(5.0)) == 3


def test_unsolicited_responses_are_ignored() -> None:
    seeds = _contacts(4)
    lookup = Lookup(0, seeds)
    lookup.on_response(b"stranger", _contacts(3, seed=99))
    lookup.on_response(seeds[0].peer_id, _contacts(3, seed=99))  # not queried yet
    assert lookup.closest() == [] and lookup.queries_sent == 0


def test_get_providers_stops_early_and_deduplicates() -> None:
    tables = _network(150)
    origin = next(iter(tables.values()))
    target = random.Random(2).getrandbits(KEY_BITS)
    holders = {c.peer_id for c in origin.closest(target, 20)}
    lookup = Lookup(target, origin.closest(target, 8), kind=LookupKind.GET_PROVIDERS, want_providers=1, k=8)
    _drive(lookup, tables, set(), holders)
    assert lookup.finished and lookup.providers == [Contact(b"provider")]


def test_lookup_survives_dead_peers() -> None:
    tables = _network(150)
    origin = next(iter(tables.values()))
    target = random.Random(4).getrandbits(KEY_BITS)
    dead = {p for i, p in enumerate(tables) if i % 3 == 1}
    lookup = Lookup(target, origin.closest(target, 8), local_id=origin.local.peer_id, k=8)
    _drive(lookup, tables, dead, set())
    live = sorted(
        (t.local for p, t in tables.items() if p not in dead and t is not origin), key=lambda c: c.key ^ target
    )
    assert lookup.closest(1) == live[:1] and lookup.failures > 0


def test_provider_store_dedups_refreshes_and_expires() -> None:
    store = ProviderStore(ttl=100.0, max_per_key=2)
    a, b, c = _contacts(3)
    store.add(b"k", a, 0.0)
    store.add(b"k", a, 50.0)
    store.add(b"k", b, 10.0)
    assert store.get(b"k", 60.0) == [b, a]
    assert store.get(b"k", 120.0) == [a]  # b expired at 110, a was refreshed to 150
    store.add(b"k", c, 60.0)
    assert len(store) == 2 and a not in store.get(b"k", 61.0)  # cap evicts the least recently refreshed
    assert store.expire(1_000.0) == 2 and len(store) == 0


def test_provider_store_key_cap() -> None:
    store = ProviderStore(max_keys=1)
    assert store.add(b"a", Contact(b"p"), 0.0) and not store.add(b"b", Contact(b"p"), 0.0)


def test_republish_schedule() -> None:
    schedule = RepublishSchedule(interval=10.0)
    schedule.provide(b"x", 0.0)
    schedule.provide(b"y", 5.0)
    assert schedule.due(0.0) == [b"x"] and schedule.due(4.0) == []
    assert schedule.due(5.0) == [b"y"] and schedule.next_due() == 10.0
    schedule.stop(b"x")
    assert schedule.due(20.0) == [b"y"] and schedule.keys() == [b"y"]
