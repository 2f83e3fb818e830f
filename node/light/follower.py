"""Following the chain from untrusted full nodes, and reading state only through verified proofs.

The follower asks every full node for its head, follows the highest claim from one node at a time, and believes
nothing a node says until it is verified (docs/LIGHT.md, "Following headers"):
- each header must link to the last verified one and carry a quorum (⌊2n/3⌋ + 1) of valid precommits from the
  validator set the previous header named; a hand-over to a new set is accepted only with a set whose hash the
  verified header names (consensus/lightclient.py, Tendermint's sequential verification);
- each state answer must carry a Merkle proof that checks against the state root of a verified header.
A node that serves something that fails these checks (a forged header, commit, set or proof, or a head it
cannot back with headers) is dropped for good and the next node is tried; a node that is merely unreachable,
behind or refuses is skipped for this operation only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from consensus.block import Commit, Header
from consensus.errors import LedgerError
from consensus.lightclient import CommitVerifier, LightClient, Plan
from consensus.votes import ValidatorSet
from node.light import wire
from node.light.errors import BadPeerError, NoSourceError, RemoteError, SourceError, WireError
from node.light.sources import Source
from node.light.trust import TrustStore

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class SyncFigures:
    """What following cost: how much was verified, and where the time went."""

    start_height: int = 0
    headers_verified: int = 0
    signatures_verified: int = 0
    set_changes: int = 0
    proofs_verified: int = 0
    verify_seconds: float = 0.0
    total_seconds: float = 0.0
    dropped: dict[str, str] = field(default_factory=dict)  # node -> why it was dropped


@dataclass(frozen=True)
class VerifiedState:
    """A state value the client has checked against the state root of a header it verified."""

    key: bytes
    value: bytes | None
    height: int
    source: str


class Follower:
    """The light client's driver: a verifier (`client`), the full nodes to ask, and where to keep the trusted
    head (`trust`; None keeps it in memory only). `clock` times the verification figures."""

    def __init__(
        self,
        client: LightClient,
        sources: list[Source],
        trust: TrustStore | None = None,
        clock: Callable[[], float] = time.perf_counter,
        workers: int | None = None,
    ) -> None:
        if not sources:
            raise NoSourceError("no full node to follow: give at least one")
        self.client = client
        self.sources = list(sources)
        self.trust = trust
        self.clock = clock
        # Threads checking signatures; None: lightclient.default_workers(). Batches are fetched one at a time:
        # asking for the next while one is verified held two batches (+2 MB peak RSS over HTTP, +9 MB over
        # libp2p) and was no faster on 2 cores, where decoding competes with the signature threads for the GIL.
        self.workers = workers
        self.figures = SyncFigures(start_height=client.height)

    @property
    def height(self) -> int:
        return self.client.height

    @property
    def header(self) -> Header:
        return self.client.header

    def _drop(self, source: Source, reason: str) -> None:
        log.warning("dropping %s: %s", source.name, reason)
        self.figures.dropped[source.name] = reason
        self.sources = [s for s in self.sources if s is not source]

    def _failed(self, source: Source, exc: Exception, failures: list[str]) -> None:
        """Drop a node that lied or broke the protocol; only skip one that is unreachable, behind or refusing."""
        if isinstance(exc, BadPeerError):
            self._drop(source, str(exc))
            failures.append(f"{source.name}: dropped ({exc})")
        elif isinstance(exc, WireError):  # a malformed answer is a protocol violation, as bad as a forgery
            self._drop(source, f"malformed answer: {exc}")
            failures.append(f"{source.name}: dropped (malformed answer: {exc})")
        elif isinstance(exc, SourceError | RemoteError):
            log.info("%s: %s; trying the next node", source.name, exc)
            failures.append(f"{source.name}: {exc}")
        else:
            raise exc

    async def _each_source(
        self, what: str, attempt: Callable[[Source], Awaitable[T]], order: list[Source] | None = None
    ) -> T:
        """Run `attempt` against each source in turn (in `order`, default: as configured) until one succeeds."""
        failures: list[str] = []
        for source in list(self.sources if order is None else order):
            if source not in self.sources:
                continue  # dropped meanwhile
            try:
                return await attempt(source)
            except (BadPeerError, WireError, SourceError, RemoteError) as exc:
                self._failed(source, exc, failures)
        detail = "; ".join(failures) or "every node was dropped earlier"
        raise NoSourceError(f"{what}: no full node gave a verifiable answer ({detail})")

    # ---- headers ---------------------------------------------------------------------------------------

    async def sync(self, target: int | None = None) -> int:
        """Follow to the highest head any node can back with verifiable headers (or to `target`); returns the
        verified height.

        Every node is asked for its head first and the highest claim is tried first: a node that withholds new
        blocks cannot keep the client behind while another node is ahead, and one that claims a head it cannot
        back is dropped."""
        started = self.clock()
        try:
            heads = await self._heads()
            order = sorted(heads, key=lambda source: -heads[source].header.height)
            await self._each_source("sync", lambda source: self._sync_from(source, target, heads[source]), order)
        finally:
            self.figures.total_seconds += self.clock() - started
            self._save()
        return self.height

    async def _heads(self) -> dict[Source, wire.SignedHeader]:
        sources = list(self.sources)
        answers = await asyncio.gather(*(s.head() for s in sources), return_exceptions=True)
        heads: dict[Source, wire.SignedHeader] = {}
        failures: list[str] = []
        for source, answer in zip(sources, answers, strict=True):
            if isinstance(answer, wire.SignedHeader):
                heads[source] = answer
            elif isinstance(answer, Exception):
                self._failed(source, answer, failures)
            else:
                raise answer
        if not heads:
            detail = "; ".join(failures) or "every node was dropped earlier"
            raise NoSourceError(f"sync: no full node told its head ({detail})")
        return heads

    async def _sync_from(self, source: Source, target: int | None, head: wire.SignedHeader | None = None) -> None:
        if head is None:
            head = await source.head()
        goal = head.header.height if target is None else target
        if head.header.height < self.height:
            raise SourceError(f"{source.name} is at height {head.header.height}, behind our {self.height}")
        if goal > head.header.height:
            raise SourceError(f"{source.name} is at height {head.header.height}, behind {goal}")
        if self.height >= goal:
            self._check_head(target, head)
            return
        # The pool lives as long as this call, so no thread outlives a sync however it ends.
        with CommitVerifier(self.workers) as verifier:
            while self.height < goal:
                batch = await self._fetch(source, self.height + 1, goal, head)
                await self._verify_batch(source, batch[: goal - self.height], verifier)
                self._save()
        self._check_head(target, head)

    def _check_head(self, target: int | None, head: wire.SignedHeader) -> None:
        if target is None and self.height == head.header.height and self.header.hash != head.header.hash:
            raise BadPeerError(f"its head {head.header.height} is not the header its chain of commits leads to")

    async def _fetch(self, source: Source, start: int, goal: int, head: wire.SignedHeader) -> list[wire.SignedHeader]:
        try:
            batch = await source.headers(start, goal)
        except RemoteError as exc:
            if exc.code != "not_found":
                raise
            batch = []  # a node that has no header below the head it claimed misled us
        if not batch:
            raise BadPeerError(f"claimed height {head.header.height} but served no header after {start - 1}")
        return batch

    async def _verify_batch(
        self,
        source: Source,
        batch: list[wire.SignedHeader],
        verifier: CommitVerifier,
    ) -> None:
        """Verify `batch` in order and advance through what verifies (raising for the first header that does
        not)."""
        items: list[tuple[Header, Commit, ValidatorSet | None]] = []
        # What stops the batch before its end, raised once the headers before it are verified (as if each
        # header were verified in turn).
        stop: Exception | None = None
        for entry in batch:
            header, commit = entry.header, entry.commit
            if commit is None:
                stop = BadPeerError(f"header {header.height} came without a commit")
                break
            following = entry.next_validators
            if following is None and header.next_validators_hash != header.validators_hash:
                try:
                    following = await source.validators(header.height + 1)
                except (SourceError, RemoteError, WireError) as exc:
                    stop = exc
                    break
            items.append((header, commit, following))
        client = self.client
        started = self.clock()
        plan = client.plan(items)
        pending = verifier.submit(plan.steps)
        try:
            failure = await asyncio.wrap_future(pending)
            before = self.height
            try:
                client.apply(plan, failure)
            except (LedgerError, ValueError) as exc:  # ValueError: a field that is no ledger value (see wire.py)
                raise BadPeerError(str(exc)) from exc
            finally:
                self._count(plan, self.height - before)
        finally:
            self.figures.verify_seconds += self.clock() - started
        if stop is not None:
            raise stop

    def _count(self, plan: Plan, accepted: int) -> None:
        for step in plan.steps[:accepted]:
            self.figures.headers_verified += 1
            # verify_commit stops once a quorum of signatures checks out
            self.figures.signatures_verified += step.signers.quorum
            self.figures.set_changes += int(step.header.next_validators_hash != step.header.validators_hash)

    def _save(self) -> None:
        if self.trust is not None and self.height > self.figures.start_height:
            self.trust.save(self.client.header, self.client.validators)

    # ---- state -----------------------------------------------------------------------------------------

    async def get_state(self, key: bytes) -> VerifiedState:
        """A state value checked against a verified header (syncing as far as the answering node's height)."""
        wire.proof_request(key)  # a bad key is the caller's error, not any node's
        return await self._each_source("get-state", lambda source: self._state_from(source, key))

    async def _state_from(self, source: Source, key: bytes) -> VerifiedState:
        answer = await source.state(key)
        if answer.key != key:
            raise BadPeerError(f"answered for key {answer.key.hex()[:32]}, not the one asked")
        if answer.height < self.height:
            # An older state would verify too, but it may predate a change the client already saw final (a
            # revoked grant): only answers at least as fresh as the verified head are relied on.
            raise SourceError(f"{source.name} answered from height {answer.height}, older than our {self.height}")
        if answer.height > self.height:
            await self._sync_from(source, answer.height)
        started = self.clock()
        try:
            ok = self.client.verify_state(answer.height, key, answer.value, answer.proof)
        except LedgerError as exc:  # that height is older than the roots this client remembers
            raise SourceError(f"{source.name}: proof at height {answer.height} cannot be checked ({exc})") from exc
        finally:
            self.figures.verify_seconds += self.clock() - started
        if not ok:
            raise BadPeerError(f"its proof for key {key.hex()[:32]} does not match the state root at {answer.height}")
        self.figures.proofs_verified += 1
        return VerifiedState(key, answer.value, answer.height, source.name)
