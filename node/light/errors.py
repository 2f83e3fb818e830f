"""The light client's exception tree: one base, so the CLI can report any of them at one boundary."""

from __future__ import annotations


class LightError(Exception):
    """Base of every error the light client raises on purpose."""


class WireError(LightError):
    """A light-protocol message is malformed (from a peer) or a request is invalid (from a user)."""


class RemoteError(LightError):
    """A full node answered a light request with a typed error (`code` names it)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class SourceError(LightError):
    """A full node could not be reached or did not answer in time."""


class BadPeerError(LightError):
    """A full node served data that fails verification (a forged header, commit, set or proof)."""


class NoSourceError(LightError):
    """Every full node was tried and none gave a verifiable answer."""


class TrustStoreError(LightError):
    """The client's data directory is unreadable or belongs to another chain."""


class IdentityError(LightError):
    """A light client key file is missing, malformed, or a device binding does not verify."""
