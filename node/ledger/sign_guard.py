"""SignGuard: a validator never signs two different messages for one consensus slot, even across a crash.

Tendermint's safety assumes an honest validator signs at most one prevote, one precommit and one proposal per
(height, round). A node that crashes after broadcasting and restarts with an empty machine would otherwise sign
afresh — possibly for another block, which is equivocation. So every vote and proposal is written and fsynced
here before it is broadcast. After a restart the shell feeds the votes of the current height back into the
machine (it then repeats them instead of signing new ones) and withholds any message that still conflicts.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from consensus.messages import MessageError
from consensus.proposal import Proposal
from consensus.votes import Vote
from primitives import codec

log = logging.getLogger(__name__)


class SignGuard:
    def __init__(self, path: Path) -> None:
        self._path = path
        # slot "height/round/kind" (kind "P" for a proposal) → signed value hash hex ("nil" for none)
        self._signed: dict[str, str] = {}
        # slot → hex of the signed vote's canonical encoding, so it can be replayed after a restart
        self._votes: dict[str, str] = {}
        if path.exists():
            try:
                saved = json.loads(path.read_text())
                self._signed, self._votes = dict(saved["signed"]), dict(saved["votes"])
            except (ValueError, KeyError, TypeError):
                log.warning("%s is unreadable; starting a new signing record", path)

    def allow_vote(self, vote: Vote) -> bool:
        slot = f"{vote.height}/{vote.round}/{int(vote.kind)}"
        value = vote.block_hash.hex() if vote.block_hash else "nil"
        return self._allow(vote.height, slot, value, codec.encode(vote.to_value()).hex())

    def allow_proposal(self, proposal: Proposal) -> bool:
        slot = f"{proposal.height}/{proposal.round}/P"
        return self._allow(proposal.height, slot, proposal.value_hash.hex(), None)

    def votes_at(self, height: int) -> list[Vote]:
        """The votes signed at `height` before a restart (to be fed back into the machine)."""
        out = []
        for slot, encoded in self._votes.items():
            if int(slot.split("/")[0]) == height:
                try:
                    out.append(Vote.from_value(codec.decode(bytes.fromhex(encoded))))
                except (ValueError, codec.CodecError, MessageError):
                    log.warning("signing record holds an unreadable vote for slot %s", slot)
        return out

    def _allow(self, height: int, slot: str, value: str, encoded: str | None) -> bool:
        held = self._signed.get(slot)
        if held is not None:
            return held == value
        # Keep only the current height's slots: older heights are final and cannot be signed again.
        self._signed = {k: v for k, v in self._signed.items() if int(k.split("/")[0]) >= height}
        self._votes = {k: v for k, v in self._votes.items() if int(k.split("/")[0]) >= height}
        self._signed[slot] = value
        if encoded is not None:
            self._votes[slot] = encoded
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump({"signed": self._signed, "votes": self._votes}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)
        return True
