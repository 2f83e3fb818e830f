"""The trio side of the libp2p bridge: one trio guest run per asyncio loop, and the crossing into it.

trio allows one run per thread, so hosts on the same loop (a test's pair, the demo's device and doctor) share
this runtime; the last host to release it ends the run. Like `node/p2p/bridge.py`, this module imports trio; nothing
outside the bridge's `node/p2p/` modules does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import trio

from node.p2p.types import P2PError

log = logging.getLogger(__name__)

T = TypeVar("T")


class TrioRuntime:
    """One trio guest run per asyncio loop, shared by every host on it (trio allows one run per thread)."""

    _by_loop: ClassVar[dict[asyncio.AbstractEventLoop, TrioRuntime]] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._users = 0
        self._ready: asyncio.Future[None] = loop.create_future()
        self._done: asyncio.Future[None] = loop.create_future()
        self._stop: trio.Event | None = None
        self._nursery: trio.Nursery | None = None
        self.token: trio.lowlevel.TrioToken | None = None

    @classmethod
    async def acquire(cls) -> TrioRuntime:
        loop = asyncio.get_running_loop()
        runtime = cls._by_loop.get(loop)
        if runtime is None:
            runtime = cls(loop)
            cls._by_loop[loop] = runtime
            runtime._start()
        runtime._users += 1
        await runtime._ready
        return runtime

    def _start(self) -> None:
        def done_callback(outcome: Any) -> None:
            self._by_loop.pop(self._loop, None)
            try:
                outcome.unwrap()
            except BaseException as exc:  # surface how the trio run ended; never lose it
                for fut in (self._ready, self._done):
                    if not fut.done():
                        fut.set_exception(P2PError(f"the trio runtime failed: {exc!r}"))
                return
            for fut in (self._ready, self._done):
                if not fut.done():
                    fut.set_result(None)

        trio.lowlevel.start_guest_run(
            self._main,
            run_sync_soon_threadsafe=self._schedule_threadsafe,
            run_sync_soon_not_threadsafe=self._schedule,
            done_callback=done_callback,
            host_uses_signal_set_wakeup_fd=True,
            restrict_keyboard_interrupt_to_checkpoints=True,
        )

    def _schedule_threadsafe(self, fn: Callable[[], None]) -> None:
        self._loop.call_soon_threadsafe(fn)

    def _schedule(self, fn: Callable[[], None]) -> None:
        self._loop.call_soon(fn)

    async def _main(self) -> None:
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.token = trio.lowlevel.current_trio_token()
            self._ready.set_result(None)
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        nursery, token = self._nursery, self.token
        assert nursery is not None and token is not None
        token.run_sync_soon(nursery.start_soon, fn)

    async def release(self) -> None:
        self._users -= 1
        if self._users > 0:
            return
        if self.token is not None and self._stop is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self.token.run_sync_soon(self._stop.set)
        try:
            await asyncio.wait_for(asyncio.shield(self._done), timeout=10)
        except Exception as exc:
            log.warning("trio runtime shutdown: %s", exc)


async def run_in_nursery(
    loop: asyncio.AbstractEventLoop,
    token: trio.lowlevel.TrioToken,
    nursery: trio.Nursery,
    fn: Callable[[], Awaitable[T]],
) -> T:
    """The crossing from asyncio into trio: run `fn` as a task in `nursery` and await its result from asyncio.

    A library exception comes back as P2PError; cancelling the asyncio caller cancels the trio task.
    """
    future: asyncio.Future[T] = loop.create_future()
    scopes: list[trio.CancelScope] = []

    async def runner() -> None:
        with trio.CancelScope() as scope:
            scopes.append(scope)
            try:
                result = await fn()
            except P2PError as exc:
                if not future.done():
                    future.set_exception(exc)
                return
            except Exception as exc:
                if not future.done():
                    future.set_exception(P2PError(f"{type(exc).__name__}: {exc}"))
                return
            if not future.done():
                future.set_result(result)
        if not future.done():
            future.set_exception(P2PError("cancelled"))

    def spawn() -> None:
        try:
            nursery.start_soon(runner)
        except RuntimeError as exc:  # nursery closed: the host is shutting down
            if not future.done():
                future.set_exception(P2PError(f"the libp2p host is shutting down ({exc})"))

    try:
        token.run_sync_soon(spawn)
    except trio.RunFinishedError as exc:
        raise P2PError("the libp2p host has stopped") from exc
    try:
        return await future
    except asyncio.CancelledError:
        if scopes:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(scopes[0].cancel)
        raise
