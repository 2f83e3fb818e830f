"""Peers in processes of their own, running only a node's p2p service (host, redial loop, keepalive), and the
network namespaces to put them in.

For tests and benchmarks that must pause a peer (SIGSTOP) or cut its link without a FIN, neither of which can
happen to a host inside the test's own process. Run as a program
(`python -m node.cluster.peer_process --seed HEX --listen MULTIADDR [--peer MULTIADDR ...]`) it prints one JSON
line when ready (`{"ready": peer_id}`) and one each time its set of connected peers changes
(`{"t": monotonic seconds, "peers": [...]}`; CLOCK_MONOTONIC is shared by every process on the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from node.p2p.bridge import HostConfig, peer_id_from_seed
from node.p2p.keepalive import KeepaliveSettings
from node.p2p.peering import BootstrapPeer, PeeringService

REPO = Path(__file__).resolve().parents[2]


class NamespaceUnavailable(RuntimeError):
    """Network namespaces cannot be created here (not root, or no iproute2)."""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Side:
    """Where one peer process runs: its namespace (None: the caller's), veth, address and identity."""

    address: str
    port: int
    namespace: str | None = None
    veth: str | None = None
    seed: bytes = field(default_factory=lambda: os.urandom(32))

    @property
    def peer_id(self) -> str:
        return peer_id_from_seed(self.seed)

    @property
    def multiaddr(self) -> str:
        return f"/ip4/{self.address}/tcp/{self.port}/p2p/{self.peer_id}"

    def link(self, state: str) -> None:
        """Take this side's end of the veth pair "down" or "up"."""
        assert self.namespace is not None and self.veth is not None
        ip("-n", self.namespace, "link", "set", self.veth, state)


def loopback_pair() -> tuple[Side, Side]:
    return Side("127.0.0.1", free_port()), Side("127.0.0.1", free_port())


@contextmanager
def linked_namespaces() -> Iterator[tuple[Side, Side]]:
    """Two namespaces joined by a veth pair and routed only to each other; deleted (with the pair) on exit."""
    tag = os.getpid() % 100_000
    subnet = f"10.231.{tag % 250}"
    a = Side(f"{subnet}.1", 4001, f"ehrka{tag}", f"ehrka{tag}")
    b = Side(f"{subnet}.2", 4001, f"ehrkb{tag}", f"ehrkb{tag}")
    try:
        try:
            ip("netns", "add", str(a.namespace))
            ip("netns", "add", str(b.namespace))
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = exc.stderr.decode().strip() if isinstance(exc, subprocess.CalledProcessError) else str(exc)
            raise NamespaceUnavailable(f"cannot create network namespaces here: {detail}") from exc
        veth = ("link", "add", str(a.veth), "netns", str(a.namespace), "type", "veth")
        ip(*veth, "peer", "name", str(b.veth), "netns", str(b.namespace))
        for side in (a, b):
            assert side.namespace is not None
            ip("-n", side.namespace, "addr", "add", f"{side.address}/24", "dev", str(side.veth))
            ip("-n", side.namespace, "link", "set", "lo", "up")
            side.link("up")
        yield a, b
    finally:
        for side in (a, b):
            subprocess.run(["ip", "netns", "del", str(side.namespace)], capture_output=True, timeout=10)


class PeerProcess:
    """This module run as a program for `side`, dialling `other`; a thread collects its reports."""

    def __init__(
        self,
        side: Side,
        other: Side,
        keepalive_interval_s: float | None = None,
        stalls: tuple[float, float] | None = None,
    ) -> None:
        """`stalls`: (stall_s, run_s) — once connected, hold the event loop for stall_s, let it run for run_s, and
        again, as a node executing block after block does."""
        command = [sys.executable, "-m", "node.cluster.peer_process", "--seed", side.seed.hex()]
        command += ["--listen", f"/ip4/{side.address}/tcp/{side.port}", "--peer", other.multiaddr]
        if keepalive_interval_s is not None:
            command += ["--keepalive-interval", str(keepalive_interval_s)]
        if stalls is not None:
            command += ["--stall", str(stalls[0]), "--run", str(stalls[1])]
        if side.namespace is not None:
            command = ["ip", "netns", "exec", side.namespace, *command]
        self.proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.reports: list[dict[str, object]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.reports.append(json.loads(line))

    def _changes(self) -> list[dict[str, object]]:
        return [r for r in list(self.reports) if "peers" in r]

    def peers(self) -> list[str]:
        changes = self._changes()
        return [str(p) for p in changes[-1]["peers"]] if changes else []  # type: ignore[attr-defined]

    def last_change_at(self) -> float:
        return float(self._changes()[-1]["t"])  # type: ignore[arg-type]

    def stop(self) -> None:
        with_signal = self.proc.poll() is None
        if with_signal:
            os.kill(self.proc.pid, signal.SIGCONT)  # a paused process cannot act on SIGTERM
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _report(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def _serve(
    seed: bytes, listen: str, peers: list[str], keepalive: KeepaliveSettings, stalls: tuple[float, float] | None
) -> None:
    ids = [addr.rsplit("/", 1)[-1] for addr in peers]
    bootstrap = [BootstrapPeer(name=i[-6:], peer_id=i, multiaddr=addr) for i, addr in zip(ids, peers, strict=True)]
    service = PeeringService(HostConfig(seed=seed, listen=listen), bootstrap, keepalive)
    await service.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    running = asyncio.create_task(service.run())
    _report(ready=service.host.peer_id, addrs=service.host.listen_addrs)
    last: list[str] | None = None
    stalled = 0
    try:
        while not stop.is_set() and not running.done():
            peers_now = service.host.connected_peers()
            if peers_now != last:
                _report(t=time.monotonic(), peers=peers_now)
                last = peers_now
            if stalls is not None and peers_now:
                time.sleep(stalls[0])  # noqa: ASYNC251 - the stall itself: nothing on this loop runs meanwhile
                stalled += 1
                _report(t=time.monotonic(), stalls=stalled)
                await asyncio.sleep(stalls[1])
            await asyncio.sleep(0.05)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await service.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", required=True, help="32-byte identity seed, hex")
    parser.add_argument("--listen", required=True)
    parser.add_argument("--peer", action="append", default=[], help="a bootstrap peer's full multiaddr (…/p2p/ID)")
    parser.add_argument("--keepalive-interval", type=float, default=KeepaliveSettings().interval_s)
    parser.add_argument("--stall", type=float, help="once connected, hold the event loop this long …")
    parser.add_argument("--run", type=float, default=0.2, help="… then let it run this long, and again")
    args = parser.parse_args()
    settings = KeepaliveSettings(interval_s=args.keepalive_interval)
    stall_cycle = None if args.stall is None else (args.stall, args.run)
    asyncio.run(_serve(bytes.fromhex(args.seed), args.listen, args.peer, settings, stall_cycle))
