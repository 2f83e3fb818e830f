"""The offload package's exception tree.

Every error a peer or a user can provoke is an `OffloadError`. Errors that can travel back over the wire to a
device carry a short stable `code` (the error response format in docs/OFFLOAD.md), so a client in another
language can branch on it without parsing the message.
"""

from __future__ import annotations


class OffloadError(Exception):
    """Base class for everything the offload package raises on bad input."""

    code = "offload-error"


class ProfileError(OffloadError):
    """A device profile or stored task profile is missing or malformed."""

    code = "bad-profile"


class ProblemError(OffloadError):
    """An offloading problem is malformed (shapes, negative costs, bad weights)."""

    code = "bad-problem"


class EnvelopeError(OffloadError):
    """A request or response could not be accepted."""

    code = "bad-envelope"


class OversizeError(EnvelopeError):
    """The message is larger than the receiver accepts."""

    code = "too-large"


class MalformedError(EnvelopeError):
    """The message is not a well-formed envelope (encoding, fields, key or nonce sizes)."""

    code = "malformed"


class UnsupportedVersionError(EnvelopeError):
    """The envelope names a format version this node does not speak."""

    code = "unsupported-version"


class TamperedError(EnvelopeError):
    """Authenticated decryption failed: the ciphertext was altered or sealed for another key."""

    code = "decrypt-failed"


class UnknownTaskError(OffloadError):
    """The request names a task this node does not run."""

    code = "unknown-task"


class TaskInputError(OffloadError):
    """A task's input bytes do not decode to a valid signal."""

    code = "bad-input"


class TaskFailedError(OffloadError):
    """The analysis ran but could not produce a result (e.g. no heartbeats found)."""

    code = "task-failed"


class RecordError(OffloadError):
    """A health record (FHIR) could not be built from a result, or a received record is not a valid one."""

    code = "bad-record"


class TransportError(OffloadError):
    """The edge node could not be reached or did not answer (raised by a device-side `Transport`)."""

    code = "transport"


class SessionError(OffloadError):
    """An offload session was given an unusable task list or configuration."""

    code = "bad-session"


class RemoteError(OffloadError):
    """The edge node answered with an error response; `code` is the remote code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"edge node refused the request: {code}: {message}")
        self.code = code
        self.remote_message = message


# Codes an edge node may put in an error response, so the client can map them back to types.
WIRE_ERRORS: dict[str, type[OffloadError]] = {
    cls.code: cls
    for cls in (
        OversizeError,
        MalformedError,
        UnsupportedVersionError,
        TamperedError,
        UnknownTaskError,
        TaskInputError,
        TaskFailedError,
    )
}
