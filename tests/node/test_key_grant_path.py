"""The node grants keys only through storage/ehr_vault.py, so the privacy tests cover the code it runs.

The EHRs manager once re-wrapped data keys inline while a separate vault class, used by nothing but the privacy
test, did the same: the test passed whatever the manager did. This test reads the node's imports: no module under
node/ may take the key-wrapping primitives from the record-encryption module (only the key derivation, which is
not a grant), so any new wrapping or sealing has to go through the vault the tests exercise.
"""

from __future__ import annotations

import ast
from pathlib import Path

NODE = Path(__file__).resolve().parents[2] / "node"
# What a node module may import from storage.record_encryption: deriving a user's X25519 pair from their seed.
ALLOWED = {"x25519_from_ed25519_seed"}


def grant_primitives_imported(source: str) -> set[str]:
    """Names a module imports from the record-encryption module beyond `ALLOWED` (a module import counts as all)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "storage.record_encryption":
            found |= {alias.name for alias in node.names} - ALLOWED
        elif isinstance(node, ast.ImportFrom) and node.module == "storage":
            found |= {alias.name for alias in node.names if alias.name == "record_encryption"}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name == "storage.record_encryption"}
    return found


def test_the_checker_sees_an_inline_grant() -> None:
    # What node/ehr/manager.py and node/ehr/filing.py imported before the vault was the one implementation.
    assert grant_primitives_imported("from storage.record_encryption import rewrap, x25519_from_ed25519_seed") == {
        "rewrap"
    }
    assert grant_primitives_imported("from storage.record_encryption import Sealer, new_data_key, wrap_key") == {
        "Sealer",
        "new_data_key",
        "wrap_key",
    }
    assert grant_primitives_imported("from storage import record_encryption") == {"record_encryption"}
    assert grant_primitives_imported("from storage.ehr_vault import EhrVault") == set()


def test_no_node_module_wraps_keys_itself() -> None:
    offenders = {
        str(path.relative_to(NODE.parent)): names
        for path in sorted(NODE.rglob("*.py"))
        if (names := grant_primitives_imported(path.read_text()))
    }
    assert not offenders, f"key wrapping outside storage/ehr_vault.py: {offenders}"
