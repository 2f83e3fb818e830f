"""The libp2p edge: the asyncio bridge to py-libp2p (trio guest mode), gossip, peering, keepalive and peer scores."""
