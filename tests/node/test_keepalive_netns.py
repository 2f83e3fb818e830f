"""A link cut without a FIN: two p2p services in network namespaces of their own, joined by a veth pair whose
ends are taken down. Neither side gets a FIN or a reset; each must notice within the keepalive's bound, and they
must reconnect within seconds once the link is back.

Needs root and iproute2 (skipped otherwise, with the reason). The namespaces have no route anywhere but to each
other, so nothing leaves the machine; they are deleted (with the veth pair) whatever happens.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from node.cluster.peer_process import NamespaceUnavailable, PeerProcess, Side, linked_namespaces
from node.p2p.keepalive import KeepaliveSettings
from node.p2p.peering import PeeringService
from tests.harness import wait_until

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None, reason="network namespaces need root and iproute2 (`ip`)"
    ),
]

SLACK_S = 2.0  # scheduling on a shared 2-core machine, and the 50 ms reporting period of the peer processes


@contextmanager
def namespaces_or_skip() -> Iterator[tuple[Side, Side]]:
    try:
        with linked_namespaces() as sides:
            yield sides
    except NamespaceUnavailable as exc:
        pytest.skip(str(exc))


def test_a_link_cut_without_a_fin_is_noticed_within_the_keepalive_bound_and_healed_in_seconds() -> None:
    with namespaces_or_skip() as (a, b):
        first, second = PeerProcess(a, b), PeerProcess(b, a)
        try:
            wait_until(
                lambda: first.peers() == [b.peer_id] and second.peers() == [a.peer_id],
                timeout=60,
                what="the two namespaces' peers connect",
            )
            cut_at = time.monotonic()
            a.link("down")
            b.link("down")
            wait_until(
                lambda: not first.peers() and not second.peers(), timeout=30, interval=0.1, what="the cut is noticed"
            )
            noticed_s = max(first.last_change_at(), second.last_change_at()) - cut_at
            healed_at = time.monotonic()
            a.link("up")
            b.link("up")
            wait_until(
                lambda: first.peers() == [b.peer_id] and second.peers() == [a.peer_id],
                timeout=30,
                interval=0.1,
                what="reconnected after the heal",
            )
            reconnected_s = max(first.last_change_at(), second.last_change_at()) - healed_at
        finally:
            first.stop()
            second.stop()
        print(f"link cut noticed after {noticed_s:.2f} s (both sides); reconnected {reconnected_s:.2f} s after heal")
        assert noticed_s <= KeepaliveSettings().detection_bound_s + SLACK_S
        assert reconnected_s <= PeeringService.max_backoff_s * (1 + PeeringService.jitter) + SLACK_S
