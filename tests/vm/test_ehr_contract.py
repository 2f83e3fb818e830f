"""The EHR access-control contract: every function, allowed and forbidden callers, expiry, revocation,
suspension after penalties, key rotation, erasure, break-glass review and the audit trail."""

from __future__ import annotations

import pytest

from consensus.contracts import EHR_CONTRACT_NAME, deploy_ehr, ehr_source
from consensus.vm import VM, BlockInfo, MemoryStorage, name_key, select_events
from tests.vm.ehr_world import EhrWorld, enc_key, key

META = b"m" * 32


@pytest.fixture
def world() -> EhrWorld:
    return EhrWorld.create()


def _register(world: EhrWorld, *cids: str, patient: str = "patient") -> None:
    for cid in cids:
        world.ok("manager", "register_ehr", world.pks[patient], cid, META)


def test_genesis_admins_come_from_init() -> None:
    world = EhrWorld.create(extra_admins=("admin2",))
    assert world.view("get_user", world.pks["admin2"])["role"] == "admin"
    world.ok("admin2", "add_user", key("nurse"), "carer", enc_key("nurse"), "")


def test_init_needs_an_admin() -> None:
    world = EhrWorld()
    receipt = world.vm.deploy(world.state, key("admin"), ehr_source(), [[]], block=world.block, gas_limit=10**6)
    assert receipt.status == "reverted" and receipt.error is not None and "admin" in receipt.error
    assert world.state.items == {}


def test_add_user_records_role_keys_and_area(world: EhrWorld) -> None:
    user = world.view("get_user", world.pks["patient"])
    assert user["role"] == "patient" and user["area_id"] == "area-7"
    assert user["enc_pk"] == enc_key("patient") and user["uid"] == world.uid("patient")
    assert user["warnings"] == 0 and user["suspended"] is False
    assert world.view("get_user", key("nobody")) is None


@pytest.mark.parametrize("sender", ["manager", "edge", "doctor", "carer", "patient", "stranger"])
def test_only_admins_add_users(world: EhrWorld, sender: str) -> None:
    assert "add_user" in world.refused(sender, "add_user", key("x"), "doctor", enc_key("x"), "")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((key("x"), "wizard", enc_key("x"), ""), "unknown role"),
        ((b"short", "doctor", enc_key("x"), ""), "32-byte"),
        ((key("x"), "doctor", b"short", ""), "32-byte"),
        ((key("x"), "patient", enc_key("x"), ""), "area_id"),
        ((key("doctor"), "doctor", enc_key("x"), ""), "already registered"),
    ],
)
def test_add_user_rejects_bad_input(world: EhrWorld, args: tuple[bytes, str, bytes, str], words: str) -> None:
    assert words in world.refused("admin", "add_user", *args)


def test_register_ehr_by_manager_or_edge_only(world: EhrWorld) -> None:
    first = world.ok("manager", "register_ehr", world.pks["patient"], "bafy-a", META)
    second = world.ok("edge", "register_ehr", world.pks["patient"], "bafy-b", META)
    assert (first.return_value, second.return_value) == (0, 1)
    assert first.events[0].name == "ehr_registered"
    for sender in ("admin", "doctor", "carer", "patient", "stranger"):
        assert "register_ehr" in world.refused(sender, "register_ehr", world.pks["patient"], "bafy-c", META)
    assert "already registered" in world.refused("manager", "register_ehr", world.pks["patient2"], "bafy-a", META)
    assert "no such patient" in world.refused("manager", "register_ehr", world.pks["doctor"], "bafy-d", META)
    assert "meta_hash" in world.refused("manager", "register_ehr", world.pks["patient"], "bafy-e", b"x")
    assert "cid" in world.refused("manager", "register_ehr", world.pks["patient"], "", META)


def test_patient_reads_own_records(world: EhrWorld) -> None:
    _register(world, "bafy-a", "bafy-b")
    result = world.ok("patient", "retrieve_ehrs", world.pks["patient"]).return_value
    assert result == {"granted": True, "reason": "own records", "cids": ["bafy-a", "bafy-b"]}


def test_denial_is_a_successful_call_that_warns_and_is_audited(world: EhrWorld) -> None:
    _register(world, "bafy-a")
    receipt = world.ok("doctor", "retrieve_ehrs", world.pks["patient"])
    assert receipt.return_value == {"granted": False, "reason": "no policy grants access", "cids": []}
    assert [e.name for e in receipt.events] == ["access", "penalty"]
    assert world.view("get_user", world.pks["doctor"])["warnings"] == 1
    trail = world.view("audit", world.pks["patient"], 0, 10)
    assert trail["total"] == 1 and trail["entries"][0]["granted"] is False
    assert trail["entries"][0]["requester"] == world.uid("doctor")


def test_unregistered_requester_is_denied_without_penalty(world: EhrWorld) -> None:
    receipt = world.ok("stranger", "retrieve_ehrs", world.pks["patient"])
    assert receipt.return_value["granted"] is False  # type: ignore[index, call-overload]
    assert [e.name for e in receipt.events] == ["access"]


def test_policy_grants_scoped_access(world: EhrWorld) -> None:
    _register(world, "bafy-a", "bafy-b", "bafy-c")
    world.ok("admin", "set_policy", world.pks["patient"], world.pks["doctor"], "*", 0)
    world.ok("patient", "set_policy", world.pks["patient"], world.pks["carer"], "bafy-b,bafy-c,bafy-z", 0)
    doctor = world.ok("doctor", "retrieve_ehrs", world.pks["patient"]).return_value
    carer = world.ok("carer", "retrieve_ehrs", world.pks["patient"]).return_value
    assert doctor["cids"] == ["bafy-a", "bafy-b", "bafy-c"]  # type: ignore[index, call-overload]
    assert carer["cids"] == ["bafy-b", "bafy-c"]  # type: ignore[index, call-overload]
    listing = world.view("policy_list", world.pks["patient"])
    assert [(p["grantee_pk"], p["scope"], p["active"]) for p in listing] == [
        (world.pks["doctor"], "*", True),
        (world.pks["carer"], "bafy-b,bafy-c,bafy-z", True),
    ]


@pytest.mark.parametrize("sender", ["doctor", "carer", "manager", "edge", "patient2", "stranger"])
def test_only_admin_or_the_patient_sets_and_revokes_policy(world: EhrWorld, sender: str) -> None:
    assert "set_policy" in world.refused(sender, "set_policy", world.pks["patient"], world.pks["doctor"], "*", 0)
    world.ok("admin", "set_policy", world.pks["patient"], world.pks["doctor"], "*", 0)
    assert "revoke_policy" in world.refused(sender, "revoke_policy", world.pks["patient"], world.pks["doctor"])


def test_set_policy_rejects_bad_input(world: EhrWorld) -> None:
    p, d = world.pks["patient"], world.pks["doctor"]
    assert "no such patient" in world.refused("admin", "set_policy", d, p, "*", 0)
    assert "no such grantee" in world.refused("admin", "set_policy", p, key("ghost"), "*", 0)
    assert "own records" in world.refused("admin", "set_policy", p, p, "*", 0)
    assert "scope" in world.refused("admin", "set_policy", p, d, "", 0)
    assert "future" in world.refused("admin", "set_policy", p, d, "*", world.time)


def test_expired_policy_denies_and_shows_inactive(world: EhrWorld) -> None:
    _register(world, "bafy-a")
    world.ok("patient", "set_policy", world.pks["patient"], world.pks["doctor"], "*", world.time + 60)
    assert world.ok("doctor", "retrieve_ehrs", world.pks["patient"]).return_value["granted"] is True  # type: ignore[index, call-overload]
    world.time += 60
    denied = world.ok("doctor", "retrieve_ehrs", world.pks["patient"]).return_value
    assert denied == {"granted": False, "reason": "the policy has expired", "cids": []}
    assert world.view("policy_list", world.pks["patient"])[0]["active"] is False


def test_revocation_ends_access(world: EhrWorld) -> None:
    _register(world, "bafy-a")
    world.ok("patient", "set_policy", world.pks["patient"], world.pks["carer"], "*", 0)
    world.ok("patient", "revoke_policy", world.pks["patient"], world.pks["carer"])
    assert world.ok("carer", "retrieve_ehrs", world.pks["patient"]).return_value["granted"] is False  # type: ignore[index, call-overload]
    assert world.view("policy_list", world.pks["patient"]) == []
    assert "no such policy" in world.refused("admin", "revoke_policy", world.pks["patient"], world.pks["carer"])


def test_penalties_suspend_after_the_configured_number(world: EhrWorld) -> None:
    world.ok("admin", "set_max_warnings", 2)
    first = world.ok("carer", "retrieve_ehrs", world.pks["patient"])
    assert "suspended" not in [e.name for e in first.events]
    second = world.ok("carer", "retrieve_ehrs", world.pks["patient"])
    assert [e.name for e in second.events] == ["access", "penalty", "suspended"]
    assert world.view("get_user", world.pks["carer"])["suspended"] is True
    # A suspended user is denied without more penalties and cannot use restricted functions.
    third = world.ok("carer", "retrieve_ehrs", world.pks["patient"])
    assert third.return_value["reason"] == "the requester is suspended"  # type: ignore[index, call-overload]
    assert [e.name for e in third.events] == ["access"]
    world.ok("admin", "reinstate", world.pks["carer"])
    assert world.view("get_user", world.pks["carer"])["suspended"] is False


def test_admin_penalty_and_its_callers(world: EhrWorld) -> None:
    assert world.ok("admin", "penalty", world.pks["edge"], "spam").return_value == 1
    assert world.ok("admin", "penalty", world.pks["edge"], "spam").return_value == 2
    world.ok("admin", "penalty", world.pks["edge"], "spam")
    assert world.view("get_user", world.pks["edge"])["suspended"] is True
    assert "suspended" in world.refused("edge", "register_ehr", world.pks["patient"], "bafy-x", META)
    for sender in ("doctor", "manager", "patient"):
        assert "penalty" in world.refused(sender, "penalty", world.pks["edge"], "x")
    assert "set_max_warnings" in world.refused("doctor", "set_max_warnings", 5)
    assert "at least 1" in world.refused("admin", "set_max_warnings", 0)


def test_rotate_key_keeps_identity_and_policies(world: EhrWorld) -> None:
    _register(world, "bafy-a")
    world.ok("patient", "set_policy", world.pks["patient"], world.pks["doctor"], "*", 0)
    new = key("doctor-phone-2")
    receipt = world.ok("doctor", "rotate_key", new)
    assert receipt.events[0].name == "key_rotated"
    old = world.pks["doctor"]
    world.pks["doctor"] = new
    assert world.ok("doctor", "retrieve_ehrs", world.pks["patient"]).return_value["granted"] is True  # type: ignore[index, call-overload]
    assert world.view("get_user", old) is None
    assert world.view("get_user", new)["uid"] == world.uid("doctor")
    assert "already registered" in world.refused("doctor", "rotate_key", world.pks["carer"])
    assert "not a registered user" in world.refused("stranger", "rotate_key", key("y"))


def test_admin_recovers_a_lost_key(world: EhrWorld) -> None:
    new = key("patient-new-phone")
    assert "recover_key" in world.refused("doctor", "recover_key", world.pks["patient"], new)
    world.ok("admin", "recover_key", world.pks["patient"], new)
    assert world.view("get_user", new)["uid"] == world.uid("patient")
    assert "no such user" in world.refused("admin", "recover_key", key("ghost"), key("z"))


def test_delete_user_erases_records_and_policies(world: EhrWorld) -> None:
    _register(world, "bafy-a", "bafy-b")
    world.ok("patient", "set_policy", world.pks["patient"], world.pks["doctor"], "*", 0)
    assert "delete_user" in world.refused("doctor", "delete_user", world.pks["patient"])
    receipt = world.ok("admin", "delete_user", world.pks["patient"])
    erasure = list(select_events(receipt.events, name="erasure"))
    assert erasure[0].data == {
        "uid": world.uid("patient"),
        "pk": world.pks["patient"],
        "role": "patient",
        "cids": ["bafy-a", "bafy-b"],
    }
    assert world.view("get_user", world.pks["patient"]) is None
    # The CIDs are free again and the patient is gone for every function.
    assert "no such patient" in world.refused("doctor", "retrieve_ehrs", world.pks["patient"])
    assert "delete_user" in world.refused("admin", "delete_user", world.pks["admin"])
    assert "no such user" in world.refused("admin", "delete_user", world.pks["patient"])


def test_deleting_a_grantee_drops_their_grants_for_good(world: EhrWorld) -> None:
    _register(world, "bafy-a")
    world.ok("patient", "set_policy", world.pks["patient"], world.pks["carer"], "*", 0)
    world.ok("patient2", "set_policy", world.pks["patient2"], world.pks["carer"], "*", 0)
    world.ok("patient", "set_policy", world.pks["patient"], world.pks["doctor"], "*", 0)
    world.ok("admin", "delete_user", world.pks["carer"])
    assert [p["grantee_pk"] for p in world.view("policy_list", world.pks["patient"])] == [world.pks["doctor"]]
    assert world.view("policy_list", world.pks["patient2"]) == []
    world.add("carer", "carer")  # the same key registered again starts with no access
    denied = world.ok("carer", "retrieve_ehrs", world.pks["patient"]).return_value
    assert denied["granted"] is False  # type: ignore[index, call-overload]


def test_break_glass_grants_flags_and_is_reviewed(world: EhrWorld) -> None:
    _register(world, "bafy-a")
    for sender in ("carer", "admin", "patient", "manager"):
        assert "break_glass" in world.refused(sender, "break_glass", world.pks["patient"], "unconscious")
    receipt = world.ok("doctor", "break_glass", world.pks["patient"], "unconscious in A&E")
    assert receipt.return_value == {"granted": True, "id": 1, "cids": ["bafy-a"]}
    patient_visible = list(select_events(receipt.events, where={"patient": world.uid("patient")}))
    assert [e.name for e in patient_visible] == ["break_glass"]
    assert world.view("break_glass_entry", 1)["status"] == "pending"
    assert "review_break_glass" in world.refused("doctor", "review_break_glass", 1, "justified")
    assert "verdict" in world.refused("admin", "review_break_glass", 1, "maybe")
    assert "no such" in world.refused("admin", "review_break_glass", 9, "misuse")
    review = world.ok("admin", "review_break_glass", 1, "misuse")
    assert [e.name for e in review.events] == ["break_glass_reviewed", "penalty"]
    assert world.view("get_user", world.pks["doctor"])["warnings"] == 1
    assert "already reviewed" in world.refused("admin", "review_break_glass", 1, "justified")
    trail = world.view("audit", world.pks["patient"], 0, 10)["entries"]
    assert [(e["kind"], e["reason"]) for e in trail] == [
        ("break_glass", "unconscious in A&E"),
        ("break_glass_review", "misuse"),
    ]


def test_justified_break_glass_is_not_penalised(world: EhrWorld) -> None:
    world.ok("doctor", "break_glass", world.pks["patient"], "cardiac arrest")
    world.ok("admin", "review_break_glass", 1, "justified")
    assert world.view("get_user", world.pks["doctor"])["warnings"] == 0
    assert world.view("break_glass_entry", 1)["reviewed_by"] == world.uid("admin")


def test_audit_pages_and_checks_bounds(world: EhrWorld) -> None:
    for _ in range(5):
        world.ok("patient", "retrieve_ehrs", world.pks["patient"])
    page = world.view("audit", world.pks["patient"], 3, 10)
    assert page["total"] == 5 and len(page["entries"]) == 2
    bad = world.vm.view(world.state, "ehr", "audit", [world.pks["patient"], 0, 1000], block=world.block)
    assert bad.status == "reverted"


def test_every_decision_is_an_event(world: EhrWorld) -> None:
    _register(world, "bafy-a")
    world.ok("admin", "set_policy", world.pks["patient"], world.pks["doctor"], "*", 0)
    granted = world.ok("doctor", "retrieve_ehrs", world.pks["patient"])
    denied = world.ok("carer", "retrieve_ehrs", world.pks["patient"])
    decisions = [e.data for e in (*granted.events, *denied.events) if e.name == "access"]
    assert [d["granted"] for d in decisions] == [True, False]  # type: ignore[index, call-overload]


def test_deploy_ehr_helper_registers_the_well_known_name() -> None:
    vm, state = VM(), MemoryStorage()
    receipt = deploy_ehr(vm, state, key("root"), [key("root"), key("ops")], block=BlockInfo(0, 0), gas_limit=10**6)
    assert receipt.ok and state.get(name_key(EHR_CONTRACT_NAME)) == receipt.address
    admins = [vm.view(state, "ehr", "get_user", [key(k)], block=BlockInfo(0, 0)).return_value for k in ("root", "ops")]
    assert [a["role"] for a in admins] == ["admin", "admin"]  # type: ignore[index, call-overload]
