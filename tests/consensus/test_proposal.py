"""Proposal: signing, domain separation, canonical encoding and validation of peer input."""

from __future__ import annotations

import pytest

from consensus.messages import MessageError
from consensus.proposal import Proposal
from consensus.votes import Vote, VoteKind
from primitives import codec
from tests.consensus.test_machine_harness import CHAIN, make_keys, value_of

KEY = make_keys(1)[0]
_, A = value_of("a")


def proposal(**changes: object) -> Proposal:
    fields: dict[str, object] = {
        "chain_id": CHAIN,
        "height": 3,
        "round": 2,
        "pol_round": 1,
        "value_hash": A,
        "proposer": KEY.public_key,
    }
    fields.update(changes)
    return Proposal(**fields)  # type: ignore[arg-type]


def test_signed_proposal_verifies_and_any_change_breaks_it() -> None:
    signed = proposal().signed(KEY)
    assert signed.verify()
    for change in ({"height": 4}, {"round": 3}, {"pol_round": -1}, {"value_hash": bytes(32)}, {"chain_id": "x"}):
        fields = {**signed.to_value(), **change}  # type: ignore[dict-item]
        assert not Proposal.from_value(fields).verify()


def test_signing_with_another_key_is_refused() -> None:
    with pytest.raises(ValueError, match="proposer"):
        proposal().signed(make_keys(2)[1])


def test_sign_bytes_are_domain_separated_from_votes() -> None:
    decoded = codec.decode(proposal().sign_bytes())
    assert isinstance(decoded, dict) and decoded["type"] == "ehrnet/proposal/v1"
    vote = Vote(VoteKind.PREVOTE, CHAIN, 3, 2, A, KEY.public_key)
    assert vote.sign_bytes() != proposal().sign_bytes()


def test_round_trip_through_the_codec() -> None:
    signed = proposal().signed(KEY)
    assert Proposal.from_value(codec.decode(codec.encode(signed.to_value()))) == signed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pol_round": 2}, "pol_round"),
        ({"pol_round": -2}, "pol_round"),
        ({"height": True}, "height"),
        ({"round": "1"}, "round"),
        ({"value_hash": b"short"}, "value_hash"),
        ({"proposer": b"\x00" * 31}, "proposer"),
        ({"chain_id": 7}, "chain_id"),
        ({"signature": None}, "signature"),
    ],
)
def test_malformed_fields_raise_message_error(change: dict[str, codec.Value], message: str) -> None:
    fields = {**proposal().signed(KEY).to_value(), **change}  # type: ignore[dict-item]
    with pytest.raises(MessageError, match=message):
        Proposal.from_value(fields)


def test_not_a_map_is_rejected() -> None:
    with pytest.raises(MessageError, match="map"):
        Proposal.from_value([1, 2])
