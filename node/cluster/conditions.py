"""Waiting on a condition of processes that run on their own: a cluster's nodes, peer processes, a chain.

Tests and benchmarks synchronise on what they can observe (a height reached, a peer connected), never on a fixed
sleep: on a shared 2-core machine the same step can take ten times longer from one run to the next. Each helper
polls a predicate and says, on timeout, what did not hold.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition did not hold within its timeout."""


def wait_until(predicate: Callable[[], T], timeout: float, interval: float = 0.05, what: str = "condition") -> T:
    """Poll `predicate` until it returns something truthy; return that value or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"{what} did not hold within {timeout} s")
        time.sleep(interval)


def holds_for(predicate: Callable[[], object], seconds: float, interval: float = 0.1) -> bool:
    """Poll `predicate` for `seconds`; False as soon as it fails once. For properties of the form "nothing
    happens", which no condition can signal (e.g. a chain without a quorum finalises no block)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(interval)
    return bool(predicate())


async def await_until(
    predicate: Callable[[], Any], timeout_s: float, interval: float = 0.02, what: str = "condition"
) -> Any:
    """The asyncio form of `wait_until`; `predicate` may be sync or async."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"{what} did not hold within {timeout_s} s")
        await asyncio.sleep(interval)
