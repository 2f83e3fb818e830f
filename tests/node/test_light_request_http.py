"""`ehrnet light request --http` against a real cluster: the doctor's 4-step read through the manager node's HTTP
relay (no libp2p on the device), and a stranger's denial that says what it cost them (a warning, then
suspension)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.light import identity
from tests.harness import running_cluster
from tests.node.test_light_cli_cluster import Cli, _file_record

pytestmark = pytest.mark.cluster


def test_request_over_http_and_a_denial_names_its_penalty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = Cli(capsys)
    with running_cluster(tmp_path / "cluster", n=4) as cluster:
        admin = ["--data-dir", str(cluster.data_dir)]
        people = {}
        for name in ("patient", "doctor", "stranger"):
            assert cli("light", "keygen", "--out", str(tmp_path / name))[0] == 0
            people[name] = identity.load(tmp_path / name)
        pk = {name: ident.signing.public_key.hex() for name, ident in people.items()}
        assert (
            cli("admin", "add-user", *admin, "--pk", cluster.records["node1"].peer_id, "--role", "ehr_manager")[0] == 0
        )
        for name, role, area in (
            ("patient", "patient", "area-7"),
            ("doctor", "doctor", "area-7"),
            ("stranger", "carer", ""),
        ):
            box = people[name].box_public_key.hex()
            code, _, err = cli(
                "admin", "add-user", *admin, "--pk", pk[name], "--role", role, "--area", area, "--enc-pk", box
            )
            assert code == 0, err
        document = _file_record(cluster, people["patient"])

        def light(name: str, *argv: str) -> tuple[int, str, str]:
            where = ["--config", str(cluster.config_path), "--data-dir", str(tmp_path / name)]
            return cli("light", argv[0], *where, *argv[1:])

        code, _, err = light("patient", "grant", "--to", pk["doctor"])
        assert code == 0, err
        code, out, err = light(
            "doctor", "request", "--http", "--patient", pk["patient"], "--out", str(tmp_path / "got"), "--json"
        )
        assert code == 0, err
        (record,) = json.loads(out)["records"]
        assert Path(record["file"]).read_bytes() == document
        # The manager's HTTP URL may be given instead of its multiaddr.
        manager_url = cluster.records["node1"].http_url
        code, out, err = light(
            "doctor", "request", "--http", "--manager", manager_url, "--patient", pk["patient"], "--json"
        )
        assert code == 0, err
        assert [r["cid"] for r in json.loads(out)["records"]] == [record["cid"]]

        # Each denial is a warning; the third suspends the account (the contract's default of 3).
        for warnings in (1, 2):
            code, _, err = light("stranger", "request", "--http", "--patient", pk["patient"])
            assert code == 1 and "denied: no policy grants access" in err
            assert f"a warning for it: {warnings} of 3" in err, err
        code, _, err = light("stranger", "request", "--http", "--patient", pk["patient"])
        assert code == 1 and "suspended this account (3 warnings)" in err, err
