"""The sharing and admin commands without a network: option parsing, exit code 2 naming the bad option, and the
contract storage keys the light client proves (checked against the ledger's own functions)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.contract_txs import VM_PREFIX
from consensus.contract_txs import contract_state_key as ledger_state_key
from consensus.vm import name_key
from node.cli import admin as admin_cli
from node.cluster.config import dump_network, generate_network
from node.light import args as parse
from node.light import cli, ehr_state
from node.p2p.identity import peer_id_of_public_key
from primitives.keys import SigningKey

NOW = 1_800_000_000
PK = "ab" * 32


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    cli.register(sub)
    admin_cli.register(sub)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code, capsys.readouterr().err


@given(address=st.binary(min_size=20, max_size=20), key=st.binary(min_size=1, max_size=256))
@settings(max_examples=50)
def test_state_keys_match_the_ledger(address: bytes, key: bytes) -> None:
    assert ehr_state.contract_state_key(address, key) == ledger_state_key(address, key)


def test_the_contract_name_key_matches_the_ledger() -> None:
    assert ehr_state.name_state_key("ehr") == VM_PREFIX + name_key("ehr")


def test_public_keys_in_hex_or_as_peer_ids() -> None:
    key = SigningKey(bytes(range(32))).public_key
    assert parse.public_key(key.hex(), "--to") == key
    assert parse.public_key(peer_id_of_public_key(key), "--pk") == key
    for bad in ("", "zz", "ab" * 31, "12D3KooWnotapeerid"):
        with pytest.raises(parse.UsageError, match=r"^--to|^--pk"):
            parse.public_key(bad, "--pk" if bad.startswith("12D3") else "--to")


def test_expiry_forms() -> None:
    assert parse.expiry("never", NOW) == 0 and parse.expiry("0", NOW) == 0
    assert parse.expiry("+90s", NOW) == NOW + 90 and parse.expiry("+2h", NOW) == NOW + 7200
    assert parse.expiry("+7d", NOW) == NOW + 7 * 86400
    assert parse.expiry(str(NOW + 5), NOW) == NOW + 5
    assert parse.expiry("2030-01-01T00:00:00", NOW) == 1_893_456_000  # no zone: UTC
    assert parse.expiry("2030-01-01T02:00:00+02:00", NOW) == 1_893_456_000
    assert parse.expiry("2030-01-01T00:00:00+00:00", NOW) == 1_893_456_000
    for bad, why in (
        ("+0h", "future"),
        (str(NOW), "not in the future"),
        ("2020-01-01", "not in the future"),
        ("soon", "expected"),
    ):
        with pytest.raises(parse.UsageError, match=f"^--expires .*{why}"):
            parse.expiry(bad, NOW)


def test_scope_and_tasks() -> None:
    assert parse.scope("*") == "*"
    assert parse.scope(" bafkreia , bafkreib ") == "bafkreia,bafkreib"
    for bad in ("", "a,,b", "a b", "x" * 5000):
        with pytest.raises(parse.UsageError, match=r"^--scope"):
            parse.scope(bad)
    assert parse.tasks("hrv:600,tremor:20") == [("hrv/1", 600.0), ("tremor/1", 20.0)]
    for bad, why in (("ecg:60", "unknown task"), ("hrv", "TASK:SECONDS"), ("hrv:5", "10 to 600")):
        with pytest.raises(parse.UsageError, match=f"^--tasks.*{why}"):
            parse.tasks(bad)


def test_light_commands_name_the_bad_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = ["--config", str(tmp_path / "net.toml"), "--data-dir", str(tmp_path / "phone")]
    cases = [
        (["light", "grant", *where, "--to", "xyz"], "--to 'xyz'"),
        (["light", "grant", *where, "--to", PK, "--expires", "yesterday"], "--expires 'yesterday'"),
        (["light", "grant", *where, "--to", PK, "--scope", "a b"], "--scope"),
        (["light", "revoke", *where, "--to", "12"], "--to '12'"),
        (["light", "request", *where, "--patient", "nope"], "--patient 'nope'"),
        (["light", "audit", *where, "--last", "0"], "--last '0'"),
        (["light", "offload", *where, "--tasks", "hrv:1"], "--tasks"),
        (["light", "records", *where], "cannot read config"),
    ]
    for argv, message in cases:
        code, err = run(argv, capsys)
        assert code == 2 and message in err, (argv, err)


def test_light_commands_refuse_an_unresolved_config_or_a_missing_identity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = tmp_path / "local4.toml"
    template.write_text(dump_network(generate_network(4)))
    code, err = run(["light", "records", "--config", str(template), "--data-dir", str(tmp_path)], capsys)
    assert code == 2 and "not resolved" in err
    out = tmp_path / "out-file"
    out.write_text("x")
    argv = ["light", "request", "--config", str(template), "--data-dir", str(tmp_path), "--patient", PK]
    code, err = run([*argv, "--out", str(out)], capsys)
    assert code == 2 and "--out" in err and "not a directory" in err


def test_admin_commands_name_the_bad_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "admin.key"
    SigningKey.generate().save(key)
    node = ["--key", str(key), "--node", "http://127.0.0.1:9"]
    cases = [
        (["admin", "add-user", *node, "--pk", "zz", "--role", "doctor"], "--pk 'zz'"),
        (["admin", "add-user", *node, "--pk", PK, "--role", "patient"], "--area"),
        (["admin", "add-user", *node, "--pk", PK, "--role", "doctor", "--enc-pk", "01"], "--enc-pk '01'"),
        (["admin", "add-user", "--pk", PK, "--role", "doctor"], "--key: required"),
        (["admin", "add-user", "--key", str(key), "--pk", PK, "--role", "doctor"], "--node: required"),
        (
            [
                "admin",
                "add-user",
                "--key",
                str(tmp_path / "nokey"),
                "--node",
                "http://x",
                "--pk",
                PK,
                "--role",
                "carer",
            ],
            "--key",
        ),
        (["admin", "delete-user", *node, "--pk", "1"], "--pk '1'"),
        (["admin", "rotate-key", *node, "--old", PK, "--new", PK], "--new: the same key"),
        (["admin", "rotate-key", *node, "--old", PK, "--new", "q"], "--new 'q'"),
        (["admin", "penalties", *node, "--user", "q"], "--user 'q'"),
        (["admin", "review", *node, "--id", "x", "--verdict", "misuse"], "--id 'x'"),
    ]
    for argv, message in cases:
        code, err = run(argv, capsys)
        assert code == 2 and message in err, (argv, err)
    with pytest.raises(SystemExit) as exited:
        run(["admin", "review", *node, "--id", "1", "--verdict", "fine"], capsys)
    assert exited.value.code == 2 and "--verdict" in capsys.readouterr().err
    # HOST:PORT is taken as http://HOST:PORT; what is no node URL at all is refused naming the option.
    with pytest.raises(SystemExit) as exited:
        run(["admin", "add-user", "--key", str(key), "--node", "ftp://h:1", "--pk", PK, "--role", "carer"], capsys)
    assert exited.value.code == 2 and "argument --node: 'ftp://h:1' is not a node's HTTP API" in capsys.readouterr().err


def test_an_unreachable_node_is_an_error_line_not_a_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "admin.key"
    SigningKey.generate().save(key)
    code, err = run(["admin", "reviews", "--key", str(key), "--node", "http://127.0.0.1:9"], capsys)
    # The exit code every command gives an unreachable node (docs/API.md, "Clients").
    assert code == 2 and "cannot reach the node" in err and "Traceback" not in err
