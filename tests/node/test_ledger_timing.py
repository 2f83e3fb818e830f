"""The ledger shell's timing decisions (node/ledger/timing.py) on a fake clock: when an idle chain starts its next
height, and how long a missing block waits for tx gossip before peers are asked."""

from __future__ import annotations

import pytest

from node.ledger.timing import IdleWake, ValueFetchSchedule, Wake


def test_with_work_waiting_the_next_height_starts_at_once() -> None:
    wake = IdleWake(block_interval_s=0.05, idle_block_interval_s=2.0)
    assert wake.decided(5, work_waiting=True, now=10.0) == Wake(5, 10.0)
    assert wake.awaited is None


def test_an_idle_chain_makes_an_empty_block_only_after_the_idle_interval() -> None:
    wake = IdleWake(block_interval_s=0.05, idle_block_interval_s=2.0)
    assert wake.decided(5, work_waiting=False, now=10.0) is None
    assert wake.awaited == 5 and wake.deadline == 12.0
    assert wake.timer_due(5, now=12.0) == Wake(5, 12.0)
    assert wake.timer_due(5, now=12.1) is None  # each wait ends once


def test_work_wakes_an_idle_chain_after_the_gathering_pause() -> None:
    wake = IdleWake(block_interval_s=0.05, idle_block_interval_s=2.0)
    wake.decided(5, work_waiting=False, now=10.0)
    assert wake.work_arrived(now=10.5) == Wake(5, 10.55)
    assert wake.work_arrived(now=10.6) is None  # later transactions gather while the block is agreed
    assert wake.timer_due(5, now=12.0) is None  # the idle timer of that wait is stale now


def test_a_peer_that_started_the_awaited_height_wakes_us_and_older_messages_do_not() -> None:
    wake = IdleWake(block_interval_s=0.05, idle_block_interval_s=2.0)
    wake.decided(5, work_waiting=False, now=10.0)
    assert wake.peer_started([4, 4], now=10.2) is None  # late precommits of the last height
    assert wake.peer_started([4, 5], now=10.3) == Wake(5, 10.3)
    assert wake.peer_started([5], now=10.4) is None


def test_a_stale_timer_of_an_earlier_wait_does_nothing() -> None:
    wake = IdleWake(block_interval_s=0.05, idle_block_interval_s=2.0)
    wake.decided(5, work_waiting=False, now=10.0)
    wake.decided(8, work_waiting=False, now=11.0)  # block sync moved us on meanwhile
    assert wake.timer_due(5, now=12.0) is None
    assert wake.timer_due(8, now=13.0) == Wake(8, 13.0)


def test_the_idle_interval_is_never_shorter_than_the_block_interval() -> None:
    wake = IdleWake(block_interval_s=1.0, idle_block_interval_s=0.2)
    wake.decided(2, work_waiting=False, now=0.0)
    assert wake.deadline == 1.0


def schedule(started: float = 100.0) -> ValueFetchSchedule:
    return ValueFetchSchedule(started, compact_wait_s=0.4, poll_s=0.05, retry_first_s=0.1, retry_max_s=2.0)


def test_a_compact_block_waits_for_tx_gossip_until_its_deadline_then_peers_are_asked() -> None:
    plan = schedule()
    assert plan.wait_for_gossip(have_compact=True, now=100.0) == 0.05
    assert plan.wait_for_gossip(have_compact=True, now=100.38) == pytest.approx(0.02)  # never past the deadline
    assert plan.wait_for_gossip(have_compact=True, now=100.4) is None


def test_without_a_compact_block_peers_are_asked_at_once() -> None:
    assert schedule().wait_for_gossip(have_compact=False, now=100.0) is None


def test_failed_passes_over_the_peers_back_off_doubling_to_a_ceiling() -> None:
    plan = schedule()
    assert [plan.peers_failed() for _ in range(7)] == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
