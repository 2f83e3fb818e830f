"""Network namespaces (root only): links, silent cuts, heals, and cleanup that leaves nothing behind, including
after a runner that died without cleaning up."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from node.cluster.netns import NamespaceNetwork, NetnsError

AVAILABLE, WHY_NOT = NamespaceNetwork.available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=WHY_NOT)


def tcp_probe(net: NamespaceNetwork, source: str, address: str, timeout: float = 1.0) -> str:
    """From inside `source`'s namespace, connect to port 9 of `address`: "refused" means the address answered
    (nothing listens there), "timeout" means the packets went nowhere (a silent cut), else the error's name."""
    code = textwrap.dedent(f"""
        import socket
        s = socket.socket()
        s.settimeout({timeout})
        try:
            s.connect(({address!r}, 9))
            print("open")
        except ConnectionRefusedError:
            print("refused")
        except TimeoutError:
            print("timeout")
        except OSError as exc:
            print(type(exc).__name__)
    """)
    out = subprocess.run(net.wrap(source, [sys.executable, "-c", code]), capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def leftovers(tag: str) -> list[str]:
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    found = [line.split()[0] for line in names.splitlines() if f"-{tag}-" in line]
    found += [line.split(":")[1].strip() for line in links.splitlines() if f"ehrb{tag}" in line or f"ehrv{tag}" in line]
    return found


def test_partition_cuts_silently_between_groups_and_heal_restores() -> None:
    net = NamespaceNetwork()
    try:
        ips = net.create(["a", "b", "c"])
        assert tcp_probe(net, "a", ips["b"]) == "refused"
        assert tcp_probe(net, "c", net.host_ip) == "refused"  # every node reaches the host through the bridge
        net.partition([["a"], ["b", "c"]])
        assert tcp_probe(net, "a", ips["b"]) == "timeout"  # no error, no reset: the packets vanish
        assert tcp_probe(net, "c", ips["a"]) == "timeout"
        assert tcp_probe(net, "b", ips["c"]) == "refused"  # inside a group the link stays
        assert tcp_probe(net, "a", net.host_ip) == "refused"  # and so does every node's link to the host
        net.partition([["a", "b"]])  # replaces the first partition; c, in no group, is isolated
        assert tcp_probe(net, "a", ips["b"]) == "refused"
        assert tcp_probe(net, "b", ips["c"]) == "timeout"
        net.heal()
        assert net.partitioned() == []
        assert tcp_probe(net, "a", ips["c"]) == "refused"
        with pytest.raises(NetnsError, match="no namespace for node 'z'"):
            net.partition([["a"], ["z"]])
    finally:
        net.cleanup()
        net.cleanup()  # idempotent
    assert leftovers(net.tag) == []


def test_cleanup_leftovers_removes_a_dead_runners_network_but_not_a_live_one() -> None:
    live = NamespaceNetwork()
    live.create(["x"])
    try:
        # A runner that builds a network and dies without cleaning up (SIGKILL: no finally runs).
        code = textwrap.dedent("""
            import os, signal, sys
            from node.cluster.netns import NamespaceNetwork
            net = NamespaceNetwork()
            net.create(["p", "q"])
            print(net.tag, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        dead_tag = out.stdout.strip()
        assert len(dead_tag) == 4 and leftovers(dead_tag), out.stderr
        removed = NamespaceNetwork.cleanup_leftovers()
        assert dead_tag in removed
        assert leftovers(dead_tag) == []
        assert live.tag not in removed and leftovers(live.tag)  # a live runner's network is left alone
    finally:
        live.cleanup()
    assert leftovers(live.tag) == []


LOSS_AVAILABLE, NO_LOSS_WHY = NamespaceNetwork.loss_available()


def udp_delivery(net: NamespaceNetwork, source: str, target: str, count: int = 2000) -> int:
    """How many of `count` UDP datagrams from `source` reach `target` (a receiver in its namespace counts them)."""
    receiver = textwrap.dedent(f"""
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Room for every datagram even if this process is not scheduled for a while (a loaded machine): a loss
        # must come from the rule, never from a full receive buffer. Root may exceed rmem_max.
        s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE (Linux; not in the socket module)
        s.bind(({net.ip_of(target)!r}, 9999))
        s.settimeout(2.0)
        print("ready", flush=True)
        got = 0
        try:
            while True:
                s.recv(64)
                got += 1
        except TimeoutError:
            print(got, flush=True)
    """)
    sender = textwrap.dedent(f"""
        import socket, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range({count}):
            s.sendto(b"x", ({net.ip_of(target)!r}, 9999))
            if i % 100 == 99:
                time.sleep(0.01)  # paced, so no send buffer fills either
    """)
    proc = subprocess.Popen(net.wrap(target, [sys.executable, "-c", receiver]), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        subprocess.run(net.wrap(source, [sys.executable, "-c", sender]), check=True, timeout=30)
        return int(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(not LOSS_AVAILABLE, reason=NO_LOSS_WHY)
def test_loss_drops_that_share_of_what_a_node_receives_from_other_nodes() -> None:
    net = NamespaceNetwork()
    try:
        net.create(["a", "b"])
        assert udp_delivery(net, "a", "b") == 2000
        net.set_loss("b", 30)
        delivered = udp_delivery(net, "a", "b")  # the sender is told nothing: no error, the packets just vanish
        assert 1200 <= delivered <= 1600, delivered  # 70 % of 2000 is 1400; ±200 is > 8 standard deviations
        assert udp_delivery(net, "b", "a") == 2000  # what b sends is not b's to drop
        assert tcp_probe(net, "b", net.host_ip) == "refused"  # the host link is never lossy
        assert net.losses() == {"b": 30}
        net.set_loss("b", 100)
        assert tcp_probe(net, "a", net.ip_of("b")) == "timeout"
        net.set_loss("b", 0)
        assert udp_delivery(net, "a", "b") == 2000
        assert net.losses() == {}
        with pytest.raises(NetnsError, match="percent"):
            net.set_loss("b", 101)
    finally:
        net.cleanup()
    assert leftovers(net.tag) == []
