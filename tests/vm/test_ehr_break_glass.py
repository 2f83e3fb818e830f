"""Break-glass honoured: version 1 of the EHR contract records an emergency access but never lets it open a record;
version 2 (installed over version 1's storage, as the `contract_upgrade` transaction does) serves the doctor's
reads within the access's scope and time window, denies them outside, audits each one, and closes the window on
a misuse verdict."""

from __future__ import annotations

from typing import Any

import pytest

from consensus.contracts import EHR_CONTRACT_NAME, ehr_latest_source
from consensus.vm import code_key, name_key, select_events
from tests.vm.ehr_world import EhrWorld

META = b"m" * 32
WINDOW = 600


def _upgrade(world: EhrWorld) -> None:
    """Replace the code at the `ehr` address and keep its storage (what consensus/contract_upgrade.py does)."""
    address = world.state.get(name_key(EHR_CONTRACT_NAME))
    assert address is not None
    world.state.set(code_key(address), ehr_latest_source().encode())
    assert world.view("contract_version") == 2


def _decision(world: EhrWorld, reader: str, patient: str = "patient") -> Any:
    return world.ok(reader, "retrieve_ehrs", world.pks[patient]).return_value


@pytest.fixture
def world() -> EhrWorld:
    w = EhrWorld.create()
    for cid in ("bafy-a", "bafy-b", "bafy-c"):
        w.ok("manager", "register_ehr", w.pks["patient"], cid, META)
    w.ok("manager", "register_ehr", w.pks["patient2"], "bafy-other", META)
    return w


def test_version_1_records_break_glass_but_never_honours_it(world: EhrWorld) -> None:
    recorded: Any = world.ok("doctor", "break_glass", world.pks["patient"], "unconscious").return_value
    assert recorded["granted"] is True
    assert _decision(world, "doctor")["granted"] is False


def test_break_glass_opens_the_scoped_records_until_the_window_closes(world: EhrWorld) -> None:
    world.ok("doctor", "break_glass", world.pks["patient"], "recorded under version 1")
    _upgrade(world)
    opened = world.ok("doctor", "break_glass_scoped", world.pks["patient"], "bafy-a,bafy-c", WINDOW, "cardiac arrest")
    assert opened.return_value == {
        "granted": True,
        "id": 2,
        "cids": ["bafy-a", "bafy-c"],
        "expires_at": world.time + WINDOW,
    }
    entry = world.view("break_glass_entry", 2)
    assert (entry["scope"], entry["expires_at"], entry["status"]) == ("bafy-a,bafy-c", world.time + WINDOW, "pending")

    # Within the window: served, only the records in scope, audited with the access's id.
    read = world.ok("doctor", "retrieve_ehrs", world.pks["patient"])
    assert read.return_value == {"granted": True, "reason": "break_glass", "cids": ["bafy-a", "bafy-c"]}
    [access] = select_events(read.events, name="access")
    data: Any = access.data
    assert data["break_glass"] == 2
    # Outside the scope: another patient's records stay closed (and that is a penalised denial).
    assert _decision(world, "doctor", "patient2")["granted"] is False
    # After the window: denied, saying why.
    world.time += WINDOW
    late = _decision(world, "doctor")
    assert late == {"granted": False, "reason": "the break-glass window #2 has closed", "cids": []}

    trail = world.view("audit", world.pks["patient"], 0, 10)["entries"]
    assert [(e["kind"], e["granted"], e["reason"], e.get("id")) for e in trail] == [
        ("break_glass", True, "recorded under version 1", 1),
        ("break_glass", True, "cardiac arrest", 2),
        ("retrieve", True, "break_glass", 2),
        ("retrieve", False, "the break-glass window #2 has closed", None),
    ]
    # Storage written by version 1 is still reviewable.
    world.ok("admin", "review_break_glass", 1, "justified")


def test_version_1_call_opens_every_record_for_the_default_window(world: EhrWorld) -> None:
    _upgrade(world)
    opened: Any = world.ok("doctor", "break_glass", world.pks["patient"], "unconscious").return_value
    assert opened["cids"] == ["bafy-a", "bafy-b", "bafy-c"] and opened["expires_at"] == world.time + 3600
    assert _decision(world, "doctor")["cids"] == ["bafy-a", "bafy-b", "bafy-c"]


def test_a_misuse_verdict_closes_the_window_at_once(world: EhrWorld) -> None:
    _upgrade(world)
    world.ok("doctor", "break_glass_scoped", world.pks["patient"], "*", WINDOW, "curious")
    review = world.ok("admin", "review_break_glass", 1, "misuse")
    assert [e.name for e in review.events] == ["break_glass_reviewed", "penalty"]
    assert _decision(world, "doctor")["granted"] is False


def test_the_window_and_scope_are_bounded_and_only_doctors_may_open_one(world: EhrWorld) -> None:
    _upgrade(world)
    patient = world.pks["patient"]
    assert "1 to 86400 seconds" in world.refused("doctor", "break_glass_scoped", patient, "*", 0, "r")
    assert "1 to 86400 seconds" in world.refused("doctor", "break_glass_scoped", patient, "*", 86401, "r")
    assert "scope" in world.refused("doctor", "break_glass_scoped", patient, "", 60, "r")
    assert "break_glass" in world.refused("carer", "break_glass_scoped", patient, "*", 60, "r")


def test_a_user_registered_again_does_not_inherit_a_window(world: EhrWorld) -> None:
    _upgrade(world)
    world.ok("doctor", "break_glass_scoped", world.pks["patient"], "*", WINDOW, "stroke")
    world.ok("admin", "delete_user", world.pks["doctor"])
    world.time += 1
    world.add("doctor", "doctor")
    assert _decision(world, "doctor")["granted"] is False
