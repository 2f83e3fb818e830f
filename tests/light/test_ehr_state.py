"""Reading the ehr contract's storage layout through a (fake) verified follower: the keys asked for, the values
decoded, and what a missing or malformed value means."""

from __future__ import annotations

from typing import Any, cast

import pytest

from node.light.ehr_state import EhrState, NotRegisteredError, contract_state_key, name_state_key
from node.light.errors import LightError
from node.light.follower import Follower, VerifiedState
from primitives import codec

ADDRESS = bytes(range(20))
PATIENT_PK, PATIENT_UID, DOCTOR_UID = b"\x01" * 32, b"\x0a" * 20, b"\x0d" * 20


class FakeFollower:
    """Answers from a dict of contract keys, as a follower does after checking each proof."""

    def __init__(self, contract: dict[bytes, codec.Value], height: int = 7) -> None:
        self.height = height
        self.asked: list[bytes] = []
        self.state = {name_state_key("ehr"): ADDRESS}
        self.state.update({contract_state_key(ADDRESS, k): codec.encode(v) for k, v in contract.items()})

    async def get_state(self, key: bytes) -> VerifiedState:
        self.asked.append(key)
        return VerifiedState(key, self.state.get(key), self.height, "fake")


def ehr(contract: dict[bytes, Any]) -> tuple[EhrState, FakeFollower]:
    follower = FakeFollower(contract)
    return EhrState(cast(Follower, follower)), follower


async def test_records_policy_and_audit_follow_the_contract_layout() -> None:
    record = {"cid": "bafkreia", "meta_hash": bytes(32), "by": DOCTOR_UID, "time": 1}
    state, follower = ehr(
        {
            b"k/" + PATIENT_PK: PATIENT_UID,
            b"r/" + PATIENT_UID: 2,
            b"r/" + PATIENT_UID + b"/0": record,
            b"r/" + PATIENT_UID + b"/1": {**record, "cid": "bafkreib"},
            b"cid/bafkreib": PATIENT_UID,
            b"p/" + PATIENT_UID + DOCTOR_UID: {"scope": "*", "expires_at": 0},
            b"a/" + PATIENT_UID: 3,
            **{b"a/" + PATIENT_UID + b"/" + str(n).encode(): {"kind": "retrieve", "n": n} for n in range(3)},
        }
    )
    uid = await state.uid_of(PATIENT_PK)
    assert uid == PATIENT_UID
    assert [r["cid"] for r in await state.records(uid)] == ["bafkreia", "bafkreib"]
    assert await state.record_owner("bafkreib") == PATIENT_UID and await state.record_owner("bafkreic") is None
    policy = await state.policy(uid, DOCTOR_UID)
    assert policy.value == {"scope": "*", "expires_at": 0} and policy.height == 7
    assert (await state.policy(uid, PATIENT_UID)).value is None
    total, entries = await state.audit(uid, last=2)
    assert total == 3 and [e["n"] for e in entries] == [1, 2]
    # The contract's address is proven once, then every read is a key under it.
    assert follower.asked.count(name_state_key("ehr")) == 1
    assert all(k.startswith(b"vm/c/" + ADDRESS + b"/s/") for k in follower.asked[1:])


async def test_unregistered_keys_and_empty_lists() -> None:
    state, _ = ehr({})
    with pytest.raises(NotRegisteredError, match="not a registered key"):
        await state.uid_of(PATIENT_PK)
    assert await state.records(PATIENT_UID) == []
    assert await state.audit(PATIENT_UID, 10) == (0, [])


async def test_a_chain_without_the_contract_or_with_a_malformed_count_is_an_error() -> None:
    state, follower = ehr({b"r/" + PATIENT_UID: "two"})
    with pytest.raises(LightError, match="should hold a count"):
        await state.records(PATIENT_UID)
    del follower.state[name_state_key("ehr")]
    with pytest.raises(LightError, match="no contract named 'ehr'"):
        await EhrState(cast(Follower, follower)).records(PATIENT_UID)
