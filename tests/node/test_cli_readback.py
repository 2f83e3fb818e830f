"""Writing a record with `ehrnet tx record` and reading it back with `ehrnet tx get` and `ehrnet state get`, on a
real node addressed as HOST:PORT; `contract call --view` prints bytes in hex."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from node.cli.main import main
from primitives.keys import SigningKey
from tests.harness import running_cluster

pytestmark = pytest.mark.cluster


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_record_then_read_it_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = SigningKey.generate()
    key_file = tmp_path / "me.key"
    key.save(key_file)
    with running_cluster(tmp_path / "c", n=1) as cluster:
        node = cluster.records["node1"].http_url.removeprefix("http://")  # HOST:PORT, as people paste it
        code, out, err = run(capsys, "tx", "record", "--key", str(key_file), "--node", node, "greeting", "hello")
        assert code == 0, err
        match = re.search(r"tx ([0-9a-f]{64}) accepted", out)
        assert match is not None and "final at height" in out
        tx_hash = match.group(1)

        code, out, err = run(capsys, "tx", "get", tx_hash, "--node", node)
        assert code == 0, err
        doc = json.loads(out)
        assert doc["status"] == "final" and doc["tx"]["kind"] == "record"
        assert doc["tx"]["sender"] == key.public_key.hex()
        assert doc["record"] == {"name": "greeting", "value": "hello"}

        code, out, err = run(capsys, "state", "get", "greeting", "--owner", key.address.hex(), "--node", node)
        assert (code, out) == (0, "hello\n"), err
        code, out, err = run(capsys, "state", "get", "greeting", "--key", str(key_file), "--node", node, "--json")
        assert code == 0 and json.loads(out)["text"] == "hello" and json.loads(out)["height"] >= doc["height"]
        code, out, err = run(capsys, "state", "get", "nothing", "--owner", key.address.hex(), "--node", node)
        assert code == 1 and out == "" and "has no record named 'nothing'" in err

        code, _, err = run(capsys, "tx", "get", "cd" * 32, "--node", node)
        assert code == 1 and "neither pending nor final" in err

        admin = SigningKey.load(cluster.data_dir / "keys" / "admin.key")
        code, out, err = run(
            capsys, "contract", "call", "ehr", "get_user", admin.public_key.hex(), "--view", "--node", node
        )
        assert code == 0, err
        user = json.loads(out)["return"]
        assert user["role"] == "admin" and user["uid"] == admin.address.hex()  # hex, as arguments are given
