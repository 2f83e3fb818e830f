"""Networks and local clusters: network configs, spawning node processes, waiting for them, network namespaces."""
