"""Network configuration files (`network_configs/*.toml`): which nodes a network has, their roles, ports,
bootstrap peers and the genesis section.

A config is either *template* (validators and admins named, ports 0 = automatic, peer IDs unknown) or
*resolved* (every key a public key, every port concrete, every node's peer ID known). `ehrnet cluster up` /
`ehrnet cluster init` resolve a template into `<data-dir>/network.toml`; a node runs only from a resolved config,
because it must know its peers' IDs to dial them over Noise.

Every error names the file and the field (`local4.toml: nodes[2].roles[0]: unknown role 'minr' ...`).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from consensus.errors import GenesisError
from consensus.genesis import NEW_NETWORK_PARAMS, TEXT_PARAMS, Genesis, Params

ROLES = ("validator", "edge", "storage", "manager")
KEY_PREFIX = "ed25519:"
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_CHAIN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ConfigError(ValueError):
    """A network config is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class NodeSpec:
    name: str
    roles: tuple[str, ...]
    host: str = "127.0.0.1"
    p2p_port: int = 0
    http_port: int = 0
    bootstrap: tuple[str, ...] | None = None  # node names; None means every other node
    peer_id: str | None = None

    @property
    def p2p_multiaddr(self) -> str:
        if self.peer_id is None or self.p2p_port == 0:
            raise ConfigError(f"node {self.name!r} has no resolved address (run `ehrnet cluster init`)")
        return f"/ip4/{self.host}/tcp/{self.p2p_port}/p2p/{self.peer_id}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"


@dataclass(frozen=True)
class GenesisSpec:
    chain_id: str
    validators: tuple[str, ...]  # node names (template) or "ed25519:<hex>" (resolved)
    admins: tuple[str, ...]  # key names under <data-dir>/keys (template) or "ed25519:<hex>" (resolved)
    genesis_time_ms: int = 0
    params: dict[str, int | str] = field(default_factory=dict)  # text only for TEXT_PARAMS, e.g. accounts
    # The mesh's members: ("ed25519:<hex>", roles). Filled from the nodes when a template is resolved; empty in
    # configs resolved before members existed (their nodes then come from the config: node/ledger/gossip/validation.py).
    members: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def resolved(self) -> bool:
        return all(v.startswith(KEY_PREFIX) for v in (*self.validators, *self.admins))

    def validator_keys(self) -> list[bytes]:
        return [_key_bytes(v) for v in self.validators]

    def admin_keys(self) -> list[bytes]:
        return [_key_bytes(v) for v in self.admins]


@dataclass(frozen=True)
class NetworkConfig:
    name: str
    nodes: tuple[NodeSpec, ...]
    genesis: GenesisSpec
    source: str = "<memory>"
    block_interval_ms: int = 50  # on an idle chain, the pause after the first transaction to gather others
    idle_block_interval_ms: int = 2000  # with no transactions, an (empty) block at most this often

    def node(self, name: str) -> NodeSpec:
        for spec in self.nodes:
            if spec.name == name:
                return spec
        known = ", ".join(n.name for n in self.nodes)
        raise ConfigError(f"{self.source}: no node named {name!r} (nodes: {known})")

    def bootstrap_of(self, name: str) -> list[NodeSpec]:
        spec = self.node(name)
        names = spec.bootstrap if spec.bootstrap is not None else [n.name for n in self.nodes if n.name != name]
        return [self.node(n) for n in names]

    @property
    def resolved(self) -> bool:
        return self.genesis.resolved and all(n.peer_id and n.p2p_port and n.http_port for n in self.nodes)


def _key_bytes(entry: str) -> bytes:
    return bytes.fromhex(entry[len(KEY_PREFIX) :])


class _Reader:
    """Typed access to a parsed TOML document that names the file and the field in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where}: {message}")

    def table(self, doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
        value = doc.get(key)
        if not isinstance(value, dict):
            raise self.fail(where, "missing table" if value is None else "must be a table")
        return value

    def string(self, doc: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
        value = doc.get(key, default)
        if not isinstance(value, str):
            raise self.fail(where, "missing" if value is None else f"must be a string, not {type(value).__name__}")
        return value

    def port(self, doc: dict[str, Any], key: str, where: str) -> int:
        value = doc.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
            raise self.fail(where, f"must be a port number 0–65535 (0 = automatic), not {value!r}")
        return value

    def strings(self, doc: dict[str, Any], key: str, where: str) -> tuple[str, ...] | None:
        value = doc.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(where, "must be a list of strings")
        return tuple(value)


def parse_network(text: str, source: str = "<memory>") -> NetworkConfig:
    r = _Reader(source)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    network = r.table(doc, "network", "network")
    name = r.string(network, "name", "network.name")
    if not _NAME.match(name):
        raise r.fail("network.name", f"{name!r} must be lowercase letters, digits, '-' or '_' (≤ 32)")

    interval = network.get("block_interval_ms", 50)
    if not isinstance(interval, int) or isinstance(interval, bool) or not 0 <= interval <= 60_000:
        raise r.fail("network.block_interval_ms", f"must be an integer 0–60000 (ms), not {interval!r}")
    idle = network.get("idle_block_interval_ms", 2000)
    if not isinstance(idle, int) or isinstance(idle, bool) or not interval <= idle <= 3_600_000:
        raise r.fail(
            "network.idle_block_interval_ms", f"must be an integer from block_interval_ms to 3600000 (ms), not {idle!r}"
        )
    raw_nodes = doc.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise r.fail("nodes", "need at least one [[nodes]] entry")
    nodes: list[NodeSpec] = []
    for i, raw in enumerate(raw_nodes):
        where = f"nodes[{i}]"
        if not isinstance(raw, dict):
            raise r.fail(where, "must be a table")
        unknown = set(raw) - {"name", "roles", "host", "p2p_port", "http_port", "bootstrap", "peer_id"}
        if unknown:
            raise r.fail(f"{where}.{sorted(unknown)[0]}", "unknown field")
        node_name = r.string(raw, "name", f"{where}.name")
        if not _NAME.match(node_name):
            raise r.fail(f"{where}.name", f"{node_name!r} must be lowercase letters, digits, '-' or '_' (≤ 32)")
        roles = r.strings(raw, "roles", f"{where}.roles") or ()
        for j, role in enumerate(roles):
            if role not in ROLES:
                raise r.fail(f"{where}.roles[{j}]", f"unknown role {role!r} (expected one of {', '.join(ROLES)})")
        host = r.string(raw, "host", f"{where}.host", default="127.0.0.1")
        peer_id = raw.get("peer_id")
        if peer_id is not None and not isinstance(peer_id, str):
            raise r.fail(f"{where}.peer_id", "must be a string")
        nodes.append(
            NodeSpec(
                name=node_name,
                roles=tuple(dict.fromkeys(roles)),
                host=host,
                p2p_port=r.port(raw, "p2p_port", f"{where}.p2p_port"),
                http_port=r.port(raw, "http_port", f"{where}.http_port"),
                bootstrap=r.strings(raw, "bootstrap", f"{where}.bootstrap"),
                peer_id=peer_id,
            )
        )
    names = [n.name for n in nodes]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise r.fail(f"nodes[{i}].name", f"duplicate node name {n!r}")
    for i, spec in enumerate(nodes):
        for j, peer in enumerate(spec.bootstrap or ()):
            if peer not in names:
                raise r.fail(f"nodes[{i}].bootstrap[{j}]", f"no node named {peer!r}")
    genesis = _parse_genesis(r, doc, names, nodes)
    return NetworkConfig(
        name, tuple(nodes), genesis, source=source, block_interval_ms=interval, idle_block_interval_ms=idle
    )


def _parse_genesis(r: _Reader, doc: dict[str, Any], names: list[str], nodes: list[NodeSpec]) -> GenesisSpec:
    genesis = r.table(doc, "genesis", "genesis")
    chain_id = r.string(genesis, "chain_id", "genesis.chain_id")
    if not _CHAIN_ID.match(chain_id):
        raise r.fail("genesis.chain_id", f"{chain_id!r} must be 1–64 letters, digits, '.', '-' or '_'")
    validators = r.strings(genesis, "validators", "genesis.validators")
    if validators is None:
        validators = tuple(n.name for n in nodes if "validator" in n.roles)
    if not validators:
        raise r.fail("genesis.validators", "need at least one validator (a node with role 'validator')")
    for i, v in enumerate(validators):
        if v.startswith(KEY_PREFIX):
            _check_key(r, v, f"genesis.validators[{i}]")
        elif v not in names:
            raise r.fail(f"genesis.validators[{i}]", f"{v!r} is neither a node name nor 'ed25519:<64 hex>'")
    if len(set(validators)) != len(validators):
        raise r.fail("genesis.validators", "duplicate validator")
    admins = r.strings(genesis, "admins", "genesis.admins") or ("admin",)
    for i, a in enumerate(admins):
        if a.startswith(KEY_PREFIX):
            _check_key(r, a, f"genesis.admins[{i}]")
        elif not _NAME.match(a):
            raise r.fail(f"genesis.admins[{i}]", f"{a!r} is neither a key name nor 'ed25519:<64 hex>'")
    time_ms = genesis.get("genesis_time_ms", 0)
    if not isinstance(time_ms, int) or isinstance(time_ms, bool) or time_ms < 0:
        raise r.fail("genesis.genesis_time_ms", "must be a non-negative integer (ms since the Unix epoch)")
    params = genesis.get("params", {})
    if not isinstance(params, dict):
        raise r.fail("genesis.params", "must be a table")
    known = {f.name for f in dataclasses.fields(Params)}
    for key, value in params.items():
        if key not in known:
            raise r.fail(f"genesis.params.{key}", f"unknown parameter (known: {', '.join(sorted(known))})")
        if key in TEXT_PARAMS:
            if value not in TEXT_PARAMS[key]:
                raise r.fail(f"genesis.params.{key}", f"must be one of {', '.join(TEXT_PARAMS[key])}, not {value!r}")
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise r.fail(f"genesis.params.{key}", f"must be a positive integer, not {value!r}")
    members = _parse_members(r, genesis.get("members", []))
    return GenesisSpec(chain_id, tuple(validators), tuple(admins), time_ms, dict(params), members)


def _parse_members(r: _Reader, raw: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(raw, list):
        raise r.fail("genesis.members", "must be an array of tables {key, roles}")
    members: list[tuple[str, tuple[str, ...]]] = []
    for i, entry in enumerate(raw):
        where = f"genesis.members[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"key", "roles"}:
            raise r.fail(where, "must be a table of exactly key and roles")
        key = r.string(entry, "key", f"{where}.key")
        if not key.startswith(KEY_PREFIX):
            raise r.fail(f"{where}.key", "a member key must be 'ed25519:' followed by 64 lowercase hex characters")
        _check_key(r, key, f"{where}.key")
        roles = r.strings(entry, "roles", f"{where}.roles") or ()
        for j, role in enumerate(roles):
            if role not in ROLES:
                raise r.fail(f"{where}.roles[{j}]", f"unknown role {role!r} (expected one of {', '.join(ROLES)})")
        members.append((key, tuple(dict.fromkeys(roles))))
    if len({k for k, _ in members}) != len(members):
        raise r.fail("genesis.members", "lists a key twice")
    return tuple(members)


def _check_key(r: _Reader, entry: str, where: str) -> None:
    hexpart = entry[len(KEY_PREFIX) :]
    if not re.fullmatch(r"[0-9a-f]{64}", hexpart):
        raise r.fail(where, "a key must be 'ed25519:' followed by 64 lowercase hex characters")


def load_network(path: Path) -> NetworkConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from exc
    return parse_network(text, source=str(path))


def dump_network(config: NetworkConfig) -> str:
    """The TOML text of a config (used to write resolved configs)."""
    nodes: list[dict[str, Any]] = []
    for n in config.nodes:
        entry: dict[str, Any] = {
            "name": n.name,
            "roles": list(n.roles),
            "host": n.host,
            "p2p_port": n.p2p_port,
            "http_port": n.http_port,
        }
        if n.bootstrap is not None:
            entry["bootstrap"] = list(n.bootstrap)
        if n.peer_id is not None:
            entry["peer_id"] = n.peer_id
        nodes.append(entry)
    g = config.genesis
    genesis: dict[str, Any] = {
        "chain_id": g.chain_id,
        "validators": list(g.validators),
        "admins": list(g.admins),
        "genesis_time_ms": g.genesis_time_ms,
        "params": dict(g.params),
    }
    if g.members:
        genesis["members"] = [{"key": key, "roles": list(roles)} for key, roles in g.members]
    network = {
        "name": config.name,
        "block_interval_ms": config.block_interval_ms,
        "idle_block_interval_ms": config.idle_block_interval_ms,
    }
    return tomli_w.dumps({"network": network, "genesis": genesis, "nodes": nodes})


def generate_network(n: int, name: str | None = None) -> NetworkConfig:
    """A template for an n-node local network: every node a validator and storage node; node1 also runs the
    EHRs manager and the last node is an edge node (the paper's edge layer)."""
    if not 1 <= n <= 64:
        raise ConfigError(f"-n: a local network has 1–64 nodes, not {n}")
    net_name = name or f"local{n}"
    nodes = []
    for i in range(1, n + 1):
        roles = ["validator", "storage"]
        if i == 1:
            roles.append("manager")
        if i == n:
            roles.append("edge")
        nodes.append(NodeSpec(name=f"node{i}", roles=tuple(roles)))
    genesis = GenesisSpec(
        chain_id=f"ehrnet-{net_name}",
        validators=tuple(f"node{i}" for i in range(1, n + 1)),
        admins=("admin",),
        params=dict(NEW_NETWORK_PARAMS),  # the latest VM rules and gas bounds that fit the round timeout
    )
    return NetworkConfig(name=net_name, nodes=tuple(nodes), genesis=genesis, source=f"<generated {net_name}>")


def genesis_of(network: NetworkConfig) -> Genesis:
    """The ledger's genesis from a resolved network config (what every node and light client starts from)."""
    g = network.genesis
    if not g.resolved:
        raise ConfigError(f"{network.source}: genesis keys are not resolved; use the cluster's network.toml")
    try:
        return Genesis(
            chain_id=g.chain_id,
            validators=tuple(g.validator_keys()),
            admins=tuple(g.admin_keys()),
            initial_time_ms=g.genesis_time_ms,
            params=Params.from_value(dict(g.params)),
            members=tuple((_key_bytes(key), tuple(sorted(roles))) for key, roles in g.members),
        )
    except (GenesisError, TypeError) as exc:
        raise ConfigError(f"{network.source}: genesis: {exc}") from exc
