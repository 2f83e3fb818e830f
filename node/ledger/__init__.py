"""The ledger as a node service: the async shell around the pure consensus machine, its wire format and reactors."""
