"""A restarted node talks to its peers at once: on real node processes (4 validators, real libp2p), a SIGKILLed
node restarted while the others went on must complete a request–response stream to every peer, and be caught up,
within seconds of its API answering.

The node and its peers (which have been redialling it since it went down) dial each other at the same moment, and
each end held both crossing connections; each used its own pick of the two, streams on the other end's pick
arrived seconds late or not at all, and a status request took 3.8 s, or pings went unanswered until the keepalive
closed everything 5 s later (node/p2p/dedup.py). The figures are printed; the first-stream bound is the 5 s target
(the keepalive-and-redial detour cannot fit inside it), the catch-up bound leaves room for a shared machine
(target 5 s; measured 1.6-3.6 s in 10 of 11 runs and 8.0 s in one at load 4-7, figures in docs/PROTOCOL.md).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from node.cluster.config import generate_network
from tests.harness import http_json, wait_until
from tests.node.test_ledger_crash_restart import TxFlow, height, start_with_env, stop_all

pytestmark = pytest.mark.cluster

FIRST_STREAM_BOUND_S = 5.0
CATCH_UP_BOUND_S = 10.0  # the target is 5 s; the rest is room for a loaded 2-core machine


def test_a_restarted_node_has_a_stream_to_every_peer_and_is_caught_up_within_seconds(tmp_path: Path) -> None:
    template = generate_network(4)
    names = [node.name for node in template.nodes]
    cluster = start_with_env(template, tmp_path / "net", {})
    try:
        chain_id = str(http_json("GET", f"{cluster.records[names[0]].http_url}/status")["chain_id"])
        restarted, others = names[3], names[:3]
        other_ids = {cluster.records[n].peer_id for n in others}
        with TxFlow(cluster, chain_id):
            wait_until(lambda: min(height(cluster, n) for n in names) >= 2, timeout=30, what="height 2 everywhere")
            cluster.kill(restarted)
            left_at = max(height(cluster, n) for n in others)
            wait_until(
                lambda: min(height(cluster, n) for n in others) >= left_at + 10,
                timeout=60,
                what="the others 10 blocks further",
            )
            cluster.spawn(restarted)
            wait_until(lambda: cluster.status_of(restarted) is not None, timeout=60, interval=0.02, what="API up")
            answered = time.monotonic()
            head = max(height(cluster, n) for n in others)
            first_stream: dict[str, float] = {}
            caught_up: float | None = None
            deadline = answered + 30
            while time.monotonic() < deadline and (caught_up is None or len(first_stream) < len(other_ids)):
                status = cluster.status_of(restarted) or {}
                now = time.monotonic() - answered
                for peer in status.get("peer_rtt_ms", {}):
                    first_stream.setdefault(peer, now)
                if caught_up is None and int(status.get("height", -1)) >= head:
                    caught_up = now
                time.sleep(0.02)
        streams = ", ".join(f"{first_stream.get(p, float('nan')):.2f}" for p in sorted(other_ids))
        print(
            f"\nfirst request-response stream to each peer at {streams} s after the API answered; "
            f"caught up (height {head}) at {caught_up} s"
        )
        log = cluster.log_tail(restarted, 60)
        assert set(first_stream) == other_ids, f"a peer never answered a ping:\n{log}"
        assert max(first_stream.values()) <= FIRST_STREAM_BOUND_S, log
        assert caught_up is not None and caught_up <= CATCH_UP_BOUND_S, log
        keepalive_closed = int((cluster.status_of(restarted) or {}).get("keepalive_closed", -1))
        assert keepalive_closed == 0, "the restarted node's keepalive closed a connection on the way"
    finally:
        stop_all(cluster)
