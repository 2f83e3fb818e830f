"""Running a parsed `ehrnet` command: the handler's exit code, and user errors turned into one line and a code.

Every command group can also run on its own (`python -m node.light.cli light ...` on a device that installs only
the light client), so the runner lives below the group modules and the full CLI (node/cli/main.py) alike: a group
imports it without importing the CLI that imports the group.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from node.cli.args import HintingParser, reject_unknown
from node.client.errors import NodeError, exit_code

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


class CliError(Exception):
    """A user error: printed as `ehrnet: error: ...`, exit code 2."""


def node_failure(error: NodeError) -> int:
    """Report a node error as every command does — one line on stderr — and return its exit code: the one mapping
    from the client's error tree to exit codes (docs/API.md, "Clients"), for handlers that return a code too."""
    print(f"ehrnet: error: {error}", file=sys.stderr)
    return exit_code(error)


def run_standalone(register: Callable[[SubParsers], None], argv: Sequence[str] | None = None) -> int:
    """One command group without the rest of `ehrnet` (e.g. `python -m node.light.cli light ...` on a device),
    with the same error handling as the full CLI."""
    parser: argparse.ArgumentParser = HintingParser(prog="ehrnet")
    register(parser.add_subparsers(dest="command", required=True))
    return dispatch(parser, argv)


def dispatch(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse, run the chosen handler, and turn user errors into `ehrnet: error: ...` with exit code 2, and a node's
    errors into the same line with the client's exit code."""
    from node.cluster.config import ConfigError
    from node.cluster.errors import ClusterError

    HintingParser.command_line = list(sys.argv[1:] if argv is None else argv)
    args, extras = parser.parse_known_args(argv)
    reject_unknown(parser, args, extras)
    try:
        code: int = args.func(args)
    except (CliError, ConfigError, ClusterError) as exc:
        print(f"ehrnet: error: {exc}", file=sys.stderr)
        code = getattr(exc, "exit_code", 2)  # a cluster that is only slow (a timeout) exits 1
        return int(code)
    except NodeError as exc:
        return node_failure(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        sys.stderr.close()
        return 0
    return code
