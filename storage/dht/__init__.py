"""Kademlia for provider records, as pure logic: keyspace, routing table, lookup, provider store, messages.

Nothing here does IO or reads a clock: callers pass `now` (seconds, any monotonic origin) and act on the
decisions returned (peers to query, peers to ping). See docs/STORAGE.md for the protocol.
"""
