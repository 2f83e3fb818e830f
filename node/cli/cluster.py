"""`ehrnet cluster ...` and `ehrnet network generate`: spawn and manage a local N-node cluster."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from node.cluster.config import NetworkConfig, dump_network, generate_network, load_network
from node.cluster.errors import ClusterError
from node.cluster.local import Cluster, default_data_dir
from node.cluster.network_init import RESOLVED_NAME, resolve_network
from node.cluster.running import start_cluster as start_cluster  # re-exported: `cluster up` runs it
from node.cluster.wait import STATUS_TIMEOUT_S, ClusterTimeout

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

# A node answers within ~2 s on a quiet 2-core machine, but its imports alone took over 12 s at load 14: the wait
# is generous because it only matters when something is slow, and progress lines show what it is waiting for.
DEFAULT_TIMEOUT_S = 60.0


def register(sub: SubParsers, add_data_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    cluster = sub.add_parser("cluster", help="spawn and manage a local cluster").add_subparsers(
        dest="cluster_cmd", required=True
    )
    for cmd, helptext, func in (
        ("up", "start a cluster and wait until it is meshed", cmd_up),
        ("init", "resolve keys, ports and peer IDs without starting anything", cmd_init),
    ):
        p = cluster.add_parser(cmd, help=helptext)
        source = p.add_mutually_exclusive_group()
        source.add_argument("-n", type=int, default=None, help="number of nodes of a generated local network")
        source.add_argument("--config", type=Path, default=None, help="network config (TOML)")
        add_data_dir(p)
        if cmd == "up":
            p.add_argument("--detach", action="store_true", help="return once meshed; manage with cluster status/down")
            p.add_argument(
                "--timeout",
                type=float,
                default=DEFAULT_TIMEOUT_S,
                help=f"seconds to wait for the mesh (default {DEFAULT_TIMEOUT_S:.0f}); progress is shown meanwhile",
            )
        p.set_defaults(func=func)

    status = cluster.add_parser("status", help="show the nodes and their connections")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    add_data_dir(status)
    status.set_defaults(func=cmd_status)

    down = cluster.add_parser("down", help="stop every node (SIGTERM, then SIGKILL after 10 s)")
    add_data_dir(down)
    down.set_defaults(func=cmd_down)

    for cmd, helptext, func in (
        ("kill", "SIGKILL one node (a crash)", cmd_kill),
        ("restart", "stop one node and start it again", cmd_restart),
        ("logs", "print a node's log", cmd_logs),
        ("pause", "SIGSTOP one node (it holds its connections and answers nothing)", cmd_pause),
        ("resume", "SIGCONT a paused node", cmd_resume),
        ("wipe", "kill one node, delete its state but its key, and start it again", cmd_wipe),
    ):
        p = cluster.add_parser(cmd, help=helptext)
        p.add_argument("node", help="node name, e.g. node2")
        add_data_dir(p)
        if cmd == "restart":
            p.add_argument(
                "--timeout",
                type=float,
                default=DEFAULT_TIMEOUT_S,
                help=f"seconds to wait for the node to answer and connect (default {DEFAULT_TIMEOUT_S:.0f})",
            )
        if cmd == "logs":
            p.add_argument("--lines", type=int, default=0, help="only the last N lines")
            p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
        if cmd == "wipe":
            p.add_argument("--no-start", action="store_true", help="leave the wiped node stopped")
        p.set_defaults(func=func)

    network = sub.add_parser("network", help="network configs").add_subparsers(dest="network_cmd", required=True)
    gen = network.add_parser("generate", help="write a template config for an N-node local network")
    gen.add_argument("-n", type=int, required=True, help="number of nodes")
    gen.add_argument("--out", type=Path, default=None, help="file to write (default: stdout)")
    gen.set_defaults(func=cmd_generate)


def _data_dir(args: argparse.Namespace) -> Path:
    path: Path = args.data_dir or default_data_dir()
    return path.resolve()


def _template(args: argparse.Namespace) -> NetworkConfig:
    if args.config is not None:
        return load_network(args.config)
    return generate_network(args.n or 4)


def _open_cluster(args: argparse.Namespace) -> Cluster:
    data_dir = _data_dir(args)
    config = data_dir / RESOLVED_NAME
    if not config.exists():
        raise ClusterError(f"--data-dir: no cluster in {data_dir} (start one with `ehrnet cluster up`)")
    return Cluster(load_network(config), data_dir)


def _known(cluster: Cluster, name: str) -> str:
    if name not in cluster.records:
        raise ClusterError(f"node: no node named {name!r} (nodes: {', '.join(cluster.records)})")
    return name


def print_table(cluster: Cluster) -> None:
    rows = cluster.table()
    print(f"{'name':<8} {'state':<6} {'peers':>5}  {'peer id':<54} {'http':<24} multiaddr")
    for row in rows:
        state = "up" if row["alive"] else "down"
        peers = "-" if row["peers"] is None else str(row["peers"])
        print(f"{row['name']:<8} {state:<6} {peers:>5}  {row['peer_id']:<54} {row['http_url']:<24} {row['multiaddr']}")


def _progress(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


def _timeout_hint(timeout: float) -> str:
    return f"(waited --timeout {timeout:.0f} s; start-up is slower on a busy machine: try --timeout {2 * timeout:.0f})"


def cmd_init(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    resolved = resolve_network(_template(args), data_dir)
    print(f"resolved network {resolved.name} in {data_dir / RESOLVED_NAME}")
    print(f"admin key: {data_dir / 'keys' / 'admin.key'}")
    for node in resolved.nodes:
        print(f"  ehrnet node run --config {data_dir / RESOLVED_NAME} --name {node.name}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    started = time.monotonic()
    try:
        cluster = start_cluster(_template(args), data_dir, args.timeout, progress=_progress)
    except ClusterTimeout as exc:
        raise ClusterTimeout(f"{exc}\n{_timeout_hint(args.timeout)}; every node was stopped", exc.slow) from exc
    print(f"cluster {cluster.network.name} meshed in {time.monotonic() - started:.1f} s; data dir {data_dir}")
    print_table(cluster)
    if args.detach:
        print(f"manage it with: ehrnet cluster status|down --data-dir {data_dir}")
        return 0
    print("Ctrl-C stops the cluster")
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stop:
        time.sleep(0.2)
    cluster.down()
    print("cluster stopped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    cluster = _open_cluster(args)
    if args.json:
        doc = {"network": cluster.network.name, "data_dir": str(cluster.data_dir), "nodes": cluster.table()}
        print(json.dumps(doc))
    else:
        print_table(cluster)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    cluster = _open_cluster(args)
    cluster.down()
    print(f"cluster {cluster.network.name} stopped")
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    cluster = _open_cluster(args)
    cluster.kill(_known(cluster, args.node))
    print(f"{args.node} killed")
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    """Exit 0 once the node answers and is connected to every running peer that answers; a peer that runs but
    does not answer (paused, hung) is named and not waited for. Exit 1 if the node has not answered within
    --timeout: it is left starting, and the message says how to follow it."""
    cluster = _open_cluster(args)
    name = _known(cluster, args.node)
    cluster.stop(name)
    cluster.spawn(name)
    pid = cluster.records[name].pid
    _progress(f"{name} started (pid {pid}); waiting up to {args.timeout:.0f} s for it to answer and connect")
    try:
        cluster.wait_connected([name], timeout=args.timeout, progress=_progress, skip_silent_peers=True)
    except ClusterTimeout as exc:
        if cluster.status_of(name, timeout=STATUS_TIMEOUT_S) is not None:
            print(f"{name} restarted (pid {pid}) and answers, but is not meshed yet:\n{exc}", file=sys.stderr)
            return 0
        print(f"ehrnet: error: {exc}\n{_timeout_hint(args.timeout)}", file=sys.stderr)
        print(f"{name} keeps starting in the background; `ehrnet cluster status` shows when it is up", file=sys.stderr)
        return 1
    print(f"{name} restarted (pid {pid})")
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    cluster = _open_cluster(args)
    cluster.pause(_known(cluster, args.node))
    print(f"{args.node} paused (resume with: ehrnet cluster resume {args.node})")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    cluster = _open_cluster(args)
    cluster.resume(_known(cluster, args.node))
    print(f"{args.node} resumed")
    return 0


def cmd_wipe(args: argparse.Namespace) -> int:
    cluster = _open_cluster(args)
    name = _known(cluster, args.node)
    cluster.wipe(name)
    if args.no_start:
        print(f"{name} wiped and stopped")
        return 0
    cluster.spawn(name)
    cluster.wait_connected([name])
    print(f"{name} wiped and started again (pid {cluster.records[name].pid})")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    cluster = _open_cluster(args)
    path = Path(cluster.records[_known(cluster, args.node)].log)
    if not path.exists():
        raise ClusterError(f"{args.node}: no log yet at {path}")
    with path.open(errors="replace") as f:
        lines = f.readlines()
        sys.stdout.writelines(lines[-args.lines :] if args.lines else lines)
        while args.follow:
            line = f.readline()
            if line:
                sys.stdout.write(line)
                sys.stdout.flush()
            else:
                time.sleep(0.2)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    text = dump_network(generate_network(args.n))
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0
