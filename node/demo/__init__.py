"""`ehrnet demo`: the narrated end-to-end run on a local cluster, and the data dir it may reset."""
