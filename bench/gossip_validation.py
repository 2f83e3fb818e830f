"""What judging a gossip message costs before it is forwarded (node/ledger/gossip/validation.py), against
decoding alone.

    .venv/bin/python -m bench.gossip_validation [--json]

The topic validators run on the libp2p side's thread for every message a node receives, so their cost is added
to every hop. Measured per message, in the same run: a consensus batch of 4 votes (one height's prevotes of a
4-validator network) decoded only (the baseline: the ledger decodes it anyway), and judged (decode, chain, every
signature, window and validator set); a 100-transaction batch decoded only, and judged (each transaction's
canonical form and chain; signatures are left to the mempool). Printed as µs per message and the ratio.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from consensus.gossip_batch import ConsensusBatch
from consensus.tx import Tx
from consensus.votes import Vote, VoteKind
from node.ledger import wire
from node.ledger.gossip.validation import LedgerGossipJudge, MeshMembers
from node.p2p.types import GossipMessage
from primitives.keys import SigningKey

CHAIN = "ehrnet-bench"


def per_call_us(fn: Callable[[], object], seconds: float = 0.5) -> float:
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        calls += 1
    return elapsed / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    keys = [SigningKey(bytes([i]) * 32) for i in range(1, 5)]
    members = MeshMembers()
    members.update([], [k.public_key for k in keys])
    judge = LedgerGossipJudge(CHAIN, members, lambda: 10, max_tx_bytes=4096)
    votes = tuple(Vote(VoteKind.PREVOTE, CHAIN, 11, 0, b"\x01" * 32, k.public_key).signed(k) for k in keys)
    batch = GossipMessage("c", ConsensusBatch((), votes).encode(), "peer")
    user = SigningKey(b"\x09" * 32)
    raws = [Tx.create(user, CHAIN, "record", n, {"key": b"k", "value": b"v" * 64}).raw for n in range(100)]
    txs = GossipMessage("t", wire.encode_txs(raws), "peer")
    figures = {
        "consensus_decode_us": per_call_us(lambda: ConsensusBatch.decode(batch.data)),
        "consensus_judge_us": per_call_us(lambda: judge.consensus(batch)),
        "txs_decode_us": per_call_us(lambda: wire.decode_txs(txs.data)),
        "txs_judge_us": per_call_us(lambda: judge.txs(txs)),
    }
    figures["consensus_ratio"] = figures["consensus_judge_us"] / figures["consensus_decode_us"]
    figures["txs_ratio"] = figures["txs_judge_us"] / figures["txs_decode_us"]
    if args.json:
        print(json.dumps({k: round(v, 2) for k, v in figures.items()}))
        return
    print(
        f"consensus batch of 4 votes: decode {figures['consensus_decode_us']:.0f} µs, judged "
        f"{figures['consensus_judge_us']:.0f} µs ({figures['consensus_ratio']:.1f}×)"
    )
    print(
        f"100-tx batch: decode {figures['txs_decode_us']:.0f} µs, judged {figures['txs_judge_us']:.0f} µs "
        f"({figures['txs_ratio']:.1f}×, {figures['txs_judge_us'] / 100:.1f} µs per tx)"
    )


if __name__ == "__main__":
    main()
