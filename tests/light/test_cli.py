"""`ehrnet light ...` without a network: keygen, and user errors reported as exit codes with a message."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from node.cluster.config import dump_network, generate_network
from node.light import cli, identity


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_keygen_prints_the_identity_and_writes_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["light", "keygen", "--out", str(tmp_path / "phone"), "--p256"]) == 0
    out = capsys.readouterr().out
    loaded = identity.load(tmp_path / "phone")
    assert loaded.address.hex() in out and loaded.box_public_key.hex() in out and "device_key_p256" in out
    assert run(["light", "keygen", "--out", str(tmp_path / "phone")]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err


def test_an_unresolved_config_or_a_bad_key_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = tmp_path / "local4.toml"
    template.write_text(dump_network(generate_network(4)))
    assert run(["light", "sync", "--config", str(template), "--data-dir", str(tmp_path / "d")]) == 2
    assert "not resolved" in capsys.readouterr().err
    assert run(["light", "sync", "--config", str(tmp_path / "missing.toml"), "--data-dir", str(tmp_path)]) == 2
    assert "cannot read config" in capsys.readouterr().err
    argv = ["light", "get-state", "--config", str(template), "--data-dir", str(tmp_path), "--key", "xyz"]
    assert run(argv) == 2
    assert "not hex" in capsys.readouterr().err
