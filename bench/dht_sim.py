"""Kademlia lookups on 1,000 and 10,000 simulated nodes, using the real routing table and lookup code.

Set-up: N peers with random IDs; each routing table is filled as a converged network's would be (for every
bucket, up to k peers drawn at random from the peers that belong in it) through `RoutingTable.observe`.
Each trial publishes a provider record the way a node does (a FIND_NODE lookup from the provider, then the
record on the k closest peers that answered), then kills a fraction of the peers (churn: their routing-table
entries stay, so queries to them fail), then runs GET_PROVIDERS from a random live peer.

Time advances in rounds of one round-trip: a live peer answers in the next round, a dead one is noticed after
`--timeout-rounds` rounds (1 = the dial is refused at once, as on a LAN; larger = a silent timeout).
Reported per lookup: rounds until the first provider was found and until the lookup terminated, queries sent,
and the success rate (a live peer holding the record was reached).

    .venv/bin/python -m bench.dht_sim [--nodes 1000 10000] [--lookups 300] [--churn 0 0.1 0.3]
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import random
import statistics
import time
from dataclasses import dataclass

from storage.dht.keyspace import KEY_BITS, Contact, key_of
from storage.dht.lookup import Lookup, LookupKind
from storage.dht.providers import ProviderStore
from storage.dht.routing import K, RoutingTable


@dataclass
class SimNode:
    contact: Contact
    table: RoutingTable
    providers: ProviderStore
    alive: bool = True


def build_network(n: int, rng: random.Random, k: int = K) -> list[SimNode]:
    contacts = [Contact(rng.randbytes(32)) for _ in range(n)]
    contacts.sort(key=lambda c: c.key)
    keys = [c.key for c in contacts]
    nodes = []
    for contact in contacts:
        table = RoutingTable(contact, k)
        for cpl in range(KEY_BITS):
            shift = KEY_BITS - cpl
            own = (contact.key >> shift) << shift if cpl else 0
            if bisect.bisect_left(keys, own + (1 << shift)) - bisect.bisect_left(keys, own) == 1:
                break  # nobody else shares our first `cpl` bits: deeper buckets are empty
            # Peers sharing exactly `cpl` leading bits: our first cpl bits, then the opposite bit.
            prefix = own | ((contact.key & (1 << (shift - 1))) ^ (1 << (shift - 1)))
            lo = bisect.bisect_left(keys, prefix)
            hi = bisect.bisect_left(keys, prefix + (1 << (shift - 1)))
            for index in rng.sample(range(lo, hi), min(k, hi - lo)):
                table.observe(contacts[index], 0.0)
        nodes.append(SimNode(contact, table, ProviderStore()))
    return nodes


@dataclass
class Outcome:
    found_round: int | None
    end_round: int
    queries: int
    reached_holder: bool
    find_node_rounds: int = 0
    found_closest: bool = False


def run_lookup(
    by_id: dict[bytes, SimNode],
    origin: SimNode,
    target: int,
    record_key: bytes,
    kind: LookupKind,
    timeout_rounds: int,
) -> tuple[Lookup, Outcome]:
    seeds = origin.table.closest(target, K)
    lookup = Lookup(target, seeds, kind=kind, local_id=origin.contact.peer_id, want_providers=1)
    events: list[tuple[int, int, bytes]] = []  # (round, sequence, peer_id)
    sequence = 0
    now = 0
    found_round: int | None = None
    while True:
        for peer in lookup.next_queries(float(now)):
            delay = 1 if by_id[peer.peer_id].alive else timeout_rounds
            heapq.heappush(events, (now + delay, sequence, peer.peer_id))
            sequence += 1
        if lookup.finished or not events:
            break
        now = events[0][0]
        while events and events[0][0] == now:
            _, _, peer_id = heapq.heappop(events)
            node = by_id[peer_id]
            if not node.alive:
                lookup.on_failure(peer_id, float(now))
                continue
            providers = node.providers.get(record_key, 0.0) if kind is LookupKind.GET_PROVIDERS else []
            lookup.on_response(peer_id, node.table.closest(target, K), providers, float(now))
            if providers and found_round is None:
                found_round = now
    return lookup, Outcome(found_round, now, lookup.queries_sent, found_round is not None)


def trial(nodes: list[SimNode], by_id: dict[bytes, SimNode], churn: float, rng: random.Random, timeout: int) -> Outcome:
    for node in nodes:
        node.alive = True
    record_key = rng.randbytes(34)
    target = key_of(record_key)
    provider = rng.choice(nodes)
    publish, _ = run_lookup(by_id, provider, target, record_key, LookupKind.FIND_NODE, timeout)
    for holder in publish.closest(K):
        by_id[holder.peer_id].providers.add(record_key, provider.contact, 0.0)
    origin = rng.choice(nodes)
    for node in rng.sample(nodes, int(churn * len(nodes))):
        node.alive = node is origin
    _, outcome = run_lookup(by_id, origin, target, record_key, LookupKind.GET_PROVIDERS, timeout)
    # The same network, a FIND_NODE: does it end holding the live peer truly closest to the target?
    find, find_outcome = run_lookup(by_id, origin, target, record_key, LookupKind.FIND_NODE, timeout)
    nearest = min((node for node in nodes if node.alive), key=lambda node: node.contact.key ^ target)
    outcome.find_node_rounds = find_outcome.end_round
    outcome.found_closest = nearest.contact in find.closest(K) or nearest is origin
    for holder in publish.closest(K):
        by_id[holder.peer_id].providers.expire(float("inf"))
    return outcome


def percentile(values: list[int], fraction: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--churn", type=float, nargs="+", default=[0.0, 0.1, 0.3])
    parser.add_argument("--timeout-rounds", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(
        "nodes  churn  timeout | GET_PROVIDERS: success  rounds med/p95  queries med/p95 "
        "| FIND_NODE: found-closest  rounds med/p95"
    )
    for n in args.nodes:
        rng = random.Random(args.seed)
        started = time.perf_counter()
        nodes = build_network(n, rng)
        by_id = {node.contact.peer_id: node for node in nodes}
        built = time.perf_counter() - started
        mean_table = statistics.mean(len(node.table) for node in nodes)
        print(f"# N={n}: routing tables built in {built:.1f} s, {mean_table:.0f} entries on average")
        for timeout in args.timeout_rounds:
            for churn in args.churn:
                outcomes = [trial(nodes, by_id, churn, rng, timeout) for _ in range(args.lookups)]
                hits = [o for o in outcomes if o.reached_holder]
                found = [o.found_round for o in hits if o.found_round is not None] or [0]
                queries = [o.queries for o in outcomes]
                find_rounds = [o.find_node_rounds for o in outcomes]
                closest = sum(o.found_closest for o in outcomes) / len(outcomes)
                print(
                    f"{n:>5}  {churn:>5.0%}  {timeout:>7} | {len(hits) / len(outcomes):>21.1%}  "
                    f"{percentile(found, 0.5):>7}/{percentile(found, 0.95):<5}  "
                    f"{percentile(queries, 0.5):>8}/{percentile(queries, 0.95):<5}  "
                    f"| {closest:>23.1%}  {percentile(find_rounds, 0.5):>7}/{percentile(find_rounds, 0.95)}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
