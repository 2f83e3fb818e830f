"""`ehrnet node run`: one full peer as an operating-system process.

SIGINT and SIGTERM ask the node to stop; services stop in reverse order and the process exits 0. A second
signal while stopping is ignored, so an impatient Ctrl-C cannot leave half-closed stores behind.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from node.app import build_node
from node.cluster.config import load_network
from node.faults.options import FaultOptions
from node.service import ServiceCrashed

log = logging.getLogger("ehrnet.node")


def configure_logging(level: str, log_file: Path | None) -> None:
    handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # py-libp2p logs spurious warnings (`StreamEOF`) on normal stream ends; keep its noise out.
    logging.getLogger("libp2p").setLevel(logging.ERROR)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


async def _serve(config_path: Path, name: str, data_dir: Path | None, faults: FaultOptions) -> int:
    network = load_network(config_path)
    node = build_node(network, name, data_dir or config_path.parent, faults)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, node.request_stop)
    log.info("node %s starting (network %s)", name, network.name)
    try:
        await node.run()
    except ServiceCrashed as exc:
        log.error("node %s stopped: %s", name, exc)
        return 1
    log.info("node %s stopped cleanly", name)
    return 0


def run_node(
    config_path: Path,
    name: str,
    data_dir: Path | None,
    log_level: str,
    log_file: Path | None,
    faults: FaultOptions | None = None,
) -> int:
    configure_logging(log_level, log_file)
    return asyncio.run(_serve(config_path, name, data_dir, faults or FaultOptions()))
