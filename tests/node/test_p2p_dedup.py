"""Crossing dials (node/p2p/dedup.py): of two connections between the same two peers, both ends keep the same one
— the one dialled by the smaller peer ID — whatever order they saw them in."""

from __future__ import annotations

import os
from dataclasses import dataclass

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

from node.p2p.dedup import connection_to_keep


@dataclass
class Conn:
    """One end's view of a physical connection: which physical connection, and whether this end dialled it."""

    physical: str
    direction: str


def new_id() -> ID:
    return ID.from_pubkey(create_new_key_pair(os.urandom(32)).public_key)


def test_both_ends_keep_the_connection_dialled_by_the_smaller_peer_id() -> None:
    for _ in range(20):
        a, b = new_id(), new_id()
        # a dialled "x", b dialled "y"; each end lists them in the order it registered them.
        at_a = [Conn("x", "outbound"), Conn("y", "inbound")]
        at_b = [Conn("x", "inbound"), Conn("y", "outbound")]
        for order_a in (at_a, at_a[::-1]):
            for order_b in (at_b, at_b[::-1]):
                kept_at_a = connection_to_keep(a, b, list(order_a)).physical
                kept_at_b = connection_to_keep(b, a, list(order_b)).physical
                assert kept_at_a == kept_at_b == ("x" if a.to_bytes() < b.to_bytes() else "y")


def test_the_direction_may_be_an_enum() -> None:
    class Direction:
        def __init__(self, name: str) -> None:
            self.name = name

    a, b = sorted([new_id(), new_id()], key=lambda i: i.to_bytes())
    conns = [Conn("x", Direction("INBOUND")), Conn("y", Direction("OUTBOUND"))]  # type: ignore[arg-type]
    assert connection_to_keep(a, b, conns).physical == "y"  # a is the smaller: it keeps its own dial
    assert connection_to_keep(b, a, conns).physical == "x"


def test_with_one_dialler_only_the_newest_is_kept() -> None:
    a, b = new_id(), new_id()
    conns = [Conn("old", "outbound"), Conn("new", "outbound")]
    assert connection_to_keep(a, b, conns).physical == "new"
    assert connection_to_keep(b, a, conns).physical == "new"
