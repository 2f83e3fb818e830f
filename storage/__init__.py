"""The content-addressed EHR store: IPFS-compatible CIDs, an LMDB block store, a Kademlia DHT for provider
records, block exchange, pinning/GC/replication, and envelope encryption of records. See docs/STORAGE.md."""
