"""Read-only contract calls (views) run in worker processes, never on the node's event loop.

A view may run up to `max_tx_gas` of contract code. On the event loop that stops everything else the node does
(consensus, gossip, the API) for as long as it runs; a thread would not help, since the interpreter holds the GIL.
So views run in separate processes that open the chain store's LMDB environment read-only: LMDB lets readers in
other processes see a consistent snapshot (one read transaction) while the node keeps committing blocks, so the
view, the head it reports and the ABI check all come from one committed state. (A reader holds its snapshot's
pages from reuse while it runs, one more reason for the wall-clock bound.) Each worker is long-lived (its
import and the VM's program cache are paid once); a view that outlives the wall-clock bound has its worker killed
and replaced, and the caller gets a 503.

Jobs and answers cross the pipe as plain Python values between this node's own processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import lmdb

from primitives import codec

log = logging.getLogger(__name__)

VIEW_TIMEOUT_S = 60.0
START_TIMEOUT_S = 60.0  # a fresh worker's interpreter start and imports, on a busy machine
READY = "ready"
# Two cores are the common case: one worker leaves the other core to consensus however many views are queued.
DEFAULT_WORKERS = 1


@dataclass(frozen=True)
class ViewJob:
    """One view to evaluate against the latest committed state of the store at `store_path`."""

    store_path: str
    target: str | bytes
    function: str
    args: list[codec.Value]
    caller_pk: bytes
    gas_limit: int


@dataclass(frozen=True)
class ViewAnswer:
    """The HTTP status and JSON document for a view; `gas_used` is what the caller's budget is charged."""

    status: int
    doc: dict[str, Any]
    gas_used: int


class ViewUnavailable(Exception):
    """The view could not be evaluated (its worker died or overran the wall-clock bound): a 503."""


# --- inside the worker process ----------------------------------------------------------------------------


class _Snapshots:
    """Read-only handles on chain stores, opened once per path."""

    def __init__(self) -> None:
        self._envs: dict[str, tuple[lmdb.Environment, Any, Any, Any]] = {}

    def begin(self, path: str) -> tuple[lmdb.Transaction, Any, Any, Any]:
        if path not in self._envs:
            env = lmdb.open(path, readonly=True, lock=True, max_dbs=16, subdir=True)
            # A worker killed mid-view leaves its reader slot behind, pinning that snapshot's pages (LMDB could
            # never reuse them): the replacement clears the slots of dead processes before reading.
            env.reader_check()
            meta, blocks, values = (env.open_db(name, create=False) for name in (b"meta", b"blocks", b"values"))
            self._envs[path] = (env, meta, blocks, values)
        env, meta, blocks, values = self._envs[path]
        try:
            txn = env.begin(buffers=False)
        except lmdb.MapResizedError:
            env.set_mapsize(0)  # the node grew the map since we opened it: adopt the new size
            txn = env.begin(buffers=False)
        return txn, meta, blocks, values


def evaluate(snapshots: _Snapshots, job: ViewJob) -> ViewAnswer:
    """The view's answer, everything read in one LMDB read transaction (one committed state)."""
    # Imported here, in the worker: the parent never evaluates views itself.
    from consensus.block import Header
    from consensus.contract_txs import ReadOnlyLedgerStorage, shared_vm
    from consensus.vm import BlockInfo, CallError
    from consensus.vm.jsonvalues import to_json
    from node.ledger.light_server import header_value_of_block

    txn, meta, blocks, values = snapshots.begin(job.store_path)
    try:
        head_key = txn.get(b"head", db=meta)
        raw_block = txn.get(head_key, db=blocks) if head_key is not None else None
        if raw_block is None:
            return ViewAnswer(503, {"error": "the chain store has no head yet"}, 0)
        head = Header.from_value(header_value_of_block(bytes(raw_block)))

        def get_value(key: bytes) -> bytes | None:
            raw = txn.get(key, db=values)
            return None if raw is None else bytes(raw)

        storage = ReadOnlyLedgerStorage(get_value)
        vm = shared_vm()
        try:
            described = vm.abi(storage, job.target)
        except CallError as exc:
            return ViewAnswer(404, {"error": str(exc)}, 0)
        problem = check_call(described, job.function, len(job.args))
        if problem is not None:
            return ViewAnswer(problem[0], {"error": problem[1]}, 0)
        receipt = vm.view(
            storage,
            job.target,
            job.function,
            job.args,
            block=BlockInfo(head.height, head.time_ms // 1000),
            caller_pk=job.caller_pk,
            gas_limit=job.gas_limit,
        )
    finally:
        txn.abort()
    doc = {
        "status": receipt.status,
        "gas_used": receipt.gas_used,
        "return": to_json(receipt.return_value),
        "height": head.height,
    }
    if not receipt.ok:
        return ViewAnswer(422, {**doc, "error": f"{receipt.status}: {receipt.error}"}, receipt.gas_used)
    return ViewAnswer(200, doc, receipt.gas_used)


def check_call(abi: codec.Value, function: str, count: int) -> tuple[int, str] | None:
    """An unknown function (404) or a wrong argument count (400), found before anything runs."""
    assert isinstance(abi, dict) and isinstance(abi["functions"], list)
    for entry in abi["functions"]:
        if isinstance(entry, dict) and entry["name"] == function:
            params = entry["params"]
            assert isinstance(params, list)
            if len(params) != count:
                return 400, f"args: {function}() takes {len(params)} arguments, got {count}"
            return None
    return 404, f"function: the contract has no public function {function!r}"


def _import_vm() -> None:
    import consensus.contract_txs
    import node.ledger.light_server  # noqa: F401

    consensus.contract_txs.shared_vm()


def _worker_main(conn: Connection) -> None:
    snapshots = _Snapshots()
    _import_vm()
    conn.send(READY)  # imports done: the node may start a view's clock
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return  # the node went away
        try:
            answer: ViewAnswer | str = evaluate(snapshots, job)
        except Exception as exc:  # a store fault: reported, and the worker lives on
            answer = f"{type(exc).__name__}: {exc}"
        try:
            conn.send(answer)
        except (BrokenPipeError, OSError):
            return


# --- in the node ---------------------------------------------------------------------------------------------


class _Worker:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a process running asyncio, trio and libp2p
        self.conn, child = context.Pipe()
        self.process: BaseProcess = context.Process(target=_worker_main, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.ready = False

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
            self.process.join(1)
        self.conn.close()


class ViewWorkers:
    """A small pool of view worker processes, started on first use; `close` kills them."""

    def __init__(self, workers: int = DEFAULT_WORKERS, timeout_s: float = VIEW_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._size = workers
        self._idle: asyncio.Queue[_Worker] | None = None
        self._all: list[_Worker] = []
        self._closed = False

    async def run(self, job: ViewJob) -> ViewAnswer:
        if self._closed:
            raise ViewUnavailable("the node is stopping")
        if self._idle is None:
            self._idle = asyncio.Queue()
            for _ in range(self._size):
                self._spawn()
        worker = await self._idle.get()
        healthy = False
        try:
            answer = await asyncio.to_thread(self._roundtrip, worker, job)
            healthy = True
        finally:
            if healthy and not self._closed:
                self._idle.put_nowait(worker)
            else:
                self._all.remove(worker)
                worker.kill()
                if not self._closed:
                    self._spawn()
        if isinstance(answer, str):
            raise ViewUnavailable(answer)
        return answer

    def _roundtrip(self, worker: _Worker, job: ViewJob) -> ViewAnswer | str:
        """Runs in a thread (waiting on a pipe releases the GIL); raises ViewUnavailable on a timeout or a death.
        The view's clock starts once the worker is ready, so a worker's start-up is not counted against it."""
        try:
            if not worker.ready:
                self._wait(worker, time.monotonic() + START_TIMEOUT_S, "the view worker did not start")
                worker.ready = worker.conn.recv() == READY
            worker.conn.send(job)
            overran = f"the view ran longer than {self.timeout_s:.0f} s and was stopped"
            self._wait(worker, time.monotonic() + self.timeout_s, overran)
            answer: ViewAnswer | str = worker.conn.recv()
        except (EOFError, OSError) as exc:
            raise ViewUnavailable(f"the view worker failed: {exc}") from None
        return answer

    def _wait(self, worker: _Worker, deadline: float, late: str) -> None:
        while not worker.conn.poll(0.1):
            if self._closed:
                raise ViewUnavailable("the node is stopping")
            if time.monotonic() > deadline:
                raise ViewUnavailable(late)
            if not worker.process.is_alive():
                raise ViewUnavailable("the view worker died")

    def _spawn(self) -> None:
        assert self._idle is not None
        worker = _Worker()
        self._all.append(worker)
        self._idle.put_nowait(worker)

    def close(self) -> None:
        self._closed = True
        for worker in self._all:
            worker.kill()
        self._all.clear()
