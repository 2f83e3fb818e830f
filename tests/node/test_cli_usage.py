"""The `ehrnet` command line as a person meets it: every option explains itself, a mistyped flag gets the
subcommand's usage and the closest option, `--node` takes HOST:PORT as well as a URL, and contract answers print
bytes in hex, the form the arguments take."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from node.cli.args import HintingParser, help_entries, node_url
from node.cli.main import build_parser, main

HASH = "ab" * 32


def _options_without_help(parser: argparse.ArgumentParser, path: str) -> Iterator[str]:
    assert isinstance(parser, HintingParser)  # every subcommand's parser is one, so the walk reaches them all
    for entry in help_entries(parser):
        if not entry.has_help:
            yield f"{path}: {entry.invocation}"
    for name, sub in parser.subcommands.items():
        yield from _options_without_help(sub, f"{path} {name}")


def test_every_option_and_argument_has_help() -> None:
    assert list(_options_without_help(build_parser(), "ehrnet")) == []


def _usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    assert exited.value.code == 2
    return capsys.readouterr().err


def test_a_mistyped_flag_shows_the_subcommands_usage_and_the_closest_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = _usage_error(capsys, "cluster", "status", "--jsn")
    assert err.startswith("usage: ehrnet cluster status")
    assert "unrecognized arguments: --jsn" in err and "did you mean --json?" in err
    # The typo also leaves a required option missing; argparse reports that first, so the hint rides along.
    err = _usage_error(capsys, "tx", "get", HASH, "--nde", "http://127.0.0.1:1")
    assert err.startswith("usage: ehrnet tx get")
    assert "required: --node" in err and "--nde: did you mean --node?" in err


def test_node_accepts_host_and_port_and_names_the_field_otherwise(capsys: pytest.CaptureFixture[str]) -> None:
    assert node_url("127.0.0.1:50493") == "http://127.0.0.1:50493"
    assert node_url("http://127.0.0.1:50493/") == "http://127.0.0.1:50493"
    assert node_url(" https://node.example:443 ") == "https://node.example:443"
    assert node_url("node1") == "http://node1"
    for bad in ("ftp://h:1", "http://h:1/objects", "h:port", "http://"):
        with pytest.raises(argparse.ArgumentTypeError):
            node_url(bad)
    err = _usage_error(capsys, "cat", "bafy", "--node", "127.0.0.1:1/objects")
    assert "argument --node: '127.0.0.1:1/objects' is not a node's HTTP API; expected http://HOST:PORT" in err


def test_tx_record_takes_the_key_file_as_key_and_the_records_name_as_a_positional(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    for flag in ("--key", "--key-file"):
        args = parser.parse_args(["tx", "record", flag, "me.key", "--node", "127.0.0.1:1", "greeting", "hello"])
        assert (str(args.key_file), args.node, args.name, args.value) == (
            "me.key", "http://127.0.0.1:1", "greeting", "hello",
        )  # fmt: skip
    with pytest.raises(SystemExit):
        main(["tx", "record", "--help"])
    assert "--key FILE, --key-file FILE" in capsys.readouterr().out.replace("\n", " ").replace("  ", " ")


def test_contract_answers_print_bytes_as_hex() -> None:
    from node.cli.contract import bytes_as_hex

    answer = {
        "status": "ok",
        "return": {"uid": {"/": {"bytes": "AAEC"}}, "role": "admin", "ids": [{"/": {"bytes": ""}}]},
    }
    assert bytes_as_hex(answer) == {"status": "ok", "return": {"uid": "000102", "role": "admin", "ids": [""]}}
    # A map that merely contains a "/" key among others is data, not bytes.
    assert bytes_as_hex({"/": {"bytes": "AA"}, "x": 1}) == {"/": {"bytes": "AA"}, "x": 1}
