"""How a node is told to be breakable: fault control and byzantine modes, from flags or the environment.

Both are off unless asked for. Fault control (`--fault-control`, `EHRNET_FAULT_CONTROL=1`) only adds operator
routes (node/faults/control.py). A byzantine mode (`--unsafe-byzantine MODE`) makes the node attack its own
network (node/faults/byzantine.py), so the environment form needs a second, explicit opt-in:
`EHRNET_UNSAFE_BYZANTINE=MODE` is refused unless `EHRNET_UNSAFE=1` is set too —
a stray variable in a shell must not turn a validator hostile.

`EHRNET_UNSAFE_NETWORK_KEY=PATH` (also only with `EHRNET_UNSAFE=1`) gives the node a libp2p identity of its own,
separate from its validator key, for the "same validator key on two nodes" case: a plain copy of `node.key` also
copies the peer ID, and libp2p keeps one connection per peer ID, so the copy would never be heard on gossip.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from node.cluster.config import ConfigError
from node.faults.control import ENABLE_ENV, enabled_by_env

BYZANTINE_ENV = "EHRNET_UNSAFE_BYZANTINE"
UNSAFE_ENV = "EHRNET_UNSAFE"
NETWORK_KEY_ENV = "EHRNET_UNSAFE_NETWORK_KEY"
BYZANTINE_MODES = ("equivocate", "invalid-block", "include-unallowlisted", "malformed")


@dataclass(frozen=True)
class FaultOptions:
    control: bool = False
    byzantine: str | None = None
    network_key: Path | None = None  # a libp2p identity other than the node key (testing only)

    @classmethod
    def resolve(
        cls, control: bool = False, byzantine: str | None = None, environ: Mapping[str, str] | None = None
    ) -> FaultOptions:
        """Combine the command-line flags with the environment; ConfigError naming the flag or variable when
        a mode is unknown or the environment asks for a byzantine mode without `EHRNET_UNSAFE=1`."""
        env = os.environ if environ is None else environ
        where = "--unsafe-byzantine"
        if byzantine is None and env.get(BYZANTINE_ENV, "").strip():
            byzantine, where = env[BYZANTINE_ENV].strip(), BYZANTINE_ENV
            if env.get(UNSAFE_ENV, "").strip() != "1":
                raise ConfigError(
                    f"{BYZANTINE_ENV}={byzantine}: a byzantine node attacks its own network; "
                    f"set {UNSAFE_ENV}=1 as well to confirm (or pass --unsafe-byzantine {byzantine})"
                )
        if byzantine is not None and byzantine not in BYZANTINE_MODES:
            raise ConfigError(f"{where}: unknown mode {byzantine!r} (known: {', '.join(BYZANTINE_MODES)})")
        network_key = env.get(NETWORK_KEY_ENV, "").strip() or None
        if network_key is not None and env.get(UNSAFE_ENV, "").strip() != "1":
            raise ConfigError(
                f"{NETWORK_KEY_ENV}: a validator key on a second identity can equivocate; set {UNSAFE_ENV}=1 as well"
            )
        return cls(
            control=control or enabled_by_env(env),
            byzantine=byzantine,
            network_key=Path(network_key) if network_key is not None else None,
        )


__all__ = ["BYZANTINE_ENV", "BYZANTINE_MODES", "ENABLE_ENV", "NETWORK_KEY_ENV", "UNSAFE_ENV", "FaultOptions"]
