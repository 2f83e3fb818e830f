"""The `accounts` genesis setting in network configs: the consortium template is an allowlist chain, the local
one-command networks stay open (development networks), and a bad value is refused naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.cluster.config import ConfigError, generate_network, genesis_of, load_network, parse_network
from node.cluster.network_init import resolve_network

ROOT = Path(__file__).resolve().parents[2]


def test_the_consortium_template_is_an_allowlist_chain(tmp_path: Path) -> None:
    template = load_network(ROOT / "network_configs" / "consortium.toml")
    assert template.genesis.params["accounts"] == "allowlist"
    genesis = genesis_of(resolve_network(template, tmp_path))
    assert genesis.params.accounts == "allowlist"


def test_local_networks_stay_open(tmp_path: Path) -> None:
    for template in (generate_network(4), load_network(ROOT / "network_configs" / "local4.toml")):
        assert "accounts" not in template.genesis.params
        assert genesis_of(resolve_network(template, tmp_path / template.name)).params.accounts == "open"


def test_an_unknown_accounts_value_is_refused_naming_the_field() -> None:
    text = (
        (ROOT / "network_configs" / "consortium.toml")
        .read_text()
        .replace('accounts = "allowlist"      #', 'accounts = "closed"  #')
    )
    with pytest.raises(ConfigError, match=r"genesis\.params\.accounts.*one of open, allowlist"):
        parse_network(text, source="consortium.toml")
