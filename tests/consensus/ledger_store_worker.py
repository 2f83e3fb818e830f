"""A child process for the chain-store crash tests: commits blocks in a loop and reports each final height.

python -m tests.consensus.ledger_store_worker DIR loop        # until killed
python -m tests.consensus.ledger_store_worker DIR fill LIMIT  # with a file-size limit, until the disk "fills"
"""

from __future__ import annotations

import resource
import signal
import sys
from pathlib import Path

from consensus.chainstore import ChainStore
from consensus.errors import DiskFullError
from consensus.execute import build_block
from consensus.state import get_nonce
from consensus.system_txs import default_registry
from tests.consensus.ledger_helpers import USER_KEYS, VALIDATOR_KEYS, make_genesis, record, sign_commit


def commit_next(store: ChainStore, value_size: int) -> None:
    genesis = store.genesis
    height = store.height + 1
    with store.reader() as reader:
        txs = [
            record(k, get_nonce(reader.get_value, k.address), b"h%d" % height, bytes([height % 251]) * value_size)
            for k in USER_KEYS
        ]
        block, result = build_block(
            reader,
            store.head,
            txs,
            proposer=VALIDATOR_KEYS[height % 4].public_key,
            time_ms=store.head.time_ms + 1000,
            params=genesis.params,
            registry=default_registry(),
        )
    store.commit_block(block, sign_commit(block.header, VALIDATOR_KEYS[:3]), result)


def main() -> None:
    path, mode = Path(sys.argv[1]), sys.argv[2]
    if mode == "fill":
        limit = int(sys.argv[3])
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # make writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    store = ChainStore(path, make_genesis(), initial_map_size=1 << 20)
    try:
        while True:
            commit_next(store, 1000 if mode == "fill" else 64)
            print(store.height, flush=True)
    except DiskFullError as exc:
        print(f"full {store.height} {exc}", flush=True)
        store.close()


if __name__ == "__main__":
    main()
