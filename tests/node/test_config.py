"""Network config loading: valid configs parse, every bad field is named with its file."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from node.cluster.config import ConfigError, dump_network, generate_network, load_network, parse_network

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
[network]
name = "t3"
[genesis]
chain_id = "ehrnet-t3"
[[nodes]]
name = "a"
roles = ["validator", "manager"]
[[nodes]]
name = "b"
roles = ["validator", "edge"]
bootstrap = ["a"]
[[nodes]]
name = "c"
roles = ["storage"]
"""


def test_shipped_local4_parses() -> None:
    config = load_network(ROOT / "network_configs" / "local4.toml")
    assert [n.name for n in config.nodes] == ["node1", "node2", "node3", "node4"]
    assert config.genesis.chain_id == "ehrnet-local4"
    assert config.genesis.validators == ("node1", "node2", "node3", "node4")
    assert "manager" in config.node("node1").roles and "edge" in config.node("node4").roles
    assert not config.resolved


def test_defaults_validators_from_roles_and_bootstrap_from_all_others() -> None:
    config = parse_network(GOOD, "good.toml")
    assert config.genesis.validators == ("a", "b")
    assert config.genesis.admins == ("admin",)
    assert [p.name for p in config.bootstrap_of("a")] == ["b", "c"]
    assert [p.name for p in config.bootstrap_of("b")] == ["a"]


def test_generated_config_round_trips_through_toml() -> None:
    config = dataclasses.replace(generate_network(5), block_interval_ms=100, idle_block_interval_ms=7000)
    again = parse_network(dump_network(config), "gen.toml")
    assert (again.block_interval_ms, again.idle_block_interval_ms) == (100, 7000)
    assert again.nodes == config.nodes
    assert again.genesis.validators == config.genesis.validators
    assert "edge" in again.node("node5").roles and "manager" in again.node("node1").roles


@pytest.mark.parametrize(
    ("mutation", "field"),
    [
        (('roles = ["validator", "manager"]', 'roles = ["validator", "minr"]'), "nodes[0].roles[1]"),
        (('name = "b"', 'name = "a"'), "nodes[1].name"),
        (('bootstrap = ["a"]', 'bootstrap = ["zz"]'), "nodes[1].bootstrap[0]"),
        (('chain_id = "ehrnet-t3"', 'chain_id = "bad chain"'), "genesis.chain_id"),
        (('name = "c"', 'name = "c"\np2p_port = 70000'), "nodes[2].p2p_port"),
        (('name = "c"', 'name = "c"\ncolour = "red"'), "nodes[2].colour"),
        (('chain_id = "ehrnet-t3"', 'chain_id = "ehrnet-t3"\nvalidators = ["q"]'), "genesis.validators[0]"),
        (('chain_id = "ehrnet-t3"', 'chain_id = "ehrnet-t3"\nadmins = ["ed25519:zz"]'), "genesis.admins[0]"),
        (('[network]\nname = "t3"', "[network]"), "network.name"),
        (
            ('[network]\nname = "t3"', '[network]\nname = "t3"\nidle_block_interval_ms = 10'),
            "network.idle_block_interval_ms",
        ),
    ],
)
def test_bad_field_is_named_with_file(mutation: tuple[str, str], field: str) -> None:
    old, new = mutation
    assert old in GOOD
    with pytest.raises(ConfigError) as err:
        parse_network(GOOD.replace(old, new, 1), "net.toml")
    assert str(err.value).startswith(f"net.toml: {field}:"), str(err.value)


def test_not_toml_and_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"net\.toml: not valid TOML"):
        parse_network("[network\n", "net.toml")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_network(Path("/nonexistent/net.toml"))


def test_cli_names_the_bad_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace('roles = ["storage"]', 'roles = ["miner"]'))
    result = subprocess.run(
        [sys.executable, "-m", "node.cli", "cluster", "up", "--config", str(bad), "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{bad}: nodes[2].roles[0]: unknown role 'miner'" in result.stderr
    assert "Traceback" not in result.stderr
