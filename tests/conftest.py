from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import node_processes


@pytest.fixture(autouse=True)
def no_node_process_left() -> Iterator[None]:
    """Every test must clean up the node processes it started."""
    yield
    leftover = node_processes()
    for proc in leftover:
        proc.kill()
    assert not leftover, f"test left node processes running: {[p.pid for p in leftover]}"
