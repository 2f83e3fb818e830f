"""Light-client verification: follow the chain from headers and commits alone, and check state answers.

Trust starts from one header and the validator set that signs the next height (genesis block 0 and the genesis
validators, or a checkpoint). Each next header must link to the last verified one and carry a commit with a
quorum of valid precommits from the set the previous header named (`next_validators_hash`); when a header
names a new set, the client must be given that set, which it checks against the hash before trusting it.
A state answer (value + proof) is then checked against the state root of a verified header, without trusting
the full node that served it.

A range of headers is verified in three steps, so the expensive part can run on several cores:
1. `plan`: in order, each header's link to its parent and the validator set that must sign it (hashes only;
   the hand-over to a new set is followed here, so every header knows its signers before any signature is
   checked);
2. `check_commits` / `CommitVerifier`: each header's commit against its set (`verify_commit`: distinct members,
   precommits for this block, a quorum of valid Ed25519 signatures, stopping once the quorum checks out), one
   header independently of the others, so sequentially or on a thread pool (PyNaCl's libsodium calls release
   the GIL);
3. `apply`: advance header by header up to the first one that failed in step 1 or 2 and raise its error.
Whatever the order the threads finish in, the outcome is the one the sequential check gives: the same headers
accepted, the same first failure with the same message.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

from consensus import smt
from consensus.block import Commit, Header, validate_link, verify_commit
from consensus.errors import BlockError, LedgerError, LightClientError
from consensus.votes import ValidatorSet

REMEMBERED_ROOTS = 1024
# Fewer headers than this are checked in the caller's thread: handing them to the pool costs more than it saves.
MIN_PARALLEL = 8
# Each worker gets about this many slices of a batch, so a slow slice does not leave the other cores idle.
SLICES_PER_WORKER = 4

# What failed and why: a header's ledger error, or a ValueError from re-encoding a field that is no ledger value.
Failure = tuple[int, LedgerError | ValueError]


def verify_state_proof(header: Header, key: bytes, value: bytes | None, proof: smt.Proof) -> bool:
    """True iff `proof` shows `key` -> `value` (None: absent) in the state after block `header`."""
    return smt.verify_proof(header.state_root, key, value, proof)


def default_workers() -> int:
    """Threads for signature checks: one per core this process may use, at most 4 (a light client shares its
    device; more threads than cores only add switching)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on every platform
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


@dataclass(frozen=True)
class Step:
    """One header whose link and signers are settled: its commit must carry a quorum of `signers`.
    `set_error` is the hand-over failure to report once the commit checks out (the check order of `verify`)."""

    header: Header
    commit: Commit
    signers: ValidatorSet
    following: ValidatorSet
    set_error: LightClientError | None = None


@dataclass(frozen=True)
class Plan:
    """Headers in order, linked and with their signers known; `link_error` stops the header after them."""

    steps: tuple[Step, ...]
    link_error: LedgerError | ValueError | None = None


def check_commit(step: Step) -> LedgerError | ValueError | None:
    """The reason `step`'s commit does not finalise its header, or None. Pure: safe on any thread."""
    header = step.header
    try:
        verify_commit(
            step.commit, chain_id=header.chain_id, height=header.height, block_hash=header.hash, validators=step.signers
        )
    except BlockError as exc:
        return LightClientError(f"header {header.height}: {exc}")
    except (LedgerError, ValueError) as exc:  # a field that cannot be encoded: not a ledger value
        return exc
    return None


def check_commits(steps: Sequence[Step]) -> Failure | None:
    """The first step whose commit fails, checked in order in this thread."""
    for index, step in enumerate(steps):
        error = check_commit(step)
        if error is not None:
            return index, error
    return None


class _Batch:
    """One batch's commits checked in slices on a pool; `done` resolves to the first failure (or None) once
    every slice has finished or stopped.

    A slice stops at its first failure, and skips headers after the earliest failure any slice has found, since
    nothing past it will be accepted. Headers before that failure are always checked, so the earliest failure is
    always found: the result does not depend on the threads' timing."""

    def __init__(self, steps: Sequence[Step], slices: int) -> None:
        self.steps = steps
        self.first = len(steps)  # only ever lowered, under the lock; a stale read just costs one more check
        self.error: LedgerError | ValueError | None = None
        self.lock = threading.Lock()
        self.remaining = slices
        self.done: Future[Failure | None] = Future()
        self.crash: BaseException | None = None

    def run(self, lo: int, hi: int) -> None:
        try:
            for index in range(lo, hi):
                if self.first < index:
                    break
                error = check_commit(self.steps[index])
                if error is not None:
                    with self.lock:
                        if index < self.first:
                            self.first, self.error = index, error
                    break
        except BaseException as exc:  # a bug, not a bad header: surface it to whoever waits
            with self.lock:
                self.crash = self.crash or exc
            raise
        finally:
            self.slice_done()

    def abandon(self) -> None:
        """Nobody waits any more: stop every slice at its next header."""
        self.first = -1

    def slice_done(self) -> None:
        with self.lock:
            self.remaining -= 1
            if self.remaining:
                return
            crash, first, error = self.crash, self.first, self.error
        try:
            if crash is not None:
                self.done.set_exception(crash)
            else:
                self.done.set_result(None if error is None or first < 0 else (first, error))
        except InvalidStateError:
            pass  # the waiter cancelled `done`


class CommitVerifier:
    """Checks batches of commits on a small thread pool (started on first use, stopped by `close`).

    Ed25519 verification is nearly all of a header's cost, and libsodium (through cffi) runs without the GIL,
    so n threads verify close to n times as fast on n cores. With one worker, or a batch smaller than
    MIN_PARALLEL, the commits are checked in the calling thread and no thread is started."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = default_workers() if workers is None else max(1, workers)
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    def submit(self, steps: Sequence[Step]) -> Future[Failure | None]:
        """A future of the first failing step (index, error), or None when every commit checks out. Cancelling it
        stops the batch's slices at their next header."""
        if self._closed:
            raise RuntimeError("the commit verifier is closed")
        if self.workers == 1 or len(steps) < MIN_PARALLEL:
            inline: Future[Failure | None] = Future()
            inline.set_result(check_commits(steps))
            return inline
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ehrnet-verify")
        slices = min(len(steps), self.workers * SLICES_PER_WORKER)
        batch = _Batch(steps, slices)
        size, extra = divmod(len(steps), slices)
        futures: list[Future[None]] = []
        lo = 0
        for n in range(slices):
            hi = lo + size + (n < extra)
            future = self._pool.submit(batch.run, lo, hi)
            # A slice cancelled before it ran (by `done`'s cancellation or by `close`) still counts as finished.
            future.add_done_callback(lambda f: batch.slice_done() if f.cancelled() else None)
            futures.append(future)
            lo = hi

        def on_done(done: Future[Failure | None]) -> None:
            if done.cancelled():
                batch.abandon()
                for future in futures:
                    future.cancel()

        batch.done.add_done_callback(on_done)
        return batch.done

    def check(self, steps: Sequence[Step]) -> Failure | None:
        return self.submit(steps).result()

    def close(self) -> None:
        """Stop the pool, waiting for slices already running (a few ms at most); idempotent."""
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> CommitVerifier:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class LightClient:
    def __init__(self, trusted: Header, next_validators: ValidatorSet) -> None:
        if next_validators.hash() != trusted.next_validators_hash:
            raise LightClientError("the trusted validator set does not match the trusted header")
        self._header = trusted
        self._validators = next_validators
        self._roots: OrderedDict[int, bytes] = OrderedDict({trusted.height: trusted.state_root})

    @property
    def header(self) -> Header:
        """The latest verified header."""
        return self._header

    @property
    def height(self) -> int:
        return self._header.height

    @property
    def validators(self) -> ValidatorSet:
        """The set that must sign the next height."""
        return self._validators

    def plan(self, items: Iterable[tuple[Header, Commit, ValidatorSet | None]]) -> Plan:
        """Step 1: link each header to the one before (starting from the verified head) and settle who must
        sign it. Changes nothing; stops at the first header that fails a check other than its signatures."""
        steps: list[Step] = []
        parent, signers = self._header, self._validators
        for header, commit, next_validators in items:
            try:
                validate_link(header, parent)
                # Hashed here, once, so the commit checks on other threads only read it (and a header that
                # cannot be encoded stops the plan where the sequential check would stop).
                header.hash  # noqa: B018
            except BlockError as exc:
                return Plan(tuple(steps), LightClientError(f"header {header.height}: {exc}"))
            except (LedgerError, ValueError) as exc:  # a field that is no ledger value (codec.CodecError)
                return Plan(tuple(steps), exc)
            following, set_error = signers, None
            if header.next_validators_hash != header.validators_hash:
                if next_validators is None:
                    set_error = LightClientError(f"header {header.height} hands over to a new validator set; supply it")
                elif next_validators.hash() != header.next_validators_hash:
                    set_error = LightClientError(f"supplied validator set does not match header {header.height}")
                else:
                    following = next_validators
            steps.append(Step(header, commit, signers, following, set_error))
            if set_error is not None:
                break
            parent, signers = header, following
        return Plan(tuple(steps))

    def apply(self, plan: Plan, failure: Failure | None) -> int:
        """Step 3: advance through the plan's headers up to the first failure (of step 1 or of the commits,
        `failure` from step 2) and raise it; returns the height reached."""
        stop = len(plan.steps) if failure is None else failure[0]
        for step in plan.steps[:stop]:
            if step.set_error is not None:
                raise step.set_error
            self._advance(step.header, step.following)
        if failure is not None:
            raise failure[1]
        if plan.link_error is not None:
            raise plan.link_error
        return self.height

    def _advance(self, header: Header, following: ValidatorSet) -> None:
        self._header, self._validators = header, following
        self._roots[header.height] = header.state_root
        if len(self._roots) > REMEMBERED_ROOTS:
            self._roots.popitem(last=False)

    def verify(self, header: Header, commit: Commit, next_validators: ValidatorSet | None = None) -> None:
        """Verify the next header and advance; raises LightClientError (the client state is then unchanged)."""
        self.verify_chain([(header, commit, next_validators)])

    def verify_chain(
        self, items: Iterable[tuple[Header, Commit, ValidatorSet | None]], verifier: CommitVerifier | None = None
    ) -> int:
        """Verify consecutive (header, commit, new set or None) and advance through those that verify; returns
        the height reached, or raises for the first that does not (the headers before it stay accepted).
        The commits are checked on `verifier`'s threads if given, else in this thread."""
        plan = self.plan(items)
        failure = check_commits(plan.steps) if verifier is None else verifier.check(plan.steps)
        return self.apply(plan, failure)

    def verify_state(self, height: int, key: bytes, value: bytes | None, proof: smt.Proof) -> bool:
        """Check a state answer against a recently verified height's state root."""
        root = self._roots.get(height)
        if root is None:
            raise LightClientError(f"height {height} is not among the verified headers this client remembers")
        return smt.verify_proof(root, key, value, proof)
