"""Property test of the HTTP API against real nodes: requests generated from the node's own OpenAPI description
(`GET /openapi.json`, node/api/openapi.py) — valid shapes mixed with garbage in every path segment, query parameter,
body field and header — never get a 5xx and never hang (each request has a timeout).

Both runs use a one-node network (its node has every role) with fault control on: once without the operator
token (or with a wrong one) over every operation, once on that throwaway node with the token over every operation
except those the token holder uses to stop or break the node on purpose (`x-ehrnet-fuzz-with-token: false`).
EHRNET_FUZZ_CASES sets the total number of cases (default 10,000, split between the two runs).

Strategies come from the description rather than from schemathesis, so the suite needs no further dependency.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from node.cluster.config import generate_network
from node.cluster.local import Cluster
from node.cluster.network_init import resolve_network
from tests.harness import node_processes, operator_token

pytestmark = pytest.mark.cluster

TOTAL_CASES = int(os.environ.get("EHRNET_FUZZ_CASES", "10000"))
REQUEST_TIMEOUT_S = 15.0
# pytest-timeout's 300 s fits the default run (~100 s a test here); a larger one gets ~60 ms a case, ample.
TEST_TIMEOUT_S = max(300, int(TOTAL_CASES / 2 * 0.06) + 120)

JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def valid_value(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of the JSON Schema subset node/api/openapi.py uses (plus its example values)."""
    base: st.SearchStrategy[Any]
    if "oneOf" in schema:
        base = st.one_of([valid_value(s) for s in schema["oneOf"]])
    elif "enum" in schema:
        base = st.sampled_from(schema["enum"])
    elif schema.get("type") == "string":
        pattern = schema.get("pattern")
        base = st.from_regex(pattern, fullmatch=True) if pattern else st.text(max_size=40)
    elif schema.get("type") == "integer":
        base = st.integers(schema.get("minimum"), schema.get("maximum"))
    elif schema.get("type") == "number":
        base = st.integers(1, 1000) | st.floats(0.001, schema.get("maximum", 1e6))
    elif schema.get("type") == "array":
        items = schema.get("items") or {}
        base = st.lists(field_value(items) if items else JSON_VALUES, max_size=min(schema.get("maxItems", 5), 5))
    elif schema.get("type") == "object" and "properties" in schema:
        properties = schema["properties"]
        required = set(schema.get("required", []))
        base = st.fixed_dictionaries(
            {k: field_value(v) for k, v in properties.items() if k in required},
            optional={k: field_value(v) for k, v in properties.items() if k not in required},
        )
    else:
        base = JSON_VALUES
    examples = schema.get("x-ehrnet-examples")
    return st.sampled_from(examples) | base if examples else base


def field_value(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Mostly a valid value, sometimes any JSON at all."""
    return st.one_of(valid_value(schema), valid_value(schema), JSON_VALUES)


def as_text(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def text_value(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    """A path segment or query value: a valid one, any JSON's text, or arbitrary Unicode."""
    return st.one_of(valid_value(schema).map(as_text), st.text(max_size=40), JSON_VALUES.map(as_text))


@st.composite
def requests_for(draw: st.DrawFn, operations: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    method, path, op = draw(st.sampled_from(operations))
    url_path = path
    query: dict[str, str] = {}
    for param in op.get("parameters", []):
        if param["in"] == "path":
            url_path = url_path.replace("{" + param["name"] + "}", quote(draw(text_value(param["schema"])), safe=""))
        elif param["required"] or draw(st.booleans()):
            only = param["schema"].get("x-ehrnet-fuzz-values")  # a long-poll's timeout: keep each case short
            query[param["name"]] = draw(st.sampled_from(only) if only else text_value(param["schema"]))
    body: bytes | None = None
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        schema = content["application/json"]["schema"]
        body = draw(
            st.one_of(
                valid_value(schema).map(lambda v: json.dumps(v).encode()),
                JSON_VALUES.map(lambda v: json.dumps(v).encode()),
                st.binary(max_size=64),
                st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
            )
        )
    elif content:
        body = draw(st.binary(max_size=512))
    elif draw(st.integers(0, 9)) == 0:
        body = draw(st.binary(max_size=64))  # a body where none is expected
    url = url_path + ("?" + urlencode(query) if query else "")
    return {"method": method.upper(), "url": url, "body": body}


def _operations(spec: dict[str, Any], with_token: bool) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if not with_token or op.get("x-ehrnet-fuzz-with-token", True)
    ]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Cluster]:
    """A throwaway one-node network (every role) with fault control on."""
    resolved = resolve_network(generate_network(1), tmp_path)
    cluster = Cluster(resolved, tmp_path)
    try:
        cluster.spawn("node1", extra_env={"EHRNET_FAULT_CONTROL": "1"})
        cluster.wait_connected(timeout=60)
        yield cluster
    finally:
        cluster.down(timeout=5)
        for proc in node_processes():
            proc.kill()


def _fuzz(cluster: Cluster, with_token: bool, cases: int) -> Counter[str]:
    base = cluster.records["node1"].http_url
    token = operator_token(cluster, "node1")
    spec = requests.get(f"{base}/openapi.json", timeout=REQUEST_TIMEOUT_S).json()
    operations = _operations(spec, with_token)
    session = requests.Session()
    seen: Counter[str] = Counter()
    rng = random.Random(0)

    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(request=requests_for(operations))
    def one_request(request: dict[str, Any]) -> None:
        headers = {"Content-Type": "application/json"}
        if with_token:
            headers["Authorization"] = f"Bearer {token}"
        elif rng.random() < 0.3:
            headers["Authorization"] = "Bearer " + "0" * rng.randint(0, 64)
        try:
            answer = session.request(
                request["method"],
                base + request["url"],
                data=request["body"],
                headers=headers,
                timeout=REQUEST_TIMEOUT_S,
            )
        except requests.Timeout:
            pytest.fail(f"no answer within {REQUEST_TIMEOUT_S} s: {request}")
        seen[f"{answer.status_code // 100}xx"] += 1
        assert answer.status_code < 500, f"{answer.status_code} {answer.text[:300]} for {request}"

    one_request()
    assert requests.get(f"{base}/status", timeout=REQUEST_TIMEOUT_S).status_code == 200
    log = Path(cluster.records["node1"].log).read_text(errors="replace")
    assert "unhandled error serving" not in log and "Error handling request" not in log
    print(f"{sum(seen.values())} requests over {len(operations)} operations: {dict(seen)}")
    return seen


@pytest.mark.timeout(TEST_TIMEOUT_S)
def test_no_5xx_and_no_hang_without_the_operator_token(node: Cluster) -> None:
    seen = _fuzz(node, with_token=False, cases=TOTAL_CASES // 2)
    assert sum(seen.values()) >= TOTAL_CASES // 2


@pytest.mark.timeout(TEST_TIMEOUT_S)
def test_no_5xx_and_no_hang_with_the_operator_token(node: Cluster) -> None:
    seen = _fuzz(node, with_token=True, cases=TOTAL_CASES - TOTAL_CASES // 2)
    assert sum(seen.values()) >= TOTAL_CASES - TOTAL_CASES // 2
