"""Protocol selection in one round trip (node/p2p/protocol_select.py): the dialer's header and first proposal leave
in one write, before anything is read. The listener here is a scripted stream, so the order of reads and writes is
checked exactly; tests/node/test_p2p.py runs the same client against py-libp2p's real listener."""

from __future__ import annotations

import os
from typing import cast

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.io.abc import ReadWriteCloser
from libp2p.protocol_muxer.exceptions import MultiselectClientError
from libp2p.protocol_muxer.multiselect_client import MultiselectClient
from libp2p.protocol_muxer.multiselect_communicator import MultiselectCommunicator
from libp2p.utils.varint import encode_delim

from node.p2p.bridge import HostConfig, P2PHost, ProtocolRefused
from node.p2p.protocol_select import PipelinedSelect

HEADER = b"/multistream/1.0.0"


class ScriptedListener:
    """A stream whose reads return the listener's answers; records the order of the dialer's writes and reads."""

    def __init__(self, answers: list[bytes]) -> None:
        self.pending = b"".join(encode_delim(a) for a in answers)
        self.events: list[tuple[str, bytes]] = []

    async def write(self, data: bytes) -> None:
        self.events.append(("write", data))

    async def read(self, n: int | None = None) -> bytes:
        if not self.pending:
            await trio.sleep_forever()  # a listener that answers nothing more
        n = len(self.pending) if n is None else n
        chunk, self.pending = self.pending[:n], self.pending[n:]
        self.events.append(("read", chunk))
        return chunk

    async def close(self) -> None:
        return None


def select(client: MultiselectClient, listener: ScriptedListener, *protocols: str) -> str:
    async def run() -> str:
        chosen = await client.select_one_of(
            [TProtocol(p) for p in protocols],
            MultiselectCommunicator(cast(ReadWriteCloser, listener)),
            negotiate_timeout=1,
        )
        return str(chosen)

    return trio.run(run)


def writes_before_first_read(listener: ScriptedListener) -> bytes:
    sent = b""
    for kind, data in listener.events:
        if kind == "read":
            break
        sent += data
    return sent


def test_the_header_and_the_first_proposal_leave_together_before_any_read() -> None:
    listener = ScriptedListener([HEADER, b"/ehrnet/ledger/1.0.0"])
    assert select(PipelinedSelect(), listener, "/ehrnet/ledger/1.0.0") == "/ehrnet/ledger/1.0.0"
    assert writes_before_first_read(listener) == encode_delim(HEADER) + encode_delim(b"/ehrnet/ledger/1.0.0")
    assert [kind for kind, _ in listener.events].count("write") == 1  # one write, one round trip


def test_the_library_client_waits_a_round_trip_before_proposing() -> None:
    # The behaviour PipelinedSelect replaces: only the header goes out before the first read.
    listener = ScriptedListener([HEADER, b"/ehrnet/ledger/1.0.0"])
    assert select(MultiselectClient(), listener, "/ehrnet/ledger/1.0.0") == "/ehrnet/ledger/1.0.0"
    assert writes_before_first_read(listener) == encode_delim(HEADER)


def test_a_refused_first_proposal_falls_back_to_the_next() -> None:
    listener = ScriptedListener([HEADER, b"na", b"/b/1.0.0"])
    assert select(PipelinedSelect(), listener, "/a/1.0.0", "/b/1.0.0") == "/b/1.0.0"


def test_a_refusal_says_the_protocols_are_not_supported() -> None:
    # node/p2p/connections.py: refused_protocol recognises a refusal by this wording.
    with pytest.raises(MultiselectClientError, match="protocols not supported"):
        select(PipelinedSelect(), ScriptedListener([HEADER, b"na"]), "/a/1.0.0")


@pytest.mark.parametrize("answers", [[b"/other/1.0.0"], [HEADER, b"/something-else"]])
def test_a_wrong_answer_is_an_error(answers: list[bytes]) -> None:
    with pytest.raises(MultiselectClientError):
        select(PipelinedSelect(), ScriptedListener(answers), "/a/1.0.0")


def test_a_silent_listener_times_out() -> None:
    with pytest.raises(MultiselectClientError, match="timed out"):
        select(PipelinedSelect(), ScriptedListener([HEADER]), "/a/1.0.0")


async def test_real_hosts_agree_on_a_served_protocol_and_refuse_an_unserved_one() -> None:
    a, b = P2PHost(HostConfig(seed=os.urandom(32))), P2PHost(HostConfig(seed=os.urandom(32)))
    await a.start()
    await b.start()
    try:
        a.set_request_handler("/echo/1.0.0", lambda peer, request: _echo(request))
        await b.dial(a.listen_addrs[0])
        for _ in range(3):  # each on a fresh stream of the one connection
            assert await b.request(a.peer_id, "/echo/1.0.0", b"ping") == b"ping"
        with pytest.raises(ProtocolRefused):
            await b.open_stream(a.peer_id, "/not-served/1.0.0")
        assert await b.request(a.peer_id, "/echo/1.0.0", b"still") == b"still"
    finally:
        await b.stop()
        await a.stop()


async def _echo(request: bytes) -> bytes:
    return request
