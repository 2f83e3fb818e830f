"""Scoring peers that send invalid gossip, and banning them for a time that decays.

py-libp2p 0.8.1 ships a GossipSub peer scorer, but with its default thresholds at −∞ it never acts, and even a
tuned one only stops gossiping with a peer: it never disconnects it. ehrnet's mesh is permissioned, so a peer that
keeps sending messages our topic validators reject (docs/PROTOCOL.md §2, "Validation and scoring") is cut off
instead: its connection is closed and it is refused for the length of its ban.

The rules, all pure (the caller passes `now`, so tests drive a fake clock):

- every rejected message adds `penalty` to the forwarding peer's score, and scores decay exponentially with
  half-life `half_life_s`: a burst of rejections bans, a rare one is forgotten;
- a score reaching `ban_threshold` bans the peer for `first_ban_s`; each further ban within `ban_memory_s` of
  the last doubles the length, up to `max_ban_s`; after `ban_memory_s` without a ban the record is dropped and
  the next ban is short again (so bans decay too, and an honest peer that once misbehaved is not cut off for good);
- a ban resets the score: the ban is the punishment, and the peer starts from zero when it comes back.

Only messages a member could not have sent honestly are penalised (malformed, a bad signature, a non-member
sender): the validators ignore messages for heights outside their window or from signers of sets they do not
know yet, so an honest member that lags or restarts is never scored (node/ledger/gossip/validation.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ScoreSettings:
    penalty: float = 1.0
    ban_threshold: float = 10.0  # about ten rejected messages within a half-life
    half_life_s: float = 60.0
    first_ban_s: float = 60.0
    max_ban_s: float = 3600.0
    ban_memory_s: float = 3600.0


@dataclass
class _Record:
    score: float = 0.0
    scored_at: float = 0.0
    banned_until: float = -math.inf
    bans: int = 0
    last_ban: float = -math.inf


class PeerScorer:
    """Per-peer decaying scores and bans. Not thread-safe; one per host."""

    def __init__(self, settings: ScoreSettings | None = None) -> None:
        self.settings = settings or ScoreSettings()
        self._records: dict[str, _Record] = {}

    def score(self, peer: str, now: float) -> float:
        record = self._records.get(peer)
        return 0.0 if record is None else self._decayed(record, now)

    def _decayed(self, record: _Record, now: float) -> float:
        elapsed = max(0.0, now - record.scored_at)
        factor: float = 0.5 ** (elapsed / self.settings.half_life_s)
        return record.score * factor

    def penalise(self, peer: str, now: float, weight: float = 1.0) -> float | None:
        """Count one rejected message from `peer`; returns the time its ban ends if this penalty bans it."""
        s = self.settings
        record = self._records.setdefault(peer, _Record(scored_at=now))
        if record.banned_until > now:
            return None  # already banned (a message that raced the close)
        record.score = self._decayed(record, now) + s.penalty * weight
        record.scored_at = now
        if record.score < s.ban_threshold:
            return None
        if now - record.last_ban > s.ban_memory_s:
            record.bans = 0
        record.bans += 1
        length = min(s.max_ban_s, s.first_ban_s * 2.0 ** (record.bans - 1))
        record.banned_until, record.last_ban, record.score = now + length, now, 0.0
        return record.banned_until

    def banned_until(self, peer: str, now: float) -> float | None:
        record = self._records.get(peer)
        if record is None or record.banned_until <= now:
            return None
        return record.banned_until

    def banned(self, now: float) -> dict[str, float]:
        """Peers banned at `now`, with the time each ban ends."""
        return {peer: r.banned_until for peer, r in self._records.items() if r.banned_until > now}

    def forget_idle(self, now: float) -> None:
        """Drop records with nothing left to remember (score decayed away, no ban to recall), bounding memory."""
        s = self.settings
        for peer, record in list(self._records.items()):
            quiet = self._decayed(record, now) < 0.01 * s.penalty and now - record.last_ban > s.ban_memory_s
            if quiet and record.banned_until <= now:
                del self._records[peer]
