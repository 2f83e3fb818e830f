"""ehrnet full peer: the libp2p bridge, services, HTTP API, cluster tooling and the `ehrnet` CLI."""

__version__ = "0.1.0"
