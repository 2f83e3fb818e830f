"""When block sync runs and from whom (node/ledger/sync/trigger.py): pure decisions, a fake clock.

The rule: sync as soon as a peer shows it is ahead (its status, or a message it originates for a later height),
from that peer; otherwise nothing, except a slow fallback of one peer's status at a time after a long stall.
The timer it replaces asked every peer whenever a round took over 0.5 s — O(N²) streams on a 16-node network.
"""

from __future__ import annotations

from node.ledger.sync.trigger import SyncTrigger

PEERS = ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10", "p11", "p12", "p13", "p14", "p15"]


def test_no_peer_ahead_means_no_sync_and_a_message_for_a_later_height_names_its_sender() -> None:
    trigger = SyncTrigger()
    assert trigger.source(10, PEERS, now=0.0) is None
    # A vote for height 11 is the next height's work: the sender holds nothing we lack.
    assert trigger.saw_message("p3", 11)
    assert trigger.source(10, PEERS, now=0.0) is None
    # A vote for height 13: the sender has finalised 12, two blocks we lack.
    assert trigger.saw_message("p3", 13)
    assert trigger.source(10, PEERS, now=0.0) == "p3"
    assert not trigger.saw_message("p3", 13), "the same height again is no news"


def test_the_peer_that_showed_the_most_is_asked_first_and_only_connected_peers_count() -> None:
    trigger = SyncTrigger()
    trigger.saw_final("p1", 20)
    trigger.saw_final("p2", 50)
    assert trigger.source(10, PEERS, now=0.0) == "p2"
    assert trigger.source(10, ["p1", "p3"], now=0.0) == "p1"
    trigger.keep_only(["p1"])
    assert trigger.source(10, PEERS, now=0.0) == "p1", "what a disconnected peer showed is forgotten"


def test_a_peer_that_served_nothing_is_benched_with_a_doubling_pause_until_it_shows_again() -> None:
    trigger = SyncTrigger(retry_after_s=0.5, retry_max_s=2.0)
    peers = [*PEERS, "liar"]
    trigger.saw_final("liar", 100)
    assert trigger.source(10, peers, now=0.0) == "liar"
    trigger.synced("liar", started=10, reached=10, now=0.0)  # no block came
    assert trigger.source(10, peers, now=0.1) is None, "its claim is forgotten"
    trigger.saw_final("liar", 100)  # it says so again at once
    assert trigger.source(10, peers, now=0.4) is None, "benched"
    assert trigger.source(10, peers, now=0.5) == "liar"
    trigger.synced("liar", started=10, reached=10, now=0.5)
    trigger.saw_final("liar", 100)
    assert trigger.source(10, peers, now=1.4) is None, "the pause doubled to 1 s"
    assert trigger.source(10, peers, now=1.5) == "liar"
    for now in (1.5, 3.5, 5.5):
        trigger.synced("liar", started=10, reached=10, now=now)
        trigger.saw_final("liar", 100)
    assert trigger.source(10, peers, now=7.4) is None
    assert trigger.source(10, peers, now=7.5) == "liar", "the pause stops growing at retry_max_s"
    # An honest peer is not held back by the liar's bench.
    trigger.saw_final("p1", 30)
    assert trigger.source(10, peers, now=6.0) == "p1"


def test_progress_clears_a_peer_even_short_of_its_claim() -> None:
    trigger = SyncTrigger()
    trigger.saw_final("p1", 100)
    trigger.synced("p1", started=10, reached=74, now=0.0)  # one batch came, the connection dropped
    assert trigger.source(74, PEERS, now=0.0) == "p1", "still ahead, not benched: sync again"
    trigger.synced("p1", started=74, reached=100, now=0.1)
    assert trigger.source(100, PEERS, now=0.1) is None


def test_the_fallback_waits_for_a_long_stall_then_asks_one_peer_at_a_time_in_turn() -> None:
    trigger = SyncTrigger(fallback_after_s=3.0, fallback_every_s=1.0)
    now = 100.0
    asked: list[str] = []
    # A round that takes 2.9 s (slow on a loaded machine, 16 validators) asks nobody.
    for step in range(30):
        assert trigger.probe(stalled_s=step * 0.1, connected=PEERS, now=now + step * 0.1) is None
    # A long stall: one peer per second, each connected peer in turn — 15 peers over 15 s, not 15 every 0.5 s.
    for step in range(150):
        peer = trigger.probe(stalled_s=3.0 + step * 0.1, connected=PEERS, now=now + 3.0 + step * 0.1)
        if peer is not None:
            asked.append(peer)
    assert 14 <= len(asked) <= 15
    assert len(set(asked)) == len(asked), "each peer in turn, none twice before the others"
    assert trigger.probe(stalled_s=100.0, connected=[], now=1000.0) is None
