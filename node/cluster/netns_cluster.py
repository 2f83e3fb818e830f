"""A local cluster whose nodes each run in their own network namespace (node/cluster/netns.py), for real partitions.

The namespaces are built first, so their addresses can go into the network config before it is resolved: every
node listens for libp2p and HTTP on its namespace address, its peers dial that address, and the host reaches each
HTTP API through the bridge. The cluster file records each node's namespace, so `ehrnet cluster restart` from
another process starts a node back inside it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from node.cluster.config import NetworkConfig
from node.cluster.local import Cluster
from node.cluster.netns import NamespaceNetwork
from node.cluster.network_init import resolve_network


def in_namespaces(template: NetworkConfig, net: NamespaceNetwork) -> NetworkConfig:
    """`template` with each node's host set to its namespace address (created now, unless already created)."""
    names = [spec.name for spec in template.nodes]
    ips = {name: net.ip_of(name) for name in names} if net.namespaces else net.create(names)
    return dataclasses.replace(
        template, nodes=tuple(dataclasses.replace(spec, host=ips[spec.name]) for spec in template.nodes)
    )


def start_netns_cluster(template: NetworkConfig, data_dir: Path, net: NamespaceNetwork, timeout: float) -> Cluster:
    """Build the namespaces, resolve, spawn every node inside its namespace and wait until meshed. On failure
    every node is stopped and the namespaces are removed before the error is raised."""
    try:
        resolved = resolve_network(in_namespaces(template, net), data_dir)
        cluster = Cluster(resolved, data_dir, netns=net)
        try:
            for spec in resolved.nodes:
                cluster.spawn(spec.name)
            cluster.wait_connected(timeout=timeout)
        except BaseException:
            cluster.down(timeout=5)
            raise
    except BaseException:
        net.cleanup()
        raise
    return cluster
