"""Resolve a template network config into a runnable one: generate keys, pick ports, record peer IDs.

The result is written to `<data-dir>/network.toml`; running `init` again on the same data dir reuses it, so a
cluster keeps its identities and ports across restarts: a node's state is on disk and it can be restarted at will.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time
from pathlib import Path

from node.cluster.config import KEY_PREFIX, ConfigError, NetworkConfig, dump_network, load_network
from node.p2p.identity import peer_id_from_seed
from primitives.keys import SigningKey

RESOLVED_NAME = "network.toml"


def admin_key_path(data_dir: Path, name: str = "admin") -> Path:
    return data_dir / "keys" / f"{name}.key"


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports free right now (sockets held open together so none repeats)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports


def resolve_network(template: NetworkConfig, data_dir: Path) -> NetworkConfig:
    """Return the resolved config for `data_dir`, creating keys, ports and `network.toml` if needed."""
    target = data_dir / RESOLVED_NAME
    if target.exists():
        existing = load_network(target)
        if existing.name != template.name:
            raise ConfigError(
                f"{target}: data dir already holds network {existing.name!r}, not {template.name!r}; "
                "use another --data-dir"
            )
        return existing
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = iter(free_ports(2 * len(template.nodes)))
    node_keys: dict[str, SigningKey] = {}
    nodes = []
    for spec in template.nodes:
        key = SigningKey.load_or_create(data_dir / spec.name / "node.key")
        node_keys[spec.name] = key
        nodes.append(
            dataclasses.replace(
                spec,
                p2p_port=spec.p2p_port or next(ports),
                http_port=spec.http_port or next(ports),
                peer_id=peer_id_from_seed(key.seed),
            )
        )

    def resolve_validator(entry: str) -> str:
        if entry.startswith(KEY_PREFIX):
            return entry
        return KEY_PREFIX + node_keys[entry].public_key.hex()

    def resolve_admin(entry: str) -> str:
        if entry.startswith(KEY_PREFIX):
            return entry
        return KEY_PREFIX + SigningKey.load_or_create(admin_key_path(data_dir, entry)).public_key.hex()

    g = template.genesis
    genesis = dataclasses.replace(
        g,
        validators=tuple(resolve_validator(v) for v in g.validators),
        admins=tuple(resolve_admin(a) for a in g.admins),
        genesis_time_ms=g.genesis_time_ms or int(time.time() * 1000),
        # Every node of the network is a member of its mesh, with its roles (consensus/membership.py).
        members=g.members
        or tuple((KEY_PREFIX + node_keys[spec.name].public_key.hex(), spec.roles) for spec in template.nodes),
    )
    resolved = NetworkConfig(
        template.name,
        tuple(nodes),
        genesis,
        source=str(target),
        block_interval_ms=template.block_interval_ms,
        idle_block_interval_ms=template.idle_block_interval_ms,
    )
    tmp = target.with_suffix(".tmp")
    tmp.write_text(dump_network(resolved))
    tmp.replace(target)
    return resolved
