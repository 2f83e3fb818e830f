"""The ledger service: the async shell around the pure consensus machine, mempool and chain store.

One task owns the machine. Everything that reaches it — gossip, timeouts, repaired values, synced blocks — is an
input on one queue, so the machine is never entered twice at once and its actions are handled in order
(consensus/actions.py). Gossip is best-effort (docs/PROTOCOL.md §2): consensus messages and transactions travel
in batches, and a repair loop asks peers directly for what gossip lost — their round state, missing block values,
and final blocks when this node fell behind (restart, wipe, partition).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Coroutine, Iterable
from pathlib import Path

from consensus import actions
from consensus.accounts import OPEN, check_sender
from consensus.block import Block, Commit
from consensus.chainstore import ChainStore
from consensus.errors import LedgerError, MempoolFullError, TxError
from consensus.execute import BlockResult, Receipt, Registry
from consensus.genesis import Genesis
from consensus.gossip_batch import ConsensusBatch, ProposalMessage
from consensus.input_journal import open_consensus_journal
from consensus.inputs import (
    ConsensusInput,
    ReceiveProposal,
    ReceiveValue,
    ReceiveVote,
    Start,
    StartHeight,
    TimeoutExpired,
    describe,
)
from consensus.machine import ConsensusMachine
from consensus.mempool import Admission, Mempool
from consensus.messages import MessageError
from consensus.sender_limits import SenderLimits
from consensus.state import get_nonce
from consensus.system_txs import default_registry, evidence_body
from consensus.timeouts import TimeoutParams
from consensus.tx import Tx
from consensus.votes import ValidatorSet, Vote, VoteKind
from node.faults.points import FaultPoints
from node.ledger import wire
from node.ledger.chain_app import MAX_PROPOSAL_TXS, ChainApp
from node.ledger.commit_feed import CommitFeed
from node.ledger.gossip.compact import CompactProposals
from node.ledger.gossip.tx_gossip import LedgerGossipOut
from node.ledger.gossip.validation import LedgerGossipJudge, MeshMembers, refresh_members
from node.ledger.group_commit import open_mempool_journal
from node.ledger.locked_value import LockedValueFile
from node.ledger.repair import LedgerRepair
from node.ledger.sign_guard import SignGuard
from node.ledger.sync.block_sync import BlockSync
from node.ledger.timing import IdleWake, Wake
from node.p2p.bridge import P2PHost
from node.service import Service
from primitives.keys import SigningKey

log = logging.getLogger(__name__)


class LedgerService(CompactProposals, LedgerRepair, LedgerGossipOut, Service):
    name = "ledger"
    # Transactions are gossiped in batches at most this often: py-libp2p carries a few hundred gossip messages
    # per second across a small cluster (bench/gossip.py), so throughput comes from batch size.
    tx_flush_s = 0.2
    # Clients are turned away (503, retry later) beyond this backlog, well below the mempool's own bound for
    # peers' transactions: on a saturated machine, admitting more only starves consensus (~0.15 ms of CPU per
    # admission) and every accepted transaction waits longer. A few blocks' worth keeps the pipeline full.
    max_client_backlog = 2 * MAX_PROPOSAL_TXS

    def __init__(
        self,
        host: P2PHost,
        genesis: Genesis,
        data_dir: Path,
        key: SigningKey,
        *,
        block_interval_s: float = 0.05,
        idle_block_interval_s: float = 2.0,
        timeouts: TimeoutParams | None = None,
        registry: Registry | None = None,
        config_members: Iterable[str] = (),
    ) -> None:
        self.host = host
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.data_dir = data_dir
        self.key = key
        self.block_interval_s = block_interval_s
        self.idle_block_interval_s = max(idle_block_interval_s, block_interval_s)
        self._idle_wake = IdleWake(block_interval_s, idle_block_interval_s)  # node/ledger/timing.py
        # While the chain is idle: the height we wait to start, its validators and the timer that starts it anyway
        # (an empty block) — see `_go_on`.
        self._idle: tuple[int, ValidatorSet, asyncio.TimerHandle] | None = None
        self.timeouts = timeouts or TimeoutParams(propose=1.5, propose_delta=0.5, prevote=0.5, precommit=0.5)
        self.registry = registry or default_registry()
        # Opened here, like the storage service's block store, so the service is complete once constructed: the
        # routes and consumers built around it in the composition root never see a ledger without its chain.
        self.store = ChainStore(data_dir / "chain", genesis)
        params = genesis.params
        self.mempool = Mempool(
            chain_id=self.chain_id,
            params=params,
            registry=self.registry,
            nonce_of=self._nonce_of_state,
            sender_check=self._check_sender,  # the chain's account rule, against the last final state
            limits=SenderLimits(),  # per-sender pending count and rate
        )
        # The mempool on disk, what makes an acknowledgement durable. It refills the pool with what this node
        # held before a crash or stop; those are gossiped again once a peer listens (`_gossip_restored`).
        store = self.store
        self.journal, restored = open_mempool_journal(
            data_dir / "mempool", self.mempool, lambda tx_hash: store.tx_location(tx_hash) is not None
        )
        self._restored = [tx.raw for tx in restored]
        self.app = ChainApp(store, self.mempool, self.registry, key.public_key)
        # Opt-in: every input the machine is fed, for `ehrnet ledger replay` (consensus/input_journal.py).
        self.consensus_journal, machine_app = open_consensus_journal(data_dir, self.app)
        self.machine = ConsensusMachine(
            chain_id=self.chain_id,
            app=machine_app,
            height=store.height + 1,
            validators=store.next_validators(),
            key=key,  # the machine votes only while this key is in the height's validator set
            params=self.timeouts,
        )
        if self.consensus_journal is not None:
            self.consensus_journal.begin(
                self.machine, max_block_bytes=params.max_block_bytes, max_tx_bytes=params.max_tx_bytes
            )
        self.feed = CommitFeed(store)  # announces each final block (node/ledger/commit_feed.py)
        self._closed = False
        self._inbox: asyncio.Queue[ConsensusInput] = asyncio.Queue()
        self._out_votes: list[Vote] = []
        self._out_proposals: list[ProposalMessage] = []
        self._compact: dict[bytes, wire.CompactBlock] = {}  # proposed blocks waiting for transactions, by hash
        self._fetching: set[bytes] = set()  # values being fetched (ledger_repair._fetch_value)
        self._out_txs: list[bytes] = []
        self._flush = asyncio.Event()
        self._guard = SignGuard(data_dir / "signed_votes.json")
        self._locked_value = LockedValueFile(data_dir / "locked_block.cbor")  # the block of our latest precommit
        # Deliberate crashes for fault-injection tests (node/faults/points.py); none armed unless asked for.
        self.faults = FaultPoints.from_environment()
        self._verified_peers: set[str] = set()
        self._rejected_peers: set[str] = set()
        # Who may gossip (node/ledger/gossip/validation.py); the config's nodes count only if genesis lists no members.
        self.members = MeshMembers(() if genesis.members else config_members)
        # Block sync, started when a peer shows it is ahead (node/ledger/sync/block_sync.py).
        self.block_sync = BlockSync(host, self._final_height, self._peers_to_sync_from, self._import)
        self._last_progress = time.monotonic()
        self._last_regossip = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_pull = 0.0
        self.last_block_time_ms = store.head.time_ms
        self.malformed_messages = 0
        self.committed_at: dict[bytes, float] = {}  # tx hash → monotonic time it became final (bounded)

    # ---- lifecycle --------------------------------------------------------------------------------------

    async def start(self) -> None:
        store, params = self.store, self.genesis.params
        self.host.set_request_handler(wire.LEDGER_PROTOCOL, self._serve, max_request_bytes=4096)
        refresh_members(self.members, store.get_value, store.height)
        judge = LedgerGossipJudge(
            self.chain_id,
            self.members,
            lambda: store.height,
            max_tx_bytes=params.max_tx_bytes,
            decoded=self.mempool.decoded.put,  # decoded once: the pool takes them from there
        )
        judge.guard(self.host.guard_topic)
        self._consensus_sub = await self.host.subscribe(wire.consensus_topic(self.chain_id))
        self._txs_sub = await self.host.subscribe(wire.txs_topic(self.chain_id))
        log.info("ledger at height %d (chain %s)", store.height, self.chain_id)

    async def run(self) -> None:
        machine = self.machine
        replayed = self._guard.votes_at(machine.height)
        for vote in replayed:
            # Signed before a restart: the machine repeats these instead of signing anything new in their slots,
            # and our precommit among them gives back the lock it stands for.
            self._submit(ReceiveVote(vote, verified=True))
        locked = self._locked_value.load()
        if locked is not None and any(v.kind is VoteKind.PRECOMMIT and v.block_hash == locked[0] for v in replayed):
            self._submit(ReceiveValue(*locked))  # the locked block itself
        self._submit(Start())
        async with asyncio.TaskGroup() as group:
            group.create_task(self._drive(), name="ledger-drive")
            group.create_task(self._read_consensus(), name="ledger-consensus-gossip")
            group.create_task(self._read_txs(), name="ledger-tx-gossip")
            group.create_task(self._publish_loop(), name="ledger-publish")
            group.create_task(self._repair_loop(), name="ledger-repair")
            group.create_task(self.journal.run(), name="ledger-mempool-journal")
            group.create_task(self._gossip_restored(), name="ledger-gossip-restored")

    async def stop(self) -> None:
        if not self._closed:
            self._closed = True  # work still in flight (a block sync) checks this before touching the store
            self.block_sync.close()
            self.journal.close()
            if self.consensus_journal is not None:
                self.consensus_journal.close()
            self.store.close()

    # ---- the machine's single driver ---------------------------------------------------------------------

    def _submit(self, item: ConsensusInput) -> None:
        self._inbox.put_nowait(item)

    async def _drive(self) -> None:
        machine, journal = self.machine, self.consensus_journal
        while True:
            item = await self._inbox.get()
            if not self._admit(item):
                continue
            # The clock in integer nanoseconds: a journal holds it exactly, and replay derives the same float.
            now_ns = time.monotonic_ns()
            if journal is not None:
                journal.step_in(item, now_ns)
            try:
                todo = machine.feed(item, now_ns / 1e9)
            except (LedgerError, ValueError) as exc:  # a peer's bad message: counted, never fatal
                if journal is not None:
                    journal.step_out(None, error=str(exc))
                self.malformed_messages += 1
                log.debug("rejected consensus input (%s): %s", describe(item), exc)
                continue
            if journal is not None:
                journal.step_out(todo)
            if isinstance(item, TimeoutExpired) and todo:
                # The timeout moved the round along: a proposal or votes did not come in time.
                timeout = item.timeout
                log.info("height %d round %d: %s timeout", timeout.height, timeout.round, timeout.step.name.lower())
            for action in todo:
                self._handle(action)
            if self._inbox.empty() and (self._out_votes or self._out_proposals):
                self._flush.set()

    def _handle(self, action: actions.Action) -> None:
        if isinstance(action, actions.BroadcastProposal):
            if self._guard.allow_proposal(action.proposal):
                self._out_proposals.append(self._compact_message(action.proposal, action.value))
                self._out_votes.extend(action.proof_of_lock)  # what a node that missed the lock round needs
            else:
                log.warning("withholding a proposal that conflicts with one signed before a restart")
        elif isinstance(action, actions.BroadcastVote):
            self.faults.before_vote_persisted(action.vote)
            self._keep_locked_value(action.vote)
            if self._guard.allow_vote(action.vote):
                self.faults.after_vote_persisted(action.vote)
                self._out_votes.append(action.vote)
            else:
                log.warning("withholding a vote that conflicts with one signed before a restart: %s", action.vote)
        elif isinstance(action, actions.ScheduleTimeout):
            asyncio.get_running_loop().call_at(action.at, self._submit, TimeoutExpired(action.timeout))
        elif isinstance(action, actions.Commit):
            self._commit(action)
        elif isinstance(action, actions.RecordEvidence):
            self._submit_evidence(action)
        elif isinstance(action, actions.RequestValue):
            self._spawn(self._fetch_value(action.height, action.value_hash))

    def _keep_locked_value(self, vote: Vote) -> None:
        """Before our precommit for a block is recorded, the block goes to disk (node/ledger/locked_value.py)."""
        machine = self.machine
        if vote.kind is VoteKind.PRECOMMIT and vote.block_hash is not None:
            value = machine.value(vote.block_hash)
            if value is not None:
                self._locked_value.save(vote.block_hash, value)

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        # The loop holds tasks only weakly: keep a reference until each is done.
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _commit(self, decision: actions.Commit) -> None:
        if decision.height != self.store.height + 1:
            return  # already imported through block sync
        block, result = self.app.executed(decision.value)
        commit = Commit(decision.height, decision.round, decision.value_hash, decision.precommits)
        self._persist(block, commit, result)
        self._go_on()

    def _go_on(self) -> None:
        """After a final block, agreed here or synced: the next height starts now if work waits, else we wait for
        work like the rest of an idle chain (a synced node that started at once woke its idle peers)."""
        store, mempool = self.store, self.mempool
        refresh_members(self.members, store.get_value, store.height)  # an add/remove_member takes effect now
        next_height, validators = store.height + 1, store.next_validators()
        if self._idle is not None:  # a wait that block sync overtook
            self._idle[2].cancel()
            self._idle = None
        # When the next height starts is node/ledger/timing.py's decision: now with work waiting, else on work,
        # on a peer's message for it, or after `idle_block_interval_s` (an idle 4-node cluster that started at
        # once made 3.4 blocks/s, ≈ 1.5 KB of chain each on every node, on 0.4 of a core: `python -m bench.idle`).
        loop = asyncio.get_running_loop()
        wake = self._idle_wake.decided(next_height, mempool.ready_count > 0, loop.time())
        if wake is not None:
            self._start_at(wake, validators)
            return
        handle = loop.call_at(self._idle_wake.deadline, self._idle_timer, next_height)
        self._idle = (next_height, validators, handle)

    def _start_at(self, wake: Wake, validators: ValidatorSet) -> None:
        asyncio.get_running_loop().call_at(wake.at, self._submit, StartHeight(wake.height, validators))

    def _idle_timer(self, height: int) -> None:
        self._wake(self._idle_wake.timer_due(height, asyncio.get_running_loop().time()))

    def _wake(self, wake: Wake | None) -> None:
        """End the idle wait when the timing policy says so: start the awaited height at `wake.at`."""
        idle = self._idle
        if wake is None or idle is None or idle[0] != wake.height:
            return
        self._idle = None
        idle[2].cancel()
        self._start_at(wake, idle[1])

    def _work_arrived(self) -> None:
        if self._idle is not None:  # the common case (a busy chain) costs one attribute test per transaction
            self._wake(self._idle_wake.work_arrived(asyncio.get_running_loop().time()))

    def _persist(self, block: Block, commit: Commit, result: BlockResult) -> None:
        store, mempool = self.store, self.mempool
        store.commit_block(block, commit, result)
        mempool.update(block.txs)
        now = time.monotonic()
        for tx in block.txs:
            self.committed_at[tx.hash] = now
        if len(self.committed_at) > 200_000:
            for tx_hash in list(self.committed_at)[:100_000]:
                del self.committed_at[tx_hash]
        self.last_block_time_ms = block.header.time_ms
        self._last_progress = now
        self._remember_block(block)
        log.debug("height %d final (%d txs)", block.height, len(block.txs))

    def _remember_block(self, block: Block) -> None:
        """`block` is final and stored (agreed here, or imported by block sync): announce it."""
        self.feed.announce(block)

    # ---- the Ledger protocol's reads and waits (node/ledger/protocol.py) --------------------------------

    def final_block(self, height: int) -> Block | None:
        """The final block at `height` (recent ones from memory), or None."""
        return self.feed.block(height)

    def pending(self, tx_hash: bytes) -> bool:
        return tx_hash in self.mempool

    async def final(self, tx_hash: bytes, timeout_s: float) -> Receipt | None:
        return await self.feed.final(tx_hash, timeout_s)

    def committed(self, after: int | None = None) -> AsyncIterator[Block]:
        return self.feed.committed(after)

    def _admit(self, item: ConsensusInput) -> bool:
        """The shell's own check before an input reaches the machine: a start of a height the chain has moved
        past meanwhile (block sync got there first) is dropped here, so it is neither fed nor journaled."""
        if not isinstance(item, StartHeight):
            return True
        machine, store = self.machine, self.store
        if item.height != store.height + 1 or item.height <= machine.height:
            return False
        self._compact = {h: c for h, c in self._compact.items() if c.header.height >= item.height}
        return True

    def _submit_evidence(self, action: actions.RecordEvidence) -> None:
        evidence = action.evidence
        nonce = self.next_nonce(self.key.address)
        tx = Tx.create(self.key, self.chain_id, "evidence", nonce, evidence_body(evidence.vote_a, evidence.vote_b))
        try:
            self.submit_tx(tx.raw)
            log.warning("equivocation by %s recorded as evidence", evidence.validator.hex()[:16])
        except TxError as exc:
            log.warning("could not submit evidence: %s", exc)

    # ---- transactions -----------------------------------------------------------------------------------

    async def _gossip_restored(self) -> None:
        """Gossip what the journal gave back once a peer listens (published before that, it reaches nobody)."""
        topic = wire.txs_topic(self.chain_id)
        while self._restored and not self.host.gossip_peers(topic):  # noqa: ASYNC110 - no event for that in the host
            await asyncio.sleep(0.1)
        self._out_txs.extend(self._restored)
        self._restored = []

    async def durable(self) -> None:
        """Return once every transaction admitted so far is on disk (the mempool journal, fsynced in batches).
        `POST /tx` awaits it before acknowledging. Raises a LedgerError if that write failed."""
        await self.journal.durable()

    def status(self) -> dict[str, object]:
        store = self.store
        return {
            "height": store.height,
            "head_hash": store.head.hash.hex(),
            "state_root": store.state_root.hex(),
            "validators": [v.hex() for v in store.next_validators().members],
            "last_block_time": self.last_block_time_ms,
            # An "open" chain lets any key send: fit for development (local clusters, the demo, benchmarks) only.
            "accounts": self.genesis.params.accounts,
            "development_network": self.genesis.params.accounts == OPEN,
            "mempool": len(self.mempool),
            "consensus": {"height": self.machine.height, "round": self.machine.round},
            "commit_feed": {"subscribers": self.feed.subscribers, "waiters": self.feed.waiters},
            "malformed_messages": self.malformed_messages,
            # What the node's CPU per transaction pays for: Ed25519 checks of tx signatures, blocks executed.
            "work": {
                "signature_checks": self.mempool.checked.checks,
                "block_executions": self.app.executions,
            },
            "gossip": {**self.host.gossip_status(), "members": sorted(self.members.peer_ids)},
        }

    def nonce_of(self, address: bytes) -> int:
        return self._nonce_of_state(address)

    def _check_sender(self, sender: bytes) -> None:
        """The block-validity account rule (consensus/accounts.py) for the next height, so the pool and POST /tx
        refuse (403) what no valid block could hold."""
        store = self.store
        check_sender(self.genesis.params.accounts, store.get_value, sender, store.height + 1)

    def _nonce_of_state(self, address: bytes) -> int:
        return get_nonce(self.store.get_value, address)

    def next_nonce(self, address: bytes) -> int:
        """The nonce a new transaction of `address` should carry, counting its pending transactions."""
        return self.mempool.next_nonce(address)

    def submit_tx(self, raw: bytes) -> Tx:
        """Admit a client's transaction and gossip it. Raises TxError naming the problem."""
        mempool = self.mempool
        if len(mempool) >= self.max_client_backlog:
            raise MempoolFullError(
                f"node is busy: {len(mempool)} transactions wait for a block (at most {self.max_client_backlog}); "
                "retry later"
            )
        tx, admission = mempool.add_raw(raw)
        if admission is not Admission.KNOWN:
            self._out_txs.append(raw)
            self._work_arrived()
        return tx

    # ---- gossip in and out ------------------------------------------------------------------------------

    async def _read_consensus(self) -> None:
        async for message in self._consensus_sub:
            if message.origin in self._rejected_peers:
                continue
            try:
                batch = ConsensusBatch.decode(message.data)
            except MessageError as exc:
                self.malformed_messages += 1
                log.info("malformed consensus gossip from %s: %s", message.origin, exc)
                continue
            self.block_sync.showed_batch(message.origin, batch)  # from further ahead: sync from its origin
            self._feed(batch)

    def _feed(self, batch: ConsensusBatch) -> None:
        if self._idle is not None:
            # A peer that has started the height we are waiting on wakes us (its messages for it are buffered by
            # the machine until then).
            heights = [item.proposal.height for item in batch.proposals] + [vote.height for vote in batch.votes]
            self._wake(self._idle_wake.peer_started(heights, asyncio.get_running_loop().time()))
        for item in batch.proposals:
            proposal = item.proposal
            value = item.value if item.full else self._expand(proposal, item.value) if item.value is not None else None
            self._submit(ReceiveProposal(proposal, value))
        for vote in batch.votes:
            self._submit(ReceiveVote(vote))

    def _regossip(self) -> None:
        """Send our own votes and proposal at the current height again (gossip may have lost them)."""
        machine = self.machine
        me = self.key.public_key
        self._out_votes.extend(v for v in machine.votes() if v.validator == me)
        for round_ in range(machine.round + 1):
            held = machine.proposal(round_)
            # Through the guard: after a restart the machine may hold a proposal the guard withheld (it conflicts
            # with one signed before the crash); re-gossip must not send it either.
            if held is not None and held[0].proposer == me and self._guard.allow_proposal(held[0]):
                self._out_proposals.append(self._compact_message(*held))
                self._out_votes.extend(machine.proof_of_lock(held[0]))
        self._flush.set()
