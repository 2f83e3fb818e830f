"""The admin's side of account permissioning and the per-sender limits, on a real one-node network: `ehrnet admin
allow` / `disallow` / `add-user` change who may send on an allowlist chain, `POST /tx` answers 403 and 429 with
messages, and a local (open) network labels itself a development network."""

from __future__ import annotations

import argparse
import dataclasses
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from consensus.tx import Tx
from node.cli import admin as admin_cli
from node.cli.cluster import start_cluster
from node.cluster.config import generate_network
from node.cluster.local import Cluster
from primitives import codec
from primitives.keys import SigningKey
from tests.harness import http_json, node_processes

pytestmark = pytest.mark.cluster


@contextmanager
def one_node(data_dir: Path, accounts: str | None) -> Iterator[Cluster]:
    template = generate_network(1, name="accounts1")
    if accounts is not None:
        params = {**template.genesis.params, "accounts": accounts}
        template = dataclasses.replace(template, genesis=dataclasses.replace(template.genesis, params=params))
    cluster = start_cluster(template, data_dir, timeout=60)
    try:
        yield cluster
    finally:
        cluster.down(timeout=5)
        for proc in node_processes():
            proc.kill()


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{url}/tx", data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def record(key: SigningKey, chain_id: str, nonce: int) -> Tx:
    body: dict[str, codec.Value] = {"key": b"k%d" % nonce, "value": b"v"}
    return Tx.create(key, chain_id, "record", nonce, body)


def admin(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    admin_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["admin", *argv])
    code: int = args.func(args)
    return code, capsys.readouterr().out


def test_admins_allow_disallow_and_register_accounts_on_an_allowlist_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with one_node(tmp_path, "allowlist") as cluster:
        url = next(iter(cluster.records.values())).http_url
        chain_id = str(http_json("GET", f"{url}/status")["chain_id"])
        node = ["--key", str(tmp_path / "keys" / "admin.key"), "--node", url]
        alice, doctor = SigningKey.generate(), SigningKey.generate()

        code, answer = post(url, {"tx": record(alice, chain_id, 0).raw.hex()})
        assert code == 403 and "not an allowlisted account" in answer["error"]
        code, out = admin(["allow", alice.public_key.hex(), *node], capsys)
        assert code == 0 and f"allowlisted {alice.public_key.hex()}" in out
        assert post(url, {"tx": record(alice, chain_id, 0).raw.hex()})[0] == 200
        code, out = admin(["disallow", alice.public_key.hex(), *node], capsys)
        assert code == 0 and "disallowed" in out
        assert post(url, {"tx": record(alice, chain_id, 1).raw.hex()})[0] == 403

        code, out = admin(["add-user", "--pk", doctor.public_key.hex(), "--role", "doctor", *node], capsys)
        assert code == 0 and f"allowlisted {doctor.public_key.hex()}" in out
        # The registered doctor may send — within the per-sender bounds: 256 pending, then 429 naming the bound.
        batch = [record(doctor, chain_id, n).raw.hex() for n in range(300)]
        code, answer = post(url, {"txs": batch})
        assert code == 429, answer
        assert len(answer["hashes"]) == 256 and len(answer["rejected"]) == 44
        assert {r["code"] for r in answer["rejected"]} == {"rate_limited"}
        assert "(at most 256 per sender)" in answer["rejected"][0]["error"]


def test_a_local_network_is_open_and_says_it_is_a_development_network(tmp_path: Path) -> None:
    with one_node(tmp_path, None) as cluster:
        url = next(iter(cluster.records.values())).http_url
        status = http_json("GET", f"{url}/status")
        assert (status["accounts"], status["development_network"]) == ("open", True)
        stranger = SigningKey.generate()
        assert post(url, {"tx": record(stranger, str(status["chain_id"]), 0).raw.hex()})[0] == 200
