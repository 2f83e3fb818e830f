"""The OpenAPI description matches the routes: every route a node registers (every role, fault control on) is
described, nothing else is, and docs/API.md names every path."""

from __future__ import annotations

import re
from pathlib import Path

from node.api.openapi import describe
from node.app import build_node
from node.cluster.config import generate_network
from node.cluster.network_init import resolve_network
from node.faults.options import FaultOptions

ROOT = Path(__file__).resolve().parents[2]


def _registered(tmp_path: Path) -> set[tuple[str, str]]:
    # One node of a one-node network has every role (validator, storage, manager, edge); fault control on.
    network = resolve_network(generate_network(1), tmp_path)
    node = build_node(network, "node1", tmp_path, FaultOptions(control=True))
    assert {"manager", "edge"} <= set(network.node("node1").roles)
    return {
        (route.method.lower(), route.resource.canonical)
        for route in node.http.app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }


def _described() -> set[tuple[str, str]]:
    return {(method, path) for path, item in describe()["paths"].items() for method in item}


def test_every_registered_route_is_described_and_nothing_else(tmp_path: Path) -> None:
    registered = _registered(tmp_path)
    described = _described()
    assert registered - described == set(), "routes missing from node/api/openapi.py"
    assert described - registered == set(), "node/api/openapi.py describes routes no node has"


def test_every_operation_answers_json_errors_and_names_its_parameters() -> None:
    for path, item in describe()["paths"].items():
        named = set(re.findall(r"{(\w+)}", path))
        for method, op in item.items():
            assert "4XX" in op["responses"], (method, path)
            in_path = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert in_path == named, (method, path)


def test_docs_api_names_every_path() -> None:
    doc = (ROOT / "docs" / "API.md").read_text()
    # docs/API.md writes parameters by what they are ({name_or_address}); compare the fixed parts.
    headings = [re.sub(r"{[^}]*}", "{}", h) for h in re.findall(r"`(?:GET|POST|DELETE) (/[^`? ]*)", doc)]
    for path in describe()["paths"]:
        assert re.sub(r"{[^}]*}", "{}", path) in headings, f"docs/API.md does not name {path}"
