"""Real network faults for a local cluster: each node in its own Linux network namespace (root only).

Layout: one bridge per `NamespaceNetwork` on the host, holding the host's address `10.213.K.1/24`; each node gets
a namespace with a veth pair whose inner end (`eth0`, `10.213.K.N/24`) is its only interface besides `lo`. Nodes
listen on their namespace address, and the host reaches every node's HTTP API through the bridge, so a runner on
the host can observe and control nodes while their links to each other are cut.

Partitions are cut at layer 2, as a pulled cable would cut them: in each node's namespace, the neighbour (ARP)
entry of every node on the other side is pinned to a MAC address no interface has. Frames to it are flooded by
the bridge and dropped by every receiver, so packets vanish silently in both directions — established TCP
connections see no FIN or RST and time out on their own, and new dials hang until their timeout — while both
sides still reach the host. Healing deletes the pinned entries; ARP resolves the real addresses again. (A
blackhole route would instead fail a local send at once, which a real partition never does.)

Packet loss, where nftables is installed, is a rule in the node's namespace that drops a random share of what it
receives from other nodes (`numgen random`), on arrival: real packets lost in the kernel without the sender being
told, recovered by TCP as on a lossy link.
Delay is not offered: `tc netem` is not available on this kernel, and a user-space proxy would put a second TCP
connection, with its own buffering, in the path (docs/FAULTS.md).

Every name carries a recognisable prefix and a per-network tag (namespaces `ehrnet-<tag>-<node>`, bridge
`ehrb<tag>`, host-side veths `ehrv<tag>h<N>`), and a state file under `/run/ehrnet-netns/` records the tag, the
owner's pid and the subnet before anything is created. `cleanup()` is idempotent, and `cleanup_leftovers()` removes
what a crashed runner left behind (a state file whose owner is dead, or prefixed names with no state file),
without touching a network another live runner is using.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

NS_PREFIX = "ehrnet-"
BRIDGE_PREFIX = "ehrb"
VETH_PREFIX = "ehrv"
STATE_DIR = Path("/run/ehrnet-netns")
SUBNET_PREFIX = "10.213"  # 10.213.K.0/24 per network, K in 1..254: a private range nothing here routes
INNER_IF = "eth0"
# A locally administered unicast MAC that no interface carries: ARP entries pinned to it make a silent cut.
NOWHERE_MAC = "02:eb:de:ad:00:00"
MAX_NODES = 250
LOSS_TABLE = "ehrnet_loss"


class NetnsError(RuntimeError):
    """A namespace operation failed; the message names the command and what `ip` said."""


def _ip(*args: str, check: bool = True) -> str:
    """Run `ip ARGS` and return its stdout; NetnsError (with ip's message) when it fails and `check` is set."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip() or f'exit {result.returncode}'}")
    return result.stdout


def _nft(namespace: str, script: str) -> None:
    """Load an nftables script inside a namespace (its rules live and die with the namespace)."""
    argv = ["ip", "netns", "exec", namespace, "nft", "-f", "-"]
    result = subprocess.run(argv, input=script, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NetnsError(f"nft in {namespace}: {result.stderr.strip() or f'exit {result.returncode}'}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _state_lock() -> Iterator[None]:
    """Serialise subnet allocation between runners on this host (two clusters must not share a subnet)."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_states() -> dict[str, dict[str, object]]:
    states: dict[str, dict[str, object]] = {}
    if not STATE_DIR.exists():
        return states
    for path in STATE_DIR.glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            doc = json.loads(path.read_text())
            if isinstance(doc, dict):
                states[path.stem] = doc
    return states


def _link_names() -> list[str]:
    names = []
    for line in _ip("-o", "link", "show", check=False).splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@", 1)[0])
    return names


def _namespace_names() -> list[str]:
    return [line.split()[0] for line in _ip("netns", "list", check=False).splitlines() if line.strip()]


class NamespaceNetwork:
    """A bridge, and one network namespace with one veth per node; partitions cut links between namespaces.

    `create` is called once; everything else may be called any number of times, and `cleanup` always leaves
    nothing of this network behind (processes still inside its namespaces are killed first, since a namespace
    and its interfaces live as long as any process in it).
    """

    def __init__(self, tag: str | None = None) -> None:
        self.tag = tag or secrets.token_hex(2)
        if not _is_tag(self.tag):
            raise ValueError(f"tag: 4 lowercase hex characters, not {self.tag!r}")
        self.bridge = f"{BRIDGE_PREFIX}{self.tag}"
        self.subnet: int | None = None
        self.ips: dict[str, str] = {}
        self.namespaces: dict[str, str] = {}
        self._cut: list[tuple[str, str]] = []  # (node whose namespace holds the pinned entry, peer address)
        self._loss: dict[str, float] = {}

    # ---- availability ---------------------------------------------------------------------------------------

    @staticmethod
    def available() -> tuple[bool, str]:
        """Whether this process can build namespaces here, and if not, why (for a test's skip reason)."""
        if os.geteuid() != 0:
            return False, "network namespaces need root (run the tests as root to include them)"
        if shutil.which("ip") is None:
            return False, "the `ip` command (iproute2) is not installed"
        probe = f"{NS_PREFIX}probe-{os.getpid()}"
        try:
            _ip("netns", "add", probe)
        except NetnsError as exc:
            return False, f"cannot create a network namespace: {exc}"
        _ip("netns", "del", probe, check=False)
        return True, ""

    # ---- names ------------------------------------------------------------------------------------------

    @property
    def host_ip(self) -> str:
        """The host's address on the bridge (how the runner reaches every node)."""
        return f"{SUBNET_PREFIX}.{self._subnet()}.1"

    def _subnet(self) -> int:
        if self.subnet is None:
            raise NetnsError("create() the network first")
        return self.subnet

    def namespace_of(self, name: str) -> str:
        try:
            return self.namespaces[name]
        except KeyError:
            raise NetnsError(f"no namespace for node {name!r} (nodes: {', '.join(self.namespaces)})") from None

    def ip_of(self, name: str) -> str:
        self.namespace_of(name)
        return self.ips[name]

    def _host_veth(self, index: int) -> str:
        return f"{VETH_PREFIX}{self.tag}h{index}"

    @property
    def _state_file(self) -> Path:
        return STATE_DIR / f"{self.tag}.json"

    def _save_state(self) -> None:
        doc = {
            "tag": self.tag,
            "pid": os.getpid(),
            "subnet": self.subnet,
            "namespaces": self.namespaces,
            "ips": self.ips,
        }
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(self._state_file)

    # ---- building -------------------------------------------------------------------------------------------

    def create(self, names: Sequence[str]) -> dict[str, str]:
        """Build the bridge and one namespace per node; returns node name → its address. On failure, whatever
        was built is removed again before the error is raised."""
        if self.namespaces:
            raise NetnsError(f"network {self.tag} is already created")
        if not names or len(set(names)) != len(names) or len(names) > MAX_NODES:
            raise NetnsError(f"names: 1–{MAX_NODES} distinct node names, not {list(names)!r}")
        with _state_lock():
            used = {int(str(s.get("subnet"))) for s in _read_states().values() if str(s.get("subnet")).isdigit()}
            routes = _ip("-4", "route", "show", check=False)
            free = [k for k in range(1, 255) if k not in used and f"{SUBNET_PREFIX}.{k}." not in routes]
            if not free:
                raise NetnsError(f"no free /24 left in {SUBNET_PREFIX}.0.0/16 (clean up with cleanup_leftovers())")
            self.subnet = free[0]
            self.namespaces = {name: f"{NS_PREFIX}{self.tag}-{name}" for name in names}
            self.ips = {name: f"{SUBNET_PREFIX}.{self.subnet}.{i + 2}" for i, name in enumerate(names)}
            self._save_state()  # before anything exists, so a crash from here on is found by cleanup_leftovers()
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.host_ip}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for index, name in enumerate(names):
                self._add_node(index, name)
        except BaseException:
            self.cleanup()
            raise
        return dict(self.ips)

    def _add_node(self, index: int, name: str) -> None:
        ns, host_end, inner_tmp = self.namespaces[name], self._host_veth(index), f"{VETH_PREFIX}{self.tag}p{index}"
        _ip("netns", "add", ns)
        _ip("link", "add", host_end, "type", "veth", "peer", "name", inner_tmp)
        _ip("link", "set", inner_tmp, "netns", ns)
        _ip("-n", ns, "link", "set", inner_tmp, "name", INNER_IF)
        _ip("-n", ns, "addr", "add", f"{self.ips[name]}/24", "dev", INNER_IF)
        _ip("-n", ns, "link", "set", INNER_IF, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("link", "set", host_end, "master", self.bridge)
        _ip("link", "set", host_end, "up")

    def wrap(self, name: str, argv: Sequence[str]) -> list[str]:
        """`argv` run inside the node's namespace (`ip netns exec` execs it: the pid is the command's own)."""
        return ["ip", "netns", "exec", self.namespace_of(name), *argv]

    # ---- faults -----------------------------------------------------------------------------------------

    def partition(self, groups: Sequence[Sequence[str]]) -> None:
        """Cut every link between nodes of different groups (replacing any earlier partition). A node named in
        no group is cut off from every other node; all nodes keep their link to the host."""
        side: dict[str, int] = {}
        for number, group in enumerate(groups):
            for name in group:
                self.namespace_of(name)
                if name in side:
                    raise NetnsError(f"groups: node {name!r} is in two groups")
                side[name] = number
        for name in self.namespaces:
            side.setdefault(name, len(groups) + len(side))
        self.heal()
        for name, ns in self.namespaces.items():
            for other, address in self.ips.items():
                if other != name and side[other] != side[name]:
                    pin = ("lladdr", NOWHERE_MAC, "dev", INNER_IF, "nud", "permanent")
                    _ip("-n", ns, "neigh", "replace", address, *pin)
                    self._cut.append((name, address))

    def heal(self) -> None:
        """Restore every link cut by `partition`."""
        while self._cut:
            name, address = self._cut.pop()
            _ip("-n", self.namespaces[name], "neigh", "del", address, "dev", INNER_IF, check=False)

    def partitioned(self) -> list[tuple[str, str]]:
        """The cut links as (node, peer address) pairs; empty when healed."""
        return list(self._cut)

    @staticmethod
    def loss_available() -> tuple[bool, str]:
        if shutil.which("nft") is None:
            return False, "packet loss needs nftables (`apt-get install nftables`)"
        return True, ""

    def set_loss(self, name: str, percent: float) -> None:
        """Drop `percent` % of the packets node `name` receives from other nodes, each chosen at random by the
        kernel (an nftables rule with `numgen random` on its namespace's input hook); packets from the host are
        never dropped. 0 removes the rule. Set it on every node for loss on every link in both directions.

        Dropped on arrival, as a lossy link would lose them: the sender is told nothing (a rule on the output hook
        would fail the sender's `sendto` with EPERM instead)."""
        if not 0 <= percent <= 100:
            raise NetnsError(f"percent: 0–100, not {percent!r}")
        ok, why = self.loss_available()
        if not ok:
            raise NetnsError(why)
        ns = self.namespace_of(name)
        _nft(ns, f"table inet {LOSS_TABLE}\ndelete table inet {LOSS_TABLE}\n")  # declare-then-delete: idempotent
        self._loss.pop(name, None)
        if percent == 0:
            return
        subnet, host = f"{SUBNET_PREFIX}.{self._subnet()}.0/24", self.host_ip
        threshold = round(percent * 100)  # in 1/10,000ths; numgen's range ends at 9,999, so 100 % is every packet
        chance = f"numgen random mod 10000 < {threshold}" if threshold < 10_000 else ""
        _nft(
            ns,
            f"table inet {LOSS_TABLE} {{\n"
            "  chain ingress {\n"
            "    type filter hook input priority 0; policy accept;\n"
            f"    ip saddr {subnet} ip saddr != {host} {chance} drop\n"
            "  }\n"
            "}\n",
        )
        self._loss[name] = percent

    def losses(self) -> dict[str, float]:
        """Node → the percentage of packets from other nodes it drops on arrival (nodes without loss omitted)."""
        return dict(self._loss)

    # ---- cleanup ----------------------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Remove every namespace, veth and bridge of this network (idempotent; safe after a partial create)."""
        _remove(self.tag, list(self.namespaces.values()))
        self._cut.clear()
        self._loss.clear()
        self.namespaces, self.ips = {}, {}

    @staticmethod
    def cleanup_leftovers() -> list[str]:
        """Remove networks left by runners that died (their state file's pid is gone), and prefixed namespaces
        and links that no state file claims. Returns the tags removed."""
        removed = []
        with _state_lock():
            states = _read_states()
            for tag, state in states.items():
                pid = state.get("pid")
                if isinstance(pid, int) and _pid_alive(pid):
                    continue
                spaces = state.get("namespaces")
                _remove(tag, [str(v) for v in spaces.values()] if isinstance(spaces, dict) else [])
                removed.append(tag)
            live = {t for t in states if t not in removed}
            orphans = {ns[len(NS_PREFIX) :].split("-", 1)[0] for ns in _namespace_names() if ns.startswith(NS_PREFIX)}
            for link in _link_names():
                for prefix in (BRIDGE_PREFIX, VETH_PREFIX):
                    if link.startswith(prefix) and len(link) >= len(prefix) + 4:
                        orphans.add(link[len(prefix) : len(prefix) + 4])
            # Only our 4-hex tags: `available()`'s short-lived probe namespace is another process's business.
            orphans = {tag for tag in orphans if _is_tag(tag)}
            for tag in sorted(orphans - live - set(removed)):
                _remove(tag, [ns for ns in _namespace_names() if ns.startswith(f"{NS_PREFIX}{tag}-")])
                removed.append(tag)
        return removed


def _is_tag(text: str) -> bool:
    return len(text) == 4 and all(c in "0123456789abcdef" for c in text)


def _remove(tag: str, namespaces: list[str]) -> None:
    """Delete one network's namespaces (killing what still runs in them), host veths, bridge and state file."""
    existing = set(_namespace_names())
    for ns in namespaces + [n for n in existing if n.startswith(f"{NS_PREFIX}{tag}-") and n not in namespaces]:
        if ns not in existing:
            continue
        for pid_text in _ip("netns", "pids", ns, check=False).split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_text), signal.SIGKILL)
        _ip("netns", "del", ns, check=False)
    for link in _link_names():
        if link == f"{BRIDGE_PREFIX}{tag}" or link.startswith(f"{VETH_PREFIX}{tag}"):
            _ip("link", "del", link, check=False)
    with contextlib.suppress(FileNotFoundError):
        (STATE_DIR / f"{tag}.json").unlink()
