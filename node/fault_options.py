"""How a node is told to be breakable: fault control and byzantine modes, from flags or the environment.

Both are off unless asked for. Fault control (`--fault-control`, `EHRNET_FAULT_CONTROL=1`) only adds operator
routes (node/fault_control.py). A byzantine mode (`--unsafe-byzantine MODE`) makes the node attack its own
network (node/byzantine.py), so the environment form needs a second, explicit opt-in: `EHRNET_UNSAFE_BYZANTINE=MODE`
is refused unless `EHRNET_UNSAFE=1` is set too — a stray variable in a shell must not turn a validator hostile.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from node.config import ConfigError
from node.fault_control import ENABLE_ENV, enabled_by_env

BYZANTINE_ENV = "EHRNET_UNSAFE_BYZANTINE"
UNSAFE_ENV = "EHRNET_UNSAFE"
BYZANTINE_MODES = ("equivocate", "invalid-block", "malformed")


@dataclass(frozen=True)
class FaultOptions:
    control: bool = False
    byzantine: str | None = None

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
        return cls(control=control or enabled_by_env(env), byzantine=byzantine)


__all__ = ["BYZANTINE_ENV", "BYZANTINE_MODES", "ENABLE_ENV", "UNSAFE_ENV", "FaultOptions"]
