"""Block sync: when a node asks a peer for the final blocks it lacks, and the pipelined transfer itself."""
