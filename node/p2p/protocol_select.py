"""Protocol selection on a new stream in one round trip instead of two.

Part of the libp2p bridge (like `node/p2p/bridge.py` it imports libp2p; nothing outside the bridge's `node/p2p/`
modules does).

Every stream starts with multistream-select (libp2p's `connections` spec, "Protocol Negotiation"): the dialer
sends the header `/multistream/1.0.0` and the protocol it wants; the listener echoes the header and then the
protocol, or answers `na`. py-libp2p 0.8.1's client sends the header, waits for the listener's header, and only
then sends the protocol: two round trips before the first byte of the request. Each round trip crosses both
processes' trio guest runs (`node/p2p/bridge.py`); on a loaded machine that is hundreds of milliseconds, and a fresh
connection opens half a dozen streams at once (identify and gossipsub each way, the keepalive's ping, the
ledger's status request), so a restarted node's first requests to its peers took 1–2 s (measured at load 9–16).

The spec lets the dialer send the header and its first proposal together without waiting (go-libp2p's
`SelectProtoOrFail` does; the listener reads its input in order, so it cannot tell the difference). `PipelinedSelect`
does that: one write, then both answers are read — one round trip. Further proposals, if the first is refused,
go one at a time as before. Install it with `PipelinedSelect.install(host)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import trio
from libp2p.abc import IMultiselectCommunicator
from libp2p.custom_types import TProtocol
from libp2p.protocol_muxer.exceptions import (
    MultiselectClientError,
    MultiselectCommunicatorError,
    ProtocolNotSupportedError,
)
from libp2p.protocol_muxer.multiselect_client import (
    MULTISELECT_PROTOCOL_ID,
    PROTOCOL_NOT_FOUND_MSG,
    MultiselectClient,
)
from libp2p.protocol_muxer.multiselect_communicator import MultiselectCommunicator
from libp2p.utils.varint import encode_delim


class PipelinedSelect(MultiselectClient):
    """A multistream-select dialer that sends the header and its first proposal in one write."""

    @staticmethod
    def install(host: Any) -> None:
        """Use this client for every stream `host` (a py-libp2p BasicHost) opens."""
        host.multiselect_client = PipelinedSelect()

    async def select_one_of(
        self,
        protocols: Sequence[TProtocol],
        communicator: IMultiselectCommunicator,
        negotiate_timeout: int = 30,
    ) -> TProtocol:
        if not protocols or not isinstance(communicator, MultiselectCommunicator):
            return await super().select_one_of(protocols, communicator, negotiate_timeout)
        first, *others = protocols
        with trio.move_on_after(negotiate_timeout):
            try:
                await communicator.read_writer.write(
                    encode_delim(MULTISELECT_PROTOCOL_ID.encode()) + encode_delim(str(first).encode())
                )
            except Exception as exc:  # the library's communicator wraps the same errors
                raise MultiselectClientError(f"protocol write failed: {exc}, protocol={first}") from exc
            header = await _read(communicator, first)
            if header != MULTISELECT_PROTOCOL_ID:
                raise MultiselectClientError(f"multiselect protocol ID mismatch: got {header!r}")
            answer = await _read(communicator, first)
            if answer == str(first):
                return first
            if answer != PROTOCOL_NOT_FOUND_MSG:
                raise MultiselectClientError(f"unrecognized response {answer!r} to {first!r}")
            refusals = [f"protocol not supported: {first}"]
            for protocol in others:  # rare (we always offer one protocol): one round trip each, as the library does
                try:
                    return await self.try_select(communicator, protocol)
                except ProtocolNotSupportedError as exc:
                    refusals.append(str(exc))
            raise MultiselectClientError(
                f"protocols not supported: tried {[str(p) for p in protocols]}. Last error: {refusals[-1]}"
            )
        raise MultiselectClientError(f"response timed out after {negotiate_timeout}s, protocols tried: {protocols}")


async def _read(communicator: IMultiselectCommunicator, protocol: TProtocol) -> str:
    try:
        return await communicator.read()
    except MultiselectCommunicatorError as exc:
        raise MultiselectClientError(f"protocol read failed: {exc}, protocol={protocol}") from exc
