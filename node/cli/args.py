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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn
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
    while isinstance(parser, HintingParser) and parser.subcommand_dest is not None:
        chosen = getattr(args, parser.subcommand_dest, None)
        if not isinstance(chosen, str) or chosen not in parser.subcommands:
            break
        parser = parser.subcommands[chosen]
    return parser


@dataclass(frozen=True)
class HelpEntry:
    """One argument as `--help` lists it: its invocation (`--key FILE, --key-file FILE`, or a positional's name)
    and whether a help text follows it."""

    invocation: str
    has_help: bool

    @property
    def option_names(self) -> list[str]:
        return [piece.split()[0] for piece in self.invocation.split(", ") if piece.startswith("-")]


# argparse's help lists each argument at an indent of two spaces (its help after two or more spaces, or on the
# next, deeper-indented line); usage continuations and a subcommand table's rows are indented deeper, and
# descriptions are re-wrapped flush left, so only argument entries match.
_ENTRY = re.compile(r"^  (?P<invocation>[^\s{].*?)(?:\s{2,}(?P<help>\S.*))?$")


def help_entries(parser: argparse.ArgumentParser) -> list[HelpEntry]:
    """The arguments of `parser` as its `--help` shows them. Read from the help text, argparse's public view of
    its arguments, rather than from the parser's private action lists."""
    lines = parser.format_help().splitlines()
    entries = []
    for line, following in zip(lines, [*lines[1:], ""], strict=True):
        match = _ENTRY.match(line)
        if match:
            continued = following.startswith("   ") and bool(following.strip())
            entries.append(HelpEntry(match["invocation"], match["help"] is not None or continued))
    return entries


def flag_hints(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str:
    """A "did you mean" (`--nde: did you mean --node?`) for each flag of `argv` that `parser` lacks."""
    options = [name for entry in help_entries(parser) for name in entry.option_names]
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # This parser's subcommands by name and the attribute that names the chosen one, kept here because
        # argparse offers no public way to walk a parser's subcommands.
        self.subcommands: Mapping[str, argparse.ArgumentParser] = {}
        self.subcommand_dest: str | None = None

    def add_subparsers(self, **kwargs: Any) -> Any:
        table = super().add_subparsers(**kwargs)
        self.subcommands = table.choices  # argparse fills this dict as subcommands are added
        self.subcommand_dest = table.dest
        return table

    def error(self, message: str) -> NoReturn:
        hints = flag_hints(self, self.command_line)
        super().error(f"{message} ({hints})" if hints else message)


def reject_unknown(parser: argparse.ArgumentParser, args: argparse.Namespace, extras: Sequence[str]) -> None:
    """argparse reports a subcommand's unknown arguments from the top-level parser, with the top-level usage:
    report them from the selected subcommand instead, with its usage (exit code 2, as argparse's own errors)."""
    if extras:
        selected_parser(parser, args).error(f"unrecognized arguments: {' '.join(extras)}")
