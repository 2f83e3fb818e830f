"""`ehrnet light ...` and `ehrnet admin ...` against a real 4-node cluster: users added, a record filed, granted,
read through the 4-step protocol and decrypted by the doctor's light identity, a stranger denied and penalised,
the audit trail, a break-glass review, key recovery, revocation, and erasure."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import numpy as np
import pytest

from node.cli import admin as admin_cli
from node.client import AsyncNodeClient
from node.cluster.local import Cluster
from node.ehr.sharing_client import EhrUser
from node.light import cli as light_cli
from node.light import identity
from node.p2p.bridge import HostConfig, P2PHost
from offload.client import run_local
from offload.context import RecordContext
from offload.fhir import build_record, parse_record, patient_id
from offload.workload import TREMOR, make_payload
from primitives.keys import SigningKey
from tests.harness import running_cluster

pytestmark = pytest.mark.cluster


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.parser = argparse.ArgumentParser()
        sub = self.parser.add_subparsers(dest="command", required=True)
        light_cli.register(sub)
        admin_cli.register(sub)

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        args = self.parser.parse_args(list(argv))
        code = args.func(args)
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err


def _file_record(cluster: Cluster, ident: identity.LightIdentity) -> bytes:
    """The patient's device files one locally computed result with the EHRs manager (as `light offload` does for
    tasks it keeps on the device)."""
    from node.p2p.identity import public_key_of_peer_id

    manager = cluster.records["node1"]
    payload = make_payload(TREMOR, 20.0, np.random.default_rng(7))
    now = int(time.time() * 1000)
    document = build_record(
        TREMOR, run_local(TREMOR, payload), patient_id(ident.address), RecordContext("phone-1", now - 20_000, now)
    )

    async def send() -> None:
        async with AsyncNodeClient.connect(cluster.records["node3"].http_url) as api:
            chain_id = await api.chain_id()
            user = EhrUser(ident.signing, api, chain_id, enc_private=bytes(ident.box))
            host = P2PHost(HostConfig(seed=SigningKey.generate().seed))
            await host.start()
            try:
                await host.dial(manager.multiaddr)
                await user.store_local_result(host, manager.peer_id, public_key_of_peer_id(manager.peer_id), document)
            finally:
                await host.stop()

    asyncio.run(send())
    return document


def test_sharing_commands_on_a_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = Cli(capsys)
    with running_cluster(tmp_path / "cluster", n=4) as cluster:
        admin = ["--data-dir", str(cluster.data_dir)]
        people = {}
        for name in ("patient", "doctor", "stranger"):
            code, out, _ = cli("light", "keygen", "--out", str(tmp_path / name))
            assert code == 0 and "--enc-pk" in out
            people[name] = identity.load(tmp_path / name)
        pk = {name: ident.signing.public_key.hex() for name, ident in people.items()}

        def light(name: str, *argv: str) -> tuple[int, str, str]:
            where = ["--config", str(cluster.config_path), "--data-dir", str(tmp_path / name)]
            return cli("light", argv[0], *where, *argv[1:])

        # The admin registers the manager and the edge node (by peer id) and the people with their light box keys.
        for node, role in (("node1", "ehr_manager"), ("node4", "edge")):
            assert cli("admin", "add-user", *admin, "--pk", cluster.records[node].peer_id, "--role", role)[0] == 0
        for name, role, area in (
            ("patient", "patient", "area-7"),
            ("doctor", "doctor", "area-7"),
            ("stranger", "carer", ""),
        ):
            box = people[name].box_public_key.hex()
            code, out, err = cli(
                "admin", "add-user", *admin, "--pk", pk[name], "--role", role, "--area", area, "--enc-pk", box
            )
            assert code == 0, err
        code, _, err = cli("admin", "add-user", *admin, "--pk", pk["doctor"], "--role", "doctor")
        assert code == 1 and "already registered" in err

        # The phone offloads a long HRV window to the edge node; each result becomes one of the patient's EHRs.
        code, out, err = light("patient", "offload", "--tasks", "hrv:600,tremor:20", "--seed", "3", "--json")
        assert code == 0, err
        offloaded = json.loads(out)
        assert len(offloaded["records"]) == 2 and "edge" in {t["where"] for t in offloaded["summary"]["tasks"]}
        document = _file_record(cluster, people["patient"])
        code, out, err = light("patient", "records", "--json")
        assert code == 0, err
        listed = json.loads(out)
        assert [r["cid"] for r in listed["records"][:2]] == offloaded["records"] and listed["height"] > 0
        cids = [r["cid"] for r in listed["records"]]
        assert len(cids) == 3
        cid = cids[2]

        code, out, err = light("patient", "grant", "--to", pk["doctor"], "--scope", "*", "--expires", "+1h")
        assert code == 0 and "proof-verified" in out, err

        code, out, err = light(
            "doctor", "request", "--patient", pk["patient"], "--out", str(tmp_path / "got"), "--json"
        )
        assert code == 0, err
        got = json.loads(out)
        assert [r["cid"] for r in got["records"]] == cids
        assert (tmp_path / "got" / f"{cid}.json").read_bytes() == document
        assert (
            sorted(r["task"] for r in got["records"])
            == ["hrv/1", TREMOR, TREMOR]
            == sorted(["hrv/1", TREMOR, parse_record(document).task])
        )

        code, _, err = light("stranger", "request", "--patient", pk["patient"])
        assert code == 1 and "denied: no policy grants access" in err

        code, out, err = light("patient", "audit", "--json")
        assert code == 0, err
        trail = [(e["requester"], e["granted"], e["role"]) for e in json.loads(out)["entries"]]
        assert (people["doctor"].address.hex(), True, "doctor") in trail
        assert (people["stranger"].address.hex(), False, "carer") in trail

        code, out, err = cli("admin", "penalties", *admin, "--user", pk["stranger"], "--json")
        assert code == 0, err
        standing = json.loads(out)
        assert standing["user"]["warnings"] == 1 and len(standing["penalties"]) == 1

        # A break-glass access awaits review; the admin's verdict clears the queue.
        _break_glass(cluster, people["doctor"], people["patient"])
        code, out, _ = cli("admin", "reviews", *admin, "--json")
        pending = json.loads(out)["reviews"]
        assert code == 0 and [e["id"] for e in pending] == [1] and pending[0]["status"] == "pending"
        assert cli("admin", "review", *admin, "--id", "1", "--verdict", "justified")[0] == 0
        assert json.loads(cli("admin", "reviews", *admin, "--json")[1])["reviews"] == []
        code, _, err = cli("admin", "review", *admin, "--id", "1", "--verdict", "misuse")
        assert code == 1 and "already reviewed" in err

        # The stranger lost their device: the admin moves their account to a new key.
        new_key = SigningKey.generate().public_key.hex()
        assert cli("admin", "rotate-key", *admin, "--old", pk["stranger"], "--new", new_key)[0] == 0
        assert cli("admin", "penalties", *admin, "--user", pk["stranger"])[0] == 1

        code, out, err = light("patient", "revoke", "--to", pk["doctor"])
        assert code == 0 and "no policy left" in out, err
        code, _, err = light("doctor", "request", "--patient", pk["patient"])
        assert code == 1 and "denied" in err

        code, _, err = cli("admin", "delete-user", *admin, "--pk", pk["patient"])
        assert code == 0, err
        code, _, err = light("doctor", "request", "--patient", pk["patient"])
        assert code == 1 and "not a registered key" in err
        code, _, err = light("patient", "records")
        assert code == 1 and "not a registered key" in err


def _break_glass(cluster: Cluster, doctor: identity.LightIdentity, patient: identity.LightIdentity) -> None:
    async def call() -> None:
        async with AsyncNodeClient.connect(cluster.records["node2"].http_url) as api:
            chain_id = await api.chain_id()
            user = EhrUser(doctor.signing, api, chain_id, enc_private=bytes(doctor.box))
            await user.call("break_glass", [patient.signing.public_key, "unconscious in the ER"])

    asyncio.run(call())
