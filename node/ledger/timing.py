"""The ledger shell's timing decisions as pure code: when an idle chain starts its next height, and how long a
missing block value waits for tx gossip before it is fetched from peers (and how often it is asked for again).

The shell (node/ledger/service.py, node/ledger/repair.py) owns the clock and the timers; these classes only
answer "when" given `now`, so they are tested with a fake clock (tests/node/test_ledger_timing.py). Block sync's
timing lives with block sync.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Wake:
    """Start `height` at clock time `at`."""

    height: int
    at: float


class IdleWake:
    """Whether the next height starts at once or waits for work (CometBFT's `create_empty_blocks_interval`).

    After a final block, a chain with transactions waiting starts the next height at once: a pause would only add
    latency, since a busy chain's next block fills while this one is agreed. An idle chain waits for the first of:
    a transaction (then a short `block_interval_s` pause gathers a client's burst into one block), a peer's message
    for the awaited height or later (a peer had work or its timer ran out: join it, or the height stalls without
    our vote), or `idle_block_interval_s` (an empty block, so a quiet network still shows it is alive and its
    clock moves). Each wait ends at most once.
    """

    def __init__(self, block_interval_s: float, idle_block_interval_s: float) -> None:
        self.block_interval_s = block_interval_s
        self.idle_block_interval_s = max(idle_block_interval_s, block_interval_s)
        self.awaited: int | None = None  # the height we wait to start, while idle
        self.deadline = 0.0  # when the wait ends anyway (an empty block)

    def decided(self, next_height: int, work_waiting: bool, now: float) -> Wake | None:
        """A block is final (agreed or synced): start `next_height` now, or None — the chain waits until
        `deadline` unless work or a peer wakes it first."""
        if work_waiting:
            self.awaited = None
            return Wake(next_height, now)
        self.awaited, self.deadline = next_height, now + self.idle_block_interval_s
        return None

    def work_arrived(self, now: float) -> Wake | None:
        return self._end(now + self.block_interval_s)

    def peer_started(self, heights: list[int], now: float) -> Wake | None:
        """Consensus messages for `heights` arrived from a peer."""
        if self.awaited is None or not any(h >= self.awaited for h in heights):
            return None
        return self._end(now)

    def timer_due(self, height: int, now: float) -> Wake | None:
        """The idle timer armed for `height` fired (a stale timer, for a wait that already ended, does nothing)."""
        if self.awaited != height:
            return None
        return self._end(max(now, self.deadline))

    def _end(self, at: float) -> Wake | None:
        if self.awaited is None:
            return None
        height, self.awaited = self.awaited, None
        return Wake(height, at)


class ValueFetchSchedule:
    """When a value the machine asked for (`RequestValue`) is looked for where.

    A compact proposal whose transactions are missing waits up to `compact_wait_s` for tx gossip to bring them
    (polling every `poll_s`), since that usually happens; after that, or at once without a compact block, peers
    are asked by hash. A pass over the peers that fails is retried after `retry_first_s`, doubling up to
    `retry_max_s`, until the value arrives or the height is over: right after a restart no peer may be reachable
    yet, and a validator that never gets the block its peers are locked on splits the vote in every round.
    """

    def __init__(
        self, started: float, *, compact_wait_s: float, poll_s: float, retry_first_s: float, retry_max_s: float
    ) -> None:
        self.compact_deadline = started + compact_wait_s
        self.poll_s = poll_s
        self.retry_max_s = retry_max_s
        self._pause = retry_first_s

    def wait_for_gossip(self, have_compact: bool, now: float) -> float | None:
        """Seconds to wait for tx gossip before looking at the compact block again, or None: ask peers now."""
        if have_compact and now < self.compact_deadline:
            return min(self.poll_s, self.compact_deadline - now)
        return None

    def peers_failed(self) -> float:
        """Seconds to pause after a pass over the peers that did not obtain the value (doubling each time)."""
        pause = self._pause
        self._pause = min(self._pause * 2, self.retry_max_s)
        return pause
