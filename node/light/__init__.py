"""The light client: follows the chain from headers alone and checks every state answer it relies on.

Kept free of heavy imports (numpy, scipy, the node's server side) so a device process stays small; libp2p is
imported only when a libp2p transport is used.
"""
