"""Log records during a narrated run (the demo): one line each, under the step they happened in.

py-libp2p reports connection trouble as ERROR records written for its own developers: a stream it could not open
takes seven lines (timeouts, lock statistics), and a reset connection logs one line per stream it carried. With no
handler configured they reached stderr raw, in the middle of the demo's story. Here every record becomes one line
that names the step, the peer (by node name) and what happens next (the library retries, the phone falls back,
the connection is redialled); a message repeated within a step is shown once. The full records, tracebacks
included, go to a log file whose path the demo prints.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

INDENT = " " * 10  # the narrator's detail indentation
MAX_LINE = 150

# What follows when a stream for each protocol cannot be opened (docs/PROTOCOL.md lists who serves which).
NEXT_BY_PROTOCOL = {
    "/meshsub/1.1.0": "gossip is best-effort: the router opens a new stream at its next heartbeat",
    "/ipfs/id/1.0.0": "identify is best-effort and runs again on the next connection",
    "/ipfs/id/push/1.0.0": "identify is best-effort and runs again on the next connection",
    "/ipfs/ping/1.0.0": "the keepalive counts a miss; after two it closes the connection and it is redialled",
    "/ehrnet/offload/1.0.0": "the phone runs that task itself (fallback) if the request fails",
}
NEXT_FOR_REQUESTS = "the request fails and its caller retries it or asks another provider"
NEXT_FOR_CLOSED = "the next request to it dials it again"

_PEER_ID = re.compile(r"\b(12D3KooW[1-9A-HJ-NP-Za-km-z]{44}|Qm[1-9A-HJ-NP-Za-km-z]{44})\b")
_OPEN_FAILED = re.compile(
    r"Failed to open stream to peer (\S+?):?\n(?:.*\n)*?\s*Error: (.*)\n(?:.*\n)*?\s*Protocols: (.*)"
)
# Records that only precede a fuller one about the same event (a failed negotiation is followed by "could not
# open ... to <peer>", which names the peer): kept in the log file, not repeated on the console.
_PRELUDES = ("MultiselectClient handshake: write failed",)
_HANDLE_INCOMING = re.compile(r"Error in handle_incoming for peer (\S+): (\w+): (.*)")


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 1] + "…"


def describe(record: logging.LogRecord, peer_names: dict[str, str]) -> tuple[tuple[str, ...], str]:
    """(a key that identifies the message regardless of its details, its one-line wording)."""

    def peer(text: str) -> str:
        name = peer_names.get(text)
        return name if name is not None else f"peer {text[:14]}…"

    message = record.getMessage()
    opened = _OPEN_FAILED.search(message)
    if opened:
        who, error, protocols = opened.groups()
        protocol = protocols.strip("[]' ").split("'")[0]
        then = NEXT_BY_PROTOCOL.get(protocol, NEXT_FOR_REQUESTS)
        return ("open", who, protocol), f"could not open {protocol} to {peer(who)} ({_shorten(error)}); {then}"
    incoming = _HANDLE_INCOMING.search(message)
    if incoming:
        who, kind, detail = incoming.groups()
        return ("closed", who), f"connection to {peer(who)} closed ({kind}: {_shorten(detail)}); {NEXT_FOR_CLOSED}"
    first = message.strip().splitlines()[0] if message.strip() else record.name
    if record.exc_info and record.exc_info[1] is not None:
        first += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
    worded = _PEER_ID.sub(lambda m: peer(m.group(1)), first)
    key = (record.name, _PEER_ID.sub("<peer>", message.splitlines()[0] if message else ""))
    return key, f"{record.name}: {_shorten(worded)}"


class StoryLogHandler(logging.Handler):
    """Writes each new message as one line under the current step; repeats within a step are only counted."""

    def __init__(self, step: Callable[[], str], out: TextIO | None = None) -> None:
        super().__init__(logging.WARNING)
        self.step = step
        self.out = out
        self.peer_names: dict[str, str] = {}
        self.shown = 0
        self.repeats = 0
        self._seen: set[tuple[str, ...]] = set()
        self._seen_in = ""

    def name_peers(self, names: dict[str, str]) -> None:
        self.peer_names.update(names)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.getMessage().startswith(_PRELUDES):
                return
            step = self.step()
            if step != self._seen_in:
                self._seen, self._seen_in = set(), step
            key, line = describe(record, self.peer_names)
            if key in self._seen:
                self.repeats += 1
                return
            self._seen.add(key)
            self.shown += 1
            out = self.out or sys.stderr
            out.write(f"{INDENT}! {step}: {line}\n")
            out.flush()
        except Exception:
            self.handleError(record)


def install_story_logging(log_file: Path, step: Callable[[], str], out: TextIO | None = None) -> StoryLogHandler:
    """Route this process's log records: all of them, in full, to `log_file`; warnings and errors also to `out`
    (stderr) as one line each under `step()`. Returns the console handler (to name peers, count messages)."""
    # Importing py-libp2p resets its "libp2p" logger: no handlers, and no propagation to the root logger, so that
    # Python's last-resort handler printed its records raw. Import it first, then let its records through.
    import libp2p  # noqa: F401

    library = logging.getLogger("libp2p")
    library.propagate = True
    library.setLevel(logging.WARNING)  # its INFO records are for its own developers
    root = logging.getLogger()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(log_file)
    to_file.setLevel(logging.INFO)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    story = StoryLogHandler(step, out)
    root.addHandler(to_file)
    root.addHandler(story)
    root.setLevel(logging.INFO)
    return story
