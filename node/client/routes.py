"""The node's HTTP API (docs/API.md) as requests: one function per route, pure, shared by `NodeClient` and
`AsyncNodeClient` so the two cannot disagree on a path, a parameter or which routes need the operator token."""

from __future__ import annotations

from typing import Any

from node.client.request import Body, Request, get, send_json

# Routes where the node computes before it answers (a view, placing replicas, collecting garbage, a relayed request)
# may stay silent longer than a caller's default allows; everything else, transfers included, keeps the transport's
# timeout, which bounds silence, not the length of a transfer (node/client/request.py).
SLOW_S = 60.0


def _opt(**params: object) -> dict[str, str]:
    """Query parameters, leaving out the ones not given; booleans as the API spells them."""
    out = {}
    for name, value in params.items():
        if value is not None:
            out[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def status() -> Request:
    return get("/status")


def openapi() -> Request:
    return get("/openapi.json")


# ---- ledger ----------------------------------------------------------------------------------------------------


def submit(raw_txs: list[bytes]) -> Request:
    """`POST /tx`: one transaction as `{"tx"}`, several as one batch `{"txs"}`."""
    doc = {"tx": raw_txs[0].hex()} if len(raw_txs) == 1 else {"txs": [raw.hex() for raw in raw_txs]}
    return send_json("POST", "/tx", doc)


def tx(tx_hash: str, wait_final_s: float | None = None) -> Request:
    """`GET /tx/{hash}`; with `wait_final_s`, the long-poll form that answers once the transaction is final or
    the wait is over (the HTTP timeout leaves room for the wait)."""
    if wait_final_s is None:
        return get(f"/tx/{tx_hash}")
    return get(f"/tx/{tx_hash}", {"wait": "final", "timeout": f"{wait_final_s:g}"}, timeout_s=wait_final_s + 10.0)


def block(height: int | str) -> Request:
    return get(f"/blocks/{height}")


def account(address: str) -> Request:
    return get(f"/accounts/{address}")


# ---- contracts ---------------------------------------------------------------------------------------------------


def deploy(raw_tx: bytes) -> Request:
    return send_json("POST", "/contracts", {"tx": raw_tx.hex()})


def abi(target: str) -> Request:
    return get(f"/contracts/{target}/abi")


def view(
    target: str, function: str, args: list[Any], caller: str | None = None, gas_limit: int | None = None
) -> Request:
    """A read-only contract call; `args` are already DAG-JSON (consensus/vm/jsonvalues.py)."""
    doc: dict[str, Any] = {"function": function, "args": args}
    if caller is not None:
        doc["caller"] = caller
    if gas_limit is not None:
        doc["gas_limit"] = gas_limit
    return send_json("POST", f"/contracts/{target}/call", doc, timeout_s=SLOW_S)


def receipt(tx_hash: str) -> Request:
    return get(f"/receipts/{tx_hash}")


def events(query: dict[str, str]) -> Request:
    return get("/events", query)


def state_proof(contract: str, key: str) -> Request:
    return get("/state/proof", {"contract": contract, "key": key})


# ---- light client ------------------------------------------------------------------------------------------------


def light(path: str, query: dict[str, str], max_bytes: int) -> Request:
    """`GET /light/{head,headers,proof,validators}`, with the light protocol's own answer bound."""
    return get(f"/light/{path}", query, max_bytes=max_bytes)


# ---- storage -----------------------------------------------------------------------------------------------------


def add_object(body: Body, pin: bool = True, replication: int | None = None) -> Request:
    query = _opt(pin=pin, replication=replication)
    return Request("POST", "/objects", query, body)


def get_object(cid: str, car: bool = False) -> Request:
    return get(f"/objects/{cid}", _opt(format="car" if car else None))


def dag_import(body: Body, replication: int | None = None) -> Request:
    return Request("POST", "/dag/import", _opt(replication=replication), body)


def providers(cid: str) -> Request:
    return get(f"/providers/{cid}")


def pins() -> Request:
    return get("/pins", operator=True)


def pin(cid: str, replication: int | None = None) -> Request:
    return Request("POST", f"/pins/{cid}", _opt(replication=replication), operator=True, timeout_s=SLOW_S)


def unpin(cid: str) -> Request:
    return Request("DELETE", f"/pins/{cid}", operator=True)


def gc() -> Request:
    return Request("POST", "/gc", operator=True, timeout_s=SLOW_S)


# ---- roles: EHRs manager, edge -----------------------------------------------------------------------------------


def ehr_request(request_hex: str) -> Request:
    return send_json("POST", "/ehr/request", {"request": request_hex}, timeout_s=SLOW_S)


def offload_info() -> Request:
    return get("/offload/info")


def offload(request_hex: str) -> Request:
    return send_json("POST", "/offload", {"request": request_hex}, timeout_s=SLOW_S)


# ---- operator: shutdown, probes, fault control ------------------------------------------------------------------


def shutdown() -> Request:
    return send_json("POST", "/admin/shutdown", None, operator=True)


def probe_publish(count: int, rate: float, pad: int = 0) -> Request:
    doc = {"count": count, "rate": rate, "pad": pad}
    return send_json("POST", "/probe/publish", doc, operator=True, timeout_s=SLOW_S * 5)


def probe_received(since_ns: int = 0) -> Request:
    return get("/probe/received", {"since_ns": str(since_ns)}, operator=True)


def faults() -> Request:
    return get("/admin/faults", operator=True)


def gate(blocked_peers: list[str]) -> Request:
    return send_json("POST", "/admin/faults/gate", {"blocked_peers": blocked_peers}, operator=True)


def disconnect(peer: str) -> Request:
    return send_json("POST", "/admin/faults/disconnect", {"peer": peer}, operator=True)


def arm(point: str, min_height: int = 0) -> Request:
    return send_json("POST", "/admin/faults/arm", {"point": point, "min_height": min_height}, operator=True)
