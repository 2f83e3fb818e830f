"""The client's one "wait until final" loop (node/client/finality.py): long-polls a node that holds the request,
falls back to polling one that answers at once, and ends cleanly at its deadline — on a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from node.client import NodeClient, NodeRefused, NodeTimeout
from node.client.finality import LONG_POLL_S, POLL_S, FinalityWait
from node.client.request import Answer, Request

H = "ab" * 32
FINAL = {"hash": H, "status": "final", "height": 5, "index": 0, "receipt": {"status": "ok"}}


def test_the_request_asks_the_node_to_hold_it_until_the_deadline_at_most_a_long_poll() -> None:
    wait = FinalityWait("http://n", H, timeout_s=25.0, now=100.0)
    request, asked = wait.ask(100.0)
    assert asked == LONG_POLL_S and request.query == {"wait": "final", "timeout": "10"}
    assert request.timeout_s is not None and request.timeout_s > LONG_POLL_S  # the HTTP timeout outlasts the wait
    assert wait.ask(121.0)[1] == 4.0


def test_an_answer_held_by_the_node_is_asked_again_at_once_and_an_early_one_falls_back_to_polling() -> None:
    wait = FinalityWait("http://n", H, timeout_s=30.0, now=0.0)
    assert wait.answered({"status": "pending"}, asked_s=10.0, took_s=10.0, now=10.0) == (None, 0.0)
    assert wait.answered({"status": "pending"}, asked_s=10.0, took_s=0.002, now=10.0) == (None, POLL_S)
    assert wait.answered(FINAL, asked_s=10.0, took_s=0.3, now=10.3) == (FINAL, 0.0)


def test_unknown_here_is_not_yet_but_a_bad_question_is_an_error() -> None:
    wait = FinalityWait("http://n", H, timeout_s=30.0, now=0.0)
    assert wait.failed(NodeRefused("http://n", 404, "neither pending nor final"), 10.0, 0.01, 1.0) == POLL_S
    with pytest.raises(NodeRefused):
        wait.failed(NodeRefused("http://n", 400, "hash: expected 64 hex characters"), 10.0, 0.01, 1.0)


def test_the_wait_ends_at_its_deadline_naming_the_last_status() -> None:
    wait = FinalityWait("http://n", H, timeout_s=3.0, now=0.0)
    with pytest.raises(NodeTimeout, match=r"not final after 3 s \(last: pending\)"):
        wait.answered({"status": "pending"}, asked_s=3.0, took_s=3.0, now=3.0)


class ScriptedNode:
    """A transport whose answers follow a script, on a fake clock: each request "takes" the time the node
    would hold it (a long-polling node) or no time at all (an old node)."""

    def __init__(self, long_polls: bool, final_at: float) -> None:
        self.base_url = "http://n"
        self.now = 0.0
        self.long_polls = long_polls
        self.final_at = final_at
        self.requests: list[Request] = []

    def send(self, request: Request, sink: Any = None) -> Answer:
        import json

        self.requests.append(request)
        if self.long_polls and "wait" in request.query:
            self.now = min(self.now + float(request.query["timeout"]), max(self.now, self.final_at))
        doc = FINAL if self.now >= self.final_at else {"hash": H, "status": "pending"}
        return Answer(200, json.dumps(doc).encode())

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize("long_polls", [True, False], ids=["long-poll", "old-node"])
def test_wait_final_against_both_kinds_of_node(long_polls: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    node = ScriptedNode(long_polls, final_at=12.5)
    monkeypatch.setattr("node.client.client.time.sleep", node.sleep)
    client = NodeClient(node, clock=lambda: node.now)
    assert client.wait_final(H, timeout_s=30.0) == FINAL
    if long_polls:
        assert len(node.requests) == 2  # one held 10 s, the next answered when the block was final
    else:
        assert len(node.requests) == pytest.approx(12.5 / POLL_S, abs=3)
    with pytest.raises(NodeTimeout):
        NodeClient(ScriptedNode(long_polls, final_at=99.0), clock=lambda: node.now).wait_final(H, timeout_s=0.0)
