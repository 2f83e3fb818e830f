"""The demo's log routing (node/demo/story_log.py): py-libp2p's multi-line errors, as it really words them, become one
line each under the current step, naming the peer and what happens next; the log file keeps them in full."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

EDGE = "12D3KooWKtmRSLWprMEVyvHW3PF1qWmZmXTJMg5Tee1e5RfAVV9C"
MANAGER = "12D3KooWMuDkdHeDLidwWq2nmqi836WnA4TiwbvpVxFT3mjgEEwL"

# Captured from `ehrnet demo` at load 19 (py-libp2p 0.8.1's own wording).
OPEN_FAILED = (
    f"Failed to open stream to peer {EDGE}:\n"
    "  Error: response timed out after 10s, protocols tried: ['/meshsub/1.1.0']\n"
    "  Protocols: ['/meshsub/1.1.0']\n"
    "  Timeout: 30s\n"
    "  Connection: Yamux\n"
    "  Connection State: established=True, handshake=False\n"
    "  Registry Stats: None"
)
RESET = (
    f"Error in handle_incoming for peer {MANAGER}: ConnectionClosedError: TCP connection reset by remote peer: "
    "socket connection broken: [Errno 32] Broken pipe"
)


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    library = logging.getLogger("libp2p")
    libp2p_level, libp2p_propagate = library.level, library.propagate
    # The bridge (node/p2p/connections.py), once imported, filters py-libp2p's "Failed to open stream" blocks at
    # their logger; this test is about the story's routing of the records that do reach it, whatever ran first.
    host_logger = logging.getLogger("libp2p.host.basic_host")
    host_filters = list(host_logger.filters)
    host_logger.filters = []
    yield
    host_logger.filters = host_filters
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers, root.level = handlers, level
    library.setLevel(libp2p_level)
    library.propagate = libp2p_propagate


def test_libp2p_errors_become_one_line_each_under_the_step(tmp_path: Path, root_logging: None) -> None:
    import libp2p  # noqa: F401  (its import resets the "libp2p" logger; the routing must survive that)

    from node.demo.story_log import install_story_logging

    out = io.StringIO()
    step = ["step 3"]
    story = install_story_logging(tmp_path / "demo.log", lambda: step[0], out)
    story.name_peers({EDGE: "node4", MANAGER: "node1"})

    logging.getLogger("libp2p.protocol_muxer.multiselect_client").error(
        "MultiselectClient handshake: write failed: %s", "fail to write to multiselect communicator"
    )  # the prelude of the next record, which names the peer: file only
    logging.getLogger("libp2p.host.basic_host").error(OPEN_FAILED)
    for _ in range(5):  # one per stream the connection carried
        logging.getLogger("libp2p.stream_muxer.yamux.yamux").error(RESET)
    try:
        raise TimeoutError("no answer from the edge node")
    except TimeoutError:
        logging.getLogger("node.p2p.bridge").exception("stream handler failed")
    step[0] = "step 4"
    logging.getLogger("libp2p.stream_muxer.yamux.yamux").error(RESET)  # a new step shows it again

    lines = out.getvalue().splitlines()
    assert lines == [
        "          ! step 3: could not open /meshsub/1.1.0 to node4 (response timed out after 10s, protocols tried: "
        "['/meshsub/1.1.0']); gossip is best-effort: the router opens a new stream at its next heartbeat",
        "          ! step 3: connection to node1 closed (ConnectionClosedError: TCP connection reset by remote peer: "
        "socket connection broken: [Errno 32] Broken pipe); the next request to it dials it again",
        "          ! step 3: node.p2p.bridge: stream handler failed (TimeoutError: no answer from the edge node)",
        "          ! step 4: connection to node1 closed (ConnectionClosedError: TCP connection reset by remote peer: "
        "socket connection broken: [Errno 32] Broken pipe); the next request to it dials it again",
    ]
    assert (story.shown, story.repeats) == (4, 4)
    # Nothing is lost: the file has every record in full, the traceback included.
    for handler in logging.getLogger().handlers:
        handler.flush()
    full = (tmp_path / "demo.log").read_text()
    assert "Registry Stats: None" in full and full.count("Error in handle_incoming") == 6
    assert "MultiselectClient handshake: write failed" in full
    assert "Traceback (most recent call last)" in full


def test_an_unknown_peer_and_an_unknown_protocol(root_logging: None, tmp_path: Path) -> None:
    from node.demo.story_log import describe

    message = OPEN_FAILED.replace("/meshsub/1.1.0", "/ehrnet/ehr/1.0.0")
    record = logging.LogRecord("libp2p.host.basic_host", logging.ERROR, __file__, 1, message, None, None)
    _, line = describe(record, {})
    assert line.startswith("could not open /ehrnet/ehr/1.0.0 to peer 12D3KooWKtmRSL…")
    assert line.endswith("the request fails and its caller retries it or asks another provider")
