"""The base every layer shares: canonical DAG-CBOR (`codec`) and Ed25519 identities (`keys`).

Why a package of its own: the content store hashes DAG-CBOR blocks, and the offload protocol encodes its
messages and derives its box keys, with the same rules and keys as the ledger, but neither uses anything of the
ledger. While these two modules lived in `consensus/`, the import graph said `storage -> consensus` and
`offload -> consensus`, edges that do not exist in the design. Here the layering reads as it is:

    primitives  <-  consensus, storage, offload  <-  node

Nothing here imports another ehrnet package. The move changed no byte: key files and every object encoded
before it read the same (the key file format and the encoding rules are these modules' own, unchanged).
"""
