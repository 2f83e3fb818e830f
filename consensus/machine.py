"""The Tendermint consensus state machine as pure logic: messages, timeouts and `now` in; actions out.

This is Algorithm 1 of Buchman, Kwon, Milosevic 2018, "The latest gossip on BFT consensus", for one validator
(or, with no key, for a full node that only follows). Line numbers in comments refer to that algorithm. A value
is final the moment a quorum (⌊2n/3⌋ + 1) of precommits for it exists — immediate finality, no forks while at
most f = ⌊(n − 1)/3⌋ validators are faulty.

Differences from the paper, each safe because the paper's safety argument rests on vote quorums alone:
- Values are opaque bytes named by a hash the application computes. A proposal signs the hash; the value rides
  alongside. Rules 36 and 49 need the value of the quorum's hash, not the proposal that carried it, so a value
  fetched by hash through the repair path (`RequestValue` → `on_value`) is as good as a proposed one.
- After deciding, the machine stays at its height (collecting late precommits) until the shell, having applied
  the block, calls `start_height` with the next validator set; the paper moves on at once (line 54).
- Messages for the next height are buffered (bounded) and replayed then; older and further heights are dropped
  (the shell's block sync serves nodes that fell behind).

Signatures: `on_vote` and `on_proposal` check them unless the caller passes `verified=True` (a shell may verify in
batches or off the event loop). An exact duplicate of a held message is recognised before any signature check.
"""

from __future__ import annotations

from consensus.actions import Action, BroadcastProposal, BroadcastVote, Commit, ScheduleTimeout
from consensus.height_state import Application, HeightState
from consensus.inputs import (
    ConsensusInput,
    ReceiveProposal,
    ReceiveValue,
    ReceiveVote,
    Start,
    StartHeight,
    TimeoutExpired,
)
from consensus.messages import MessageError
from consensus.proposal import Proposal
from consensus.timeouts import Step, Timeout, TimeoutParams
from consensus.votes import ValidatorSet, Vote, VoteKind, max_faulty
from primitives.keys import SigningKey

__all__ = ["Application", "ConsensusInput", "ConsensusMachine"]

Message = Proposal | Vote


class ConsensusMachine:
    """One node's view of consensus at its current height."""

    def __init__(
        self,
        *,
        chain_id: str,
        app: Application,
        height: int,
        validators: ValidatorSet,
        key: SigningKey | None = None,
        params: TimeoutParams | None = None,
        max_round_ahead: int = 1000,
        max_buffered: int = 10_000,
    ) -> None:
        self.chain_id, self.app, self.key = chain_id, app, key
        self.params = params if params is not None else TimeoutParams()
        # Bounds on what Byzantine peers can make us store: rounds far ahead, and next-height messages.
        self.max_round_ahead, self.max_buffered = max_round_ahead, max_buffered
        self._public_key = key.public_key if key is not None else None
        self._started = False
        self._out: list[Action] = []
        self._next_height: dict[bytes, tuple[Message, bytes | None]] = {}
        self._buffered_by: dict[bytes, int] = {}
        self._reset(height, validators)

    def _reset(self, height: int, validators: ValidatorSet) -> None:
        # Lines 1–8 (and line 54's reset on a new height).
        self.height, self.validators = height, validators
        self.round, self.step = 0, Step.PROPOSE
        self.decision: Commit | None = None
        self.locked_value: bytes | None = None
        self.locked_round = -1
        self.valid_value: bytes | None = None
        self.valid_round = -1
        self._held = HeightState(self.chain_id, height, validators, self.app, self._out)
        self._votes = self._held.votes
        self._proposals = self._held.proposals
        self._values = self._held.values
        # Rules that fire "for the first time" per round: lines 34, 36 and 47.
        self._prevote_timeout_rounds: set[int] = set()
        self._valid_rounds_seen: set[int] = set()
        self._decide_checked = -1
        self._precommit_timeout_rounds: set[int] = set()

    # ---- inputs -----------------------------------------------------------------------------------------------

    def feed(self, item: ConsensusInput, now: float) -> list[Action]:
        """Feed one input (consensus/inputs.py) at clock value `now`: the single entry point a shell and a replay
        use, so that the sequence of (input, now) pairs is the whole story of a run. Raises `MessageError` (or
        ValueError for a height that goes backwards) as the per-kind methods below do."""
        match item:
            case Start():
                return self.on_start(now)
            case StartHeight(height, validators):
                return self.start_height(height, validators, now)
            case ReceiveProposal(proposal, value, verified):
                return self.on_proposal(proposal, value, now, verified=verified)
            case ReceiveVote(vote, verified):
                return self.on_vote(vote, now, verified=verified)
            case ReceiveValue(value_hash, value):
                return self.on_value(value_hash, value, now)
            case TimeoutExpired(timeout):
                return self.on_timeout(timeout, now)

    def on_start(self, now: float) -> list[Action]:
        """Line 10: start round 0 of the current height. Messages fed before this are kept and counted."""
        if not self._started:
            self._started = True
            self._start_round(0, now)
            self._progress(now)
        return self._drain()

    def start_height(self, height: int, validators: ValidatorSet, now: float) -> list[Action]:
        """Move to `height` (normally the decided height + 1, or further after block sync) with its validators."""
        if height <= self.height:
            raise ValueError(f"cannot move from height {self.height} back to {height}")
        buffered = [entry for entry in self._next_height.values() if entry[0].height == height]
        self._next_height.clear()
        self._buffered_by.clear()
        self._reset(height, validators)
        for message, value in buffered:
            try:  # signatures were checked when buffered; a sender no longer a validator is dropped quietly
                self._accept(message, value, verified=True)
            except MessageError:
                continue
        if self._started:
            self._start_round(0, now)
            self._progress(now)
        return self._drain()

    def on_proposal(
        self, proposal: Proposal, value: bytes | None, now: float, *, verified: bool = False
    ) -> list[Action]:
        """A proposal (with its value, or None when only the hash came). Raises `MessageError` for a bad one."""
        if self._accept(proposal, value, verified=verified):
            self._progress(now)
        return self._drain()

    def on_vote(self, vote: Vote, now: float, *, verified: bool = False) -> list[Action]:
        """A prevote or precommit. Raises `MessageError` for a wrong chain, a non-member or a bad signature."""
        if self._accept(vote, None, verified=verified):
            self._progress(now)
        return self._drain()

    def on_value(self, value_hash: bytes, value: bytes, now: float) -> list[Action]:
        """A value fetched by hash after `RequestValue`. Raises `MessageError` when it does not match the hash."""
        if self._held.accept_value(value_hash, value):
            self._progress(now)
        return self._drain()

    def on_timeout(self, timeout: Timeout, now: float) -> list[Action]:
        """A timeout scheduled earlier has expired; stale ones (other height, round or step) do nothing."""
        if timeout.height != self.height or timeout.round != self.round or self.decision is not None:
            return []
        if timeout.step is Step.PROPOSE and self.step is Step.PROPOSE:  # lines 57–60
            self._cast(VoteKind.PREVOTE, None)
            self.step = Step.PREVOTE
        elif timeout.step is Step.PREVOTE and self.step is Step.PREVOTE:  # lines 61–64
            self._cast(VoteKind.PRECOMMIT, None)
            self.step = Step.PRECOMMIT
        elif timeout.step is Step.PRECOMMIT:  # lines 65–67
            self._start_round(self.round + 1, now)
        self._progress(now)
        return self._drain()

    # ---- read-only views for the shell ------------------------------------------------------------------------

    def proposal(self, round_: int) -> tuple[Proposal, bytes | None] | None:
        """The proposal held for `round_` at the current height, with its value when known (for repair replies)."""
        found = self._proposals.get(round_)
        return None if found is None else (found, self._values.get(found.value_hash))

    def value(self, value_hash: bytes) -> bytes | None:
        return self._values.get(value_hash)

    def votes(self) -> list[Vote]:
        """Every vote held at the current height (for gossip catch-up and repair replies)."""
        return self._votes.all_votes()

    def proof_of_lock(self, proposal: Proposal) -> tuple[Vote, ...]:
        """The prevotes for `proposal`'s value in its `pol_round` that we hold (a quorum for our own re-proposals):
        what a node that missed that round needs to accept the re-proposal. Empty for a fresh proposal."""
        if proposal.pol_round < 0 or proposal.height != self.height:
            return ()
        return self._votes.prevotes(proposal.pol_round).votes_for(proposal.value_hash)

    # ---- accepting messages -----------------------------------------------------------------------------------

    def _accept(self, message: Message, value: bytes | None, *, verified: bool) -> bool:
        """Store a message if it is new and acceptable; True when the rules need another look."""
        if message.height != self.height:
            if message.height == self.height + 1:
                self._buffer(message, value, verified)
            return False
        if message.chain_id != self.chain_id:
            raise MessageError(f"message for chain {message.chain_id!r}, this is {self.chain_id!r}")
        if message.round > self.round + self.max_round_ahead:
            return False
        if isinstance(message, Proposal):
            return self._held.accept_proposal(message, value, verified)
        changed = self._held.accept_vote(message, verified)
        if changed:
            self._restore_lock(message)
        return changed

    def _restore_lock(self, vote: Vote) -> None:
        """Our own precommit for a value in round r means we locked on it in r (lines 36–38 do both at once).
        After a restart the shell feeds our persisted votes back in; without this the fresh machine would be
        unlocked and could prevote another value in a later round — the very thing the lock forbids, and with a
        block already final at a peer, a fork. (Tendermint gets the same from replaying its write-ahead log.)
        The value itself is asked for at once (the shell may hold it on disk, or peers do): a lock on a value
        nobody can re-propose would stall the height, so `_start_round` re-proposes it once it is here."""
        if (
            vote.validator == self._public_key
            and vote.kind is VoteKind.PRECOMMIT
            and vote.block_hash is not None
            and vote.round > self.locked_round
        ):
            self.locked_value, self.locked_round = vote.block_hash, vote.round
            self._held.request(vote.block_hash, vote.round)

    def _buffer(self, message: Message, value: bytes | None, verified: bool) -> None:
        """Keep a next-height message until `start_height`. Only signed messages from current validators are kept,
        each within an equal share of `max_buffered`, so outsiders cannot crowd out the real ones. (A validator
        joining at the next height is not buffered; re-gossip brings its messages again.)"""
        sender = message.proposer if isinstance(message, Proposal) else message.validator
        if sender not in self.validators or message.signature in self._next_height:
            return
        if self._buffered_by.get(sender, 0) >= self.max_buffered // len(self.validators):
            return
        if not verified and not message.verify():
            raise MessageError("next-height message signature does not verify")
        self._buffered_by[sender] = self._buffered_by.get(sender, 0) + 1
        self._next_height[message.signature] = (message, value)

    # ---- the rules of Algorithm 1 -----------------------------------------------------------------------------

    def _progress(self, now: float) -> None:
        """Apply the "upon" rules until none fires: each firing moves the step or marks a round, so this ends."""
        if not self._started:
            return
        while self.decision is None and (
            self._rule_decide()
            or self._rule_round_skip(now)
            or self._rule_prevote_on_proposal()
            or self._rule_prevote_quorum_any(now)
            or self._rule_prevote_quorum_value()
            or self._rule_prevote_quorum_nil()
            or self._rule_precommit_quorum_any(now)
        ):
            pass

    def _rule_decide(self) -> bool:
        """Lines 49–54, for any round (late precommits of a past round count too)."""
        if self._decide_checked == self._held.decide_revision:
            return False
        self._decide_checked = self._held.decide_revision
        for round_ in self._votes.precommit_rounds():
            precommits = self._votes.precommits(round_)
            for value_hash in precommits.quorum_values():
                if value_hash is None:
                    continue
                if value_hash not in self._values:
                    self._held.request(value_hash, self.round)
                elif self._held.valid(value_hash):
                    votes = precommits.votes_for(value_hash)
                    self.decision = Commit(self.height, round_, value_hash, self._values[value_hash], votes)
                    self._out.append(self.decision)
                    return True
        return False

    def _rule_round_skip(self, now: float) -> bool:
        """Lines 55–56: f + 1 validators are already in a higher round, so at least one honest one is."""
        needed = max_faulty(len(self.validators)) + 1
        ahead = [r for r in self._votes.rounds() if r > self.round] + [r for r in self._proposals if r > self.round]
        for round_ in sorted(set(ahead), reverse=True):
            senders = set(self._votes.voters_in_round(round_))
            if round_ in self._proposals:
                senders.add(self._proposals[round_].proposer)
            if len(senders) >= needed:
                self._start_round(round_, now)
                return True
        return False

    def _rule_prevote_on_proposal(self) -> bool:
        """Lines 22–27 (fresh proposal) and 28–33 (re-proposal backed by a quorum of prevotes in round vr)."""
        proposal = self._proposals.get(self.round)
        if self.step is not Step.PROPOSE or proposal is None or proposal.value_hash not in self._values:
            return False
        value, vr = proposal.value_hash, proposal.pol_round
        if vr == -1:
            acceptable = self.locked_round == -1 or self.locked_value == value
        elif self._votes.prevotes(vr).has_quorum(value):
            acceptable = self.locked_round <= vr or self.locked_value == value
        else:
            return False  # wait for the prevotes of round vr, or for the propose timeout
        self._cast(VoteKind.PREVOTE, value if acceptable and self._held.valid(value) else None)
        self.step = Step.PREVOTE
        return True

    def _rule_prevote_quorum_any(self, now: float) -> bool:
        """Lines 34–35."""
        if self.step is not Step.PREVOTE or self.round in self._prevote_timeout_rounds:
            return False
        if not self._votes.prevotes(self.round).has_quorum_any():
            return False
        self._prevote_timeout_rounds.add(self.round)
        self._schedule(Step.PREVOTE, now)
        return True

    def _rule_prevote_quorum_value(self) -> bool:
        """Lines 36–43: lock on (and precommit) a value a quorum prevoted; remember it as the valid value."""
        if self.step < Step.PREVOTE or self.round in self._valid_rounds_seen:
            return False
        for value in self._votes.prevotes(self.round).quorum_values():
            if value is None:
                continue
            if value not in self._values:
                self._held.request(value, self.round)
                continue
            if not self._held.valid(value):
                continue
            self._valid_rounds_seen.add(self.round)
            if self.step is Step.PREVOTE:
                self.locked_value, self.locked_round = value, self.round
                self._cast(VoteKind.PRECOMMIT, value)
                self.step = Step.PRECOMMIT
            self.valid_value, self.valid_round = value, self.round
            return True
        return False

    def _rule_prevote_quorum_nil(self) -> bool:
        """Lines 44–46."""
        if self.step is not Step.PREVOTE or not self._votes.prevotes(self.round).has_quorum(None):
            return False
        self._cast(VoteKind.PRECOMMIT, None)
        self.step = Step.PRECOMMIT
        return True

    def _rule_precommit_quorum_any(self, now: float) -> bool:
        """Lines 47–48."""
        if self.round in self._precommit_timeout_rounds or not self._votes.precommits(self.round).has_quorum_any():
            return False
        self._precommit_timeout_rounds.add(self.round)
        self._schedule(Step.PRECOMMIT, now)
        return True

    # ---- helpers ----------------------------------------------------------------------------------------------

    def _start_round(self, round_: int, now: float) -> None:
        """Lines 11–21."""
        self.round, self.step = round_, Step.PROPOSE
        me = self._public_key
        if me is None or self.key is None or self.validators.proposer(self.height, round_) != me:
            self._schedule(Step.PROPOSE, now)
            return
        if self.valid_value is None and self.locked_value is not None and self.locked_value in self._values:
            # A lock restored after a restart (`_restore_lock`) whose value has arrived since: line 36 set the
            # valid value with the lock, so re-propose it as the node would have before the crash.
            self.valid_value, self.valid_round = self.locked_value, self.locked_round
        held = self._proposals.get(round_)
        if held is not None and held.value_hash in self._values:
            # Already signed one for this round (e.g. inputs replayed after a restart): never sign a second.
            self._out.append(BroadcastProposal(held, self._values[held.value_hash], self.proof_of_lock(held)))
            return
        if self.valid_value is not None:
            value_hash, value = self.valid_value, self._values[self.valid_value]
        else:
            value = self.app.propose(self.height, round_, now)
            value_hash = self.app.value_hash(value)
        proposal = Proposal(self.chain_id, self.height, round_, self.valid_round, value_hash, me).signed(self.key)
        self._proposals[round_] = proposal
        self._values[value_hash] = value
        self._held.decide_revision += 1
        self._out.append(BroadcastProposal(proposal, value, self.proof_of_lock(proposal)))

    def _cast(self, kind: VoteKind, value_hash: bytes | None) -> None:
        """Sign, count and broadcast our vote, unless we are not a validator at this height."""
        me = self._public_key
        if me is None or self.key is None or me not in self.validators:
            return
        vote_set = self._votes.get(self.round, kind)
        mine = [v for v in vote_set.votes() if v.validator == me]
        if mine:
            # We voted in this slot before (inputs replayed after a restart): repeat that vote, never a new one.
            self._out.append(BroadcastVote(mine[0]))
            return
        vote = Vote(kind, self.chain_id, self.height, self.round, value_hash, me).signed(self.key)
        vote_set.add(vote)
        if kind is VoteKind.PRECOMMIT:
            self._held.decide_revision += 1
        self._out.append(BroadcastVote(vote))

    def _schedule(self, step: Step, now: float) -> None:
        timeout = Timeout(self.height, self.round, step)
        self._out.append(ScheduleTimeout(timeout, now + self.params.duration(step, self.round)))

    def _drain(self) -> list[Action]:
        # Cleared in place: the height state appends to this same list.
        out = list(self._out)
        self._out.clear()
        return out
