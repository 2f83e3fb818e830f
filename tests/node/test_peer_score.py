"""The gossip scorer (node/p2p/peer_score.py) on a fake clock: scores decay, bans last and lengthen, and are
forgotten."""

from __future__ import annotations

import pytest

from node.p2p.peer_score import PeerScorer, ScoreSettings

SETTINGS = ScoreSettings(penalty=1.0, ban_threshold=10.0, half_life_s=60.0, first_ban_s=60.0, max_ban_s=600.0)


def test_a_burst_of_rejections_bans_and_the_ban_ends() -> None:
    scorer = PeerScorer(SETTINGS)
    bans = [scorer.penalise("bad", now=100.0) for _ in range(10)]
    assert bans[:9] == [None] * 9
    assert bans[9] == pytest.approx(160.0)
    assert scorer.banned_until("bad", 159.0) == pytest.approx(160.0)
    assert scorer.banned_until("bad", 160.0) is None
    assert scorer.score("bad", 160.0) == 0.0  # the ban was the punishment: it comes back clean


def test_scores_decay_so_rare_rejections_never_ban() -> None:
    scorer = PeerScorer(SETTINGS)
    now = 0.0
    for _ in range(500):  # one rejection a minute, for over eight hours
        assert scorer.penalise("lagging-but-odd", now) is None
        now += 60.0
    assert scorer.score("lagging-but-odd", now) < 2.0  # 1 + 1/2 + 1/4 + … stays below 2


def test_half_life_halves_the_score() -> None:
    scorer = PeerScorer(SETTINGS)
    for _ in range(8):
        scorer.penalise("p", 0.0)
    assert scorer.score("p", 0.0) == pytest.approx(8.0)
    assert scorer.score("p", 60.0) == pytest.approx(4.0)
    assert scorer.score("p", 120.0) == pytest.approx(2.0)
    assert scorer.penalise("p", 120.0) is None and scorer.score("p", 120.0) == pytest.approx(3.0)


def test_repeat_offenders_get_doubling_bans_up_to_the_cap_and_are_forgiven_after_the_memory() -> None:
    scorer = PeerScorer(SETTINGS)
    now, lengths = 0.0, []
    for _ in range(6):
        until = None
        while until is None:
            until = scorer.penalise("bad", now)
        lengths.append(until - now)
        now = until  # comes back when the ban ends, and misbehaves again
    assert lengths == [60.0, 120.0, 240.0, 480.0, 600.0, 600.0]
    now += SETTINGS.ban_memory_s + 1  # an hour without a ban
    until = None
    while until is None:
        until = scorer.penalise("bad", now)
    assert until - now == 60.0


def test_penalties_while_banned_do_not_extend_the_ban_and_idle_records_are_dropped() -> None:
    scorer = PeerScorer(SETTINGS)
    for _ in range(10):
        scorer.penalise("bad", 0.0)
    assert scorer.penalise("bad", 30.0) is None  # a message that raced the close
    assert scorer.banned(30.0) == {"bad": 60.0}
    scorer.penalise("other", 0.0)
    scorer.forget_idle(10_000.0)
    assert scorer.score("other", 10_000.0) == 0.0 and scorer.banned(10_000.0) == {}
