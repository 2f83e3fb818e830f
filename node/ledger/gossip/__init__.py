"""The ledger's gossip: transactions delivered once per node, compact proposals, and what may travel on the topics."""
