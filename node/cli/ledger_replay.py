"""`ehrnet ledger replay JOURNAL`: re-run a node's consensus machine from its input journal and print what it
decided (consensus/replay.py; how to record one: docs/CONSENSUS.md §8).

Exit codes: 0 when every step the journal recorded outputs for came out the same, 1 at the first step that did
not (it is named), 2 for a journal or key that cannot be used.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from node.cli.dispatch import CliError

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def register(sub: SubParsers) -> None:
    ledger = sub.add_parser("ledger", help="inspect a node's ledger offline").add_subparsers(
        dest="ledger_cmd", required=True
    )
    replay = ledger.add_parser(
        "replay",
        help="re-run a node's consensus machine from its input journal (node run --journal) and print its decisions",
    )
    replay.add_argument("journal", metavar="JOURNAL", type=Path, help="the journal file (DATA_DIR/consensus.journal)")
    replay.add_argument(
        "--key",
        "--key-file",
        dest="key_file",
        metavar="FILE",
        type=Path,
        default=None,
        help="the node's key file (default: node.key beside the journal); the machine signs its votes again",
    )
    replay.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    replay.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    from consensus.input_journal import JournalError
    from consensus.replay import public_keys, read_segments, replay
    from primitives.keys import KeyFileError, SigningKey

    journal: Path = args.journal
    if not journal.is_file():
        raise CliError(f"JOURNAL: {journal} is not a file")
    try:
        segments = read_segments(journal)
    except (JournalError, OSError) as exc:
        raise CliError(f"JOURNAL: {exc}") from exc
    if not segments:
        raise CliError(f"JOURNAL: {journal} holds no begin record (is it a consensus journal?)")
    key = None
    if public_keys(segments):
        key_file: Path = args.key_file or journal.parent / "node.key"
        try:
            key = SigningKey.load(key_file)
        except (KeyFileError, OSError) as exc:
            raise CliError(f"--key: {exc} (the journal was written by a validator: replay needs its key)") from exc
    try:
        result = replay(segments, key)
    except JournalError as exc:
        raise CliError(f"JOURNAL: {exc}") from exc
    if args.json:
        decisions = [
            {"segment": d.segment, "step": d.step, "height": d.height, "round": d.round, "block": d.value_hash.hex()}
            for d in result.decisions
        ]
        mismatch = str(result.mismatch) if result.mismatch is not None else None
        summary = {"segments": result.segments, "steps": result.steps, "compared": result.compared}
        print(json.dumps({**summary, "decisions": decisions, "mismatch": mismatch}))
    else:
        for d in result.decisions:
            print(f"height {d.height} round {d.round} block {d.value_hash.hex()} (segment {d.segment} step {d.step})")
        print(
            f"replayed {result.steps} steps in {result.segments} segment(s), {len(result.decisions)} decisions; "
            f"{result.compared} steps compared with the journal"
        )
        if result.mismatch is not None:
            print(f"MISMATCH at {result.mismatch}")
    return 1 if result.mismatch is not None else 0
