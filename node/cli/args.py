"""Argument types and parse-error help shared by every `ehrnet` command group.

`node_url` is the argparse `type=` of every `--node URL` option: people paste the `host:port` that `cluster status`
shows as often as the URL, and urllib/aiohttp then failed with messages that named neither the option nor the fix
(`cannot reach 127.0.0.1:50493: 127.0.0.1:50493/objects`). `unknown_option_error` turns argparse's top-level
"unrecognized arguments" into the selected subcommand's usage, and every parse error gets a "did you mean" for
each mistyped flag.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from typing import NoReturn
from urllib.parse import urlsplit


def node_url(text: str) -> str:
    """A node's HTTP API as `http(s)://host[:port]` (no trailing slash); `host:port` gets `http://`."""
    given = text.strip()
    url = given if "://" in given else f"http://{given}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{given!r} is not a node's URL ({exc}); expected http://HOST:PORT") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise argparse.ArgumentTypeError(
            f"{given!r} is not a node's HTTP API; expected http://HOST:PORT (or HOST:PORT), as `cluster status` shows"
        )
    del port  # parsed only to refuse a port that is not a number; without one, the scheme's default applies
    return f"{parts.scheme}://{parts.netloc}"


def node_url_or_multiaddr(text: str) -> str:
    """A light client's `--node`: a libp2p multiaddr (starts with /) as given, otherwise a node's HTTP URL."""
    return text if text.startswith("/") else node_url(text)


def selected_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost subcommand parser that `args` went through (e.g. the one of `ehrnet tx record`)."""
    while True:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        chosen = getattr(args, sub.dest, None) if sub is not None and sub.dest else None
        if sub is None or chosen not in sub.choices:
            return parser
        parser = sub.choices[chosen]


def flag_hints(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str:
    """A "did you mean" (`--nde: did you mean --node?`) for each flag of `argv` that `parser` lacks."""
    options = list(parser._option_string_actions)
    hints = []
    for arg in argv:
        flag = arg.split("=", 1)[0]
        if flag.startswith("-") and flag not in options:
            close = difflib.get_close_matches(flag, options, n=1, cutoff=0.6)
            if close:
                hints.append(f"{flag}: did you mean {close[0]}?")
    return "; ".join(hints)


class HintingParser(argparse.ArgumentParser):
    """An ArgumentParser (and, through add_subparsers, every subcommand's) whose errors name the closest option for
    each mistyped flag: a typo such as `--nde` also makes a required `--node` missing, and argparse reports that
    first, without a word about the typo."""

    command_line: Sequence[str] = ()  # set by the dispatcher before parsing

    def error(self, message: str) -> NoReturn:
        hints = flag_hints(self, self.command_line)
        super().error(f"{message} ({hints})" if hints else message)


def reject_unknown(parser: argparse.ArgumentParser, args: argparse.Namespace, extras: Sequence[str]) -> None:
    """argparse reports a subcommand's unknown arguments from the top-level parser, with the top-level usage:
    report them from the selected subcommand instead, with its usage (exit code 2, as argparse's own errors)."""
    if extras:
        selected_parser(parser, args).error(f"unrecognized arguments: {' '.join(extras)}")
