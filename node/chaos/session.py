"""One experiment's live state, shared by the control, the actions and the probes Chaos Toolkit calls.

Chaos Toolkit calls extension functions by module path with JSON arguments, in its own threads (background
activities in a pool), so the cluster handle, the fault log and the recorded history live in one process-wide
session opened by the control before the experiment and closed after it. An asyncio loop on its own thread runs
the height sampler and the workload; actions (plain threads) reach it with `run_coroutine_threadsafe`.

`close()` is the cleanup guarantee: it resumes every paused node, lifts every gate, heals and removes network
namespaces, and stops the cluster if the session started it. It is idempotent and is also called from the
runner's `finally` and from an `atexit` hook, so Ctrl-C or a failing activity cannot leave a node stopped or a
namespace behind.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from node.chaos import fault_api
from node.chaos.history import Fault, HeightSample, History, PinnedRecord, ReadAttempt, Submission
from node.client import AsyncNodeClient, NodeError
from node.cluster.local import Cluster

log = logging.getLogger("ehrnet.chaos")
T = TypeVar("T")
SAMPLE_INTERVAL_S = 0.25


@dataclass
class OpenFault:
    kind: str
    nodes: tuple[str, ...]
    start: float
    end: float | None = None
    affects_liveness: bool = True
    detail: dict[str, Any] = field(default_factory=dict)


class ChaosSession:
    def __init__(self, cluster: Cluster, *, started_cluster: bool, out_dir: Path, netns: Any = None) -> None:
        self.cluster = cluster
        self.started_cluster = started_cluster
        self.out_dir = out_dir
        self.netns = netns  # NamespaceNetwork when the cluster runs in namespaces, else None
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.faults: list[OpenFault] = []
        self.submissions: list[Submission] = []
        self.samples: list[HeightSample] = []
        self.reads: list[ReadAttempt] = []
        self.pinned: list[PinnedRecord] = []
        self.record_bytes: dict[str, bytes] = {}
        self.gated: set[str] = set()  # nodes with a peer gate set through the fault-control endpoint
        self.workload_stop = threading.Event()  # set by the schedule's end, the invariants probe, or a signal
        self.workload_started = False
        self.stopping = threading.Event()  # the run is being interrupted or closed: waits end early
        self.verdict: Any = None
        self.history: History | None = None
        self.closed = False
        self.loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self.loop.run_forever, name="chaos-loop", daemon=True)
        self._loop_thread.start()
        self._sampler = self.submit(self._sample_forever())

    # ---- time and the loop ------------------------------------------------------------------------------

    def clock(self) -> float:
        return round(time.monotonic() - self.t0, 3)

    def submit(self, coro: Coroutine[Any, Any, T]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        result: T = self.submit(coro).result(timeout)
        return result

    # ---- the fault log ----------------------------------------------------------------------------------

    def open_fault(
        self, kind: str, nodes: list[str], affects_liveness: bool = True, at: float | None = None, **detail: Any
    ) -> OpenFault:
        start = self.clock() if at is None else at
        fault = OpenFault(kind, tuple(sorted(nodes)), start, None, affects_liveness, detail)
        with self.lock:
            self.faults.append(fault)
        log.info("fault %s on %s at %.1fs", kind, ",".join(fault.nodes), fault.start)
        return fault

    def close_faults(self, kinds: set[str], node: str | None = None) -> list[OpenFault]:
        """End the open faults of these kinds (on `node`, if given) now."""
        now = self.clock()
        closed = []
        with self.lock:
            for f in self.faults:
                if f.end is None and f.kind in kinds and (node is None or node in f.nodes):
                    f.end = now
                    closed.append(f)
        for f in closed:
            log.info("healed %s on %s at %.1fs", f.kind, ",".join(f.nodes), now)
        return closed

    def faulted_now(self) -> set[str]:
        with self.lock:
            return {n for f in self.faults if f.end is None and f.affects_liveness for n in f.nodes}

    # ---- observation --------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def node_clients(
        self, timeout_s: float, connect_timeout_s: float | None = None, force_close: bool = False
    ) -> AsyncIterator[dict[str, AsyncNodeClient]]:
        """An async client per node, all sharing one aiohttp pool (closed on exit). `force_close` opens a fresh
        connection per request, so no connection outlives a fault."""
        from node.client.aio import AiohttpTransport

        urls = {name: record.http_url for name, record in self.cluster.records.items()}
        pool = AiohttpTransport(
            next(iter(urls.values())), timeout_s=timeout_s, connect_timeout_s=connect_timeout_s, force_close=force_close
        )
        try:
            yield {name: AsyncNodeClient(pool.at(url)) for name, url in urls.items()}
        finally:
            await pool.close()

    async def _sample_forever(self) -> None:
        async with self.node_clients(timeout_s=1.0, force_close=True) as clients:
            while not self.closed:
                started = time.monotonic()
                names = list(clients)
                heights = await asyncio.gather(*(self._height(clients[n]) for n in names))
                t = self.clock()
                with self.lock:
                    self.samples.extend(HeightSample(t, n, h) for n, h in zip(names, heights, strict=True))
                await asyncio.sleep(max(0.0, SAMPLE_INTERVAL_S - (time.monotonic() - started)))

    @staticmethod
    async def _height(client: AsyncNodeClient) -> int | None:
        try:
            return int((await client.status())["height"])
        except (NodeError, ValueError, KeyError, TypeError):
            return None

    def latest_heights(self) -> dict[str, int | None]:
        with self.lock:
            latest: dict[str, int | None] = {}
            for s in self.samples:
                latest[s.node] = s.height
            return latest

    def snapshot(self) -> History:
        with self.lock:
            return History(
                submissions=list(self.submissions),
                faults=[Fault(f.kind, f.nodes, f.start, f.end, f.affects_liveness) for f in self.faults],
                samples=list(self.samples),
                reads=list(self.reads),
                pinned=list(self.pinned),
                ended_at=self.clock(),
            )

    # ---- cleanup ----------------------------------------------------------------------------------------

    def heal_everything(self) -> None:
        """Undo every fault that can be undone in place: resume paused nodes, lift gates, heal namespaces."""
        for name in list(self.cluster.records):
            with contextlib.suppress(Exception):
                if self.cluster.paused(name):
                    self.cluster.resume(name)
        self.close_faults({"pause"})
        if self.gated:
            for name in sorted(self.gated):
                with contextlib.suppress(Exception):
                    fault_api.gate(self.cluster, name, [])
            self.gated.clear()
        if self.netns is not None:
            with contextlib.suppress(Exception):
                self.netns.heal()
        self.close_faults({"partition", "gate"})

    def close(self) -> None:
        if self.closed:
            return
        self.workload_stop.set()
        self.stopping.set()
        try:
            self.heal_everything()
        finally:
            self.closed = True
            if self.started_cluster:
                self.cluster.down(timeout=5)
            if self.netns is not None:
                with contextlib.suppress(Exception):
                    self.netns.cleanup()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._loop_thread.join(timeout=5)


_current: ChaosSession | None = None


def open_session(session: ChaosSession) -> ChaosSession:
    global _current
    if _current is not None and not _current.closed:
        raise RuntimeError("a chaos session is already open in this process")
    _current = session
    atexit.register(session.close)
    return session


def current() -> ChaosSession:
    if _current is None or _current.closed:
        raise RuntimeError(
            "no chaos session: run experiments with `ehrnet chaos run`, or declare the control "
            "node.chaos.control in the experiment"
        )
    return _current


def last() -> ChaosSession | None:
    """The session opened last, closed or not (the control reads its record after the run)."""
    return _current


def close_current() -> None:
    if _current is not None:
        _current.close()
