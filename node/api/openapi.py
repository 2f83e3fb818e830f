"""The node's HTTP API as an OpenAPI 3 description, served at `GET /openapi.json` (docs/API.md is the prose).

Written by hand from the routes, and kept honest by tests: every route a node registers (with every role and
fault control on) is described here and nothing else is (tests/node/test_openapi_api.py), docs/API.md names every
path, and a property test generates requests from this description against real nodes
(tests/node/test_http_fuzz.py). Schemas describe the *valid* shapes; anything else must be refused with a 4xx.

Three extensions guide the property test: `x-ehrnet-examples` (values worth trying besides generated ones, e.g. a
contract that exists), `x-ehrnet-fuzz-with-token: false` on operations that a caller holding the operator
token uses to stop or break the node on purpose (shutdown, arming a crash) — fuzzed without the token only — and
`x-ehrnet-fuzz-values` on a parameter the test may only draw from that list (a long-poll's timeout: a valid one
parks the request for that long, and each case must end quickly).
"""

from __future__ import annotations

from typing import Any

from node import __version__

Schema = dict[str, Any]

HEX: Schema = {"type": "string", "pattern": "^[0-9a-f]*$"}
HEX32: Schema = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
ADDRESS: Schema = {"type": "string", "pattern": "^[0-9a-f]{40}$"}
CID: Schema = {"type": "string", "x-ehrnet-examples": ["bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"]}
PEER_ID: Schema = {"type": "string", "pattern": "^[1-9A-HJ-NP-Za-km-z]{32,64}$"}
UINT: Schema = {"type": "integer", "minimum": 0}
CONTRACT: Schema = {"type": "string", "x-ehrnet-examples": ["ehr", "nothing", "00" * 20]}
JSON_OBJECT: Schema = {"type": "object"}
ERROR: Schema = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


def _param(name: str, where: str, schema: Schema, required: bool = False) -> Schema:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema}


def _body(schema: Schema, media: str = "application/json") -> Schema:
    return {"required": True, "content": {media: {"schema": schema}}}


def _op(
    summary: str,
    *,
    params: list[Schema] | None = None,
    body: Schema | None = None,
    operator: bool = False,
    fuzz_with_token: bool = True,
    answer: Schema | None = None,
    media: str = "application/json",
) -> Schema:
    responses: Schema = {
        "200": {"description": "success", "content": {media: {"schema": answer or JSON_OBJECT}}},
        "4XX": {"description": "bad request, unknown object, too large, ...", "content": _error_content()},
        "503": {"description": "temporarily unavailable; retry", "content": _error_content()},
    }
    op: Schema = {"summary": summary, "responses": responses}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = body
    if operator:
        op["security"] = [{"operatorToken": []}]
    if not fuzz_with_token:
        op["x-ehrnet-fuzz-with-token"] = False
    return op


def _error_content() -> Schema:
    return {"application/json": {"schema": ERROR}}


def _obj(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    return {"type": "object", "properties": properties, "required": list(required)}


FORMAT: Schema = {"type": "string", "enum": ["car", "raw"]}
# Seconds a `GET /tx/{hash}?wait=final` waits at most (node/api/ledger.py: MAX_WAIT_S); required with `wait`.
WAIT_TIMEOUT: Schema = {
    "type": "number",
    "minimum": 0,
    "maximum": 60,
    "x-ehrnet-fuzz-values": ["0", "0.05", "60.5", "-1", "nan", "soon"],
}
REPLICATION = _param("replication", "query", {"type": "integer", "minimum": 1, "maximum": 64})
VIEW_BODY = _obj(
    {
        "function": {"type": "string", "x-ehrnet-examples": ["policy_list", "get_user", "nope"]},
        "args": {"type": "array", "items": {}},
        "caller": HEX32,
        "gas_limit": {"type": "integer", "minimum": 1},
    },
    ("function",),
)


def _paths() -> dict[str, dict[str, Schema]]:
    return {
        "/openapi.json": {"get": _op("this description")},
        "/status": {"get": _op("the node's name, roles, peers, ledger head, storage and manager counters")},
        "/admin/shutdown": {"post": _op("stop the node", operator=True, fuzz_with_token=False)},
        "/probe/publish": {
            "post": _op(
                "publish numbered probe messages on the probe topic",
                operator=True,
                fuzz_with_token=False,  # a valid count and rate keep the node publishing for as long as asked
                body=_body(
                    _obj(
                        {
                            "count": {"type": "integer", "minimum": 1, "maximum": 100_000},
                            "rate": {"type": "number", "exclusiveMinimum": 0, "maximum": 100_000},
                            "pad": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
                        }
                    )
                ),
            )
        },
        "/probe/received": {
            "get": _op(
                "probe messages received since a time", operator=True, params=[_param("since_ns", "query", UINT)]
            )
        },
        "/admin/faults": {"get": _op("what fault control has broken", operator=True)},
        "/admin/faults/gate": {
            "post": _op(
                "replace the set of refused peers",
                operator=True,
                body=_body(_obj({"blocked_peers": {"type": "array", "items": PEER_ID, "maxItems": 1024}})),
            )
        },
        "/admin/faults/disconnect": {
            "post": _op("drop one connection", operator=True, body=_body(_obj({"peer": PEER_ID}, ("peer",))))
        },
        "/admin/faults/arm": {
            "post": _op(
                "arm a ledger fault point (the node exits at it)",
                operator=True,
                fuzz_with_token=False,
                body=_body(_obj({"point": {"type": "string"}, "min_height": UINT}, ("point",))),
            )
        },
        "/offload/info": {"get": _op("the edge node's offload protocol, key and tasks")},
        "/offload": {"post": _op("run a sealed offload request", body=_body(_obj({"request": HEX}, ("request",))))},
        "/ehr/request": {
            "post": _op("relay a signed sharing request to the manager", body=_body(_obj({"request": HEX})))
        },
        "/contracts": {"post": _op("submit a signed deploy transaction", body=_body(_obj({"tx": HEX}, ("tx",))))},
        "/contracts/{target}/abi": {
            "get": _op("a contract's functions", params=[_param("target", "path", CONTRACT)]),
        },
        "/contracts/{target}/call": {
            "post": _op(
                "a read-only call (view) on the latest final state",
                params=[_param("target", "path", CONTRACT)],
                body=_body(VIEW_BODY),
            )
        },
        "/receipts/{tx_hash}": {"get": _op("a final transaction's receipt", params=[_param("tx_hash", "path", HEX32)])},
        "/events": {
            "get": _op(
                "contract events, newest first",
                params=[
                    _param("contract", "query", CONTRACT),
                    _param("patient", "query", HEX),
                    _param("name", "query", {"type": "string"}),
                    _param("from_height", "query", UINT),
                    _param("to_height", "query", UINT),
                    _param("before", "query", {"type": "string", "pattern": "^[0-9]+\\.[0-9]+\\.[0-9]+$"}),
                    _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}),
                ],
            )
        },
        "/state/proof": {
            "get": _op(
                "a contract storage value with its Merkle proof",
                params=[_param("contract", "query", CONTRACT, True), _param("key", "query", HEX, True)],
            )
        },
        "/tx": {
            "post": _op(
                "submit one signed transaction or a batch",
                body=_body(
                    {
                        "oneOf": [
                            _obj({"tx": HEX}, ("tx",)),
                            _obj({"txs": {"type": "array", "items": HEX, "maxItems": 5000}}, ("txs",)),
                        ]
                    }
                ),
            )
        },
        "/tx/{hash}": {
            "get": _op(
                "a transaction's status; with wait=final, once it is final or the timeout ends (long-poll)",
                params=[
                    _param("hash", "path", HEX32),
                    _param("wait", "query", {"type": "string", "enum": ["final"]}),
                    _param("timeout", "query", WAIT_TIMEOUT),
                ],
            )
        },
        "/blocks/{height}": {
            "get": _op(
                "a final block",
                params=[_param("height", "path", {"type": "string", "x-ehrnet-examples": ["latest", "0", "1"]})],
            )
        },
        "/accounts/{address}": {"get": _op("an account's nonces", params=[_param("address", "path", ADDRESS)])},
        "/light/head": {"get": _op("the head header with its commit")},
        "/light/headers": {
            "get": _op(
                "headers with their commits",
                params=[_param("from", "query", UINT, True), _param("to", "query", UINT, True)],
            )
        },
        "/light/proof": {"get": _op("a state value with its proof", params=[_param("key", "query", HEX, True)])},
        "/light/validators": {
            "get": _op("the validator set of a height", params=[_param("height", "query", UINT, True)])
        },
        "/objects": {
            "post": _op(
                "store a file (streamed)",
                params=[_param("pin", "query", {"type": "string", "enum": ["true", "false"]}), REPLICATION],
                body=_body({"type": "string", "format": "binary"}, "application/octet-stream"),
            )
        },
        "/objects/{cid}": {
            "get": _op(
                "a file, or its CAR or raw block",
                params=[
                    _param("cid", "path", CID),
                    _param("format", "query", {"type": "string", "enum": ["car", "raw"]}),
                ],
                media="application/octet-stream",
            )
        },
        "/providers/{cid}": {"get": _op("who provides an object (DHT)", params=[_param("cid", "path", CID)])},
        "/pins/{cid}": {
            "post": _op("pin an object", operator=True, params=[_param("cid", "path", CID), REPLICATION]),
            "delete": _op("unpin an object", operator=True, params=[_param("cid", "path", CID)]),
        },
        "/pins": {"get": _op("the pins", operator=True)},
        "/gc": {"post": _op("garbage-collect unpinned blocks", operator=True)},
        "/dag/import": {
            "post": _op(
                "import a CAR v1 (streamed)",
                params=[REPLICATION],
                body=_body({"type": "string", "format": "binary"}, "application/vnd.ipld.car"),
            )
        },
    }


def describe() -> dict[str, Any]:
    """The OpenAPI 3 document."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "ehrnet node HTTP API",
            "version": __version__,
            "description": "See docs/API.md. Routes of the edge and manager roles and fault control exist only on "
            "nodes that have them; errors are JSON {error} with a 4xx status.",
        },
        "components": {
            "securitySchemes": {
                "operatorToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the content of <data-dir>/<node>/api.token",
                }
            }
        },
        "paths": _paths(),
    }
