"""Health-analysis tasks a device can run locally or offload to an edge node.

A task has a stable, versioned name and one entry point, `run(payload) -> result`, that takes the task's input
as bytes (offload/task_input.py) and returns a canonical value (integers in fixed point, no floats). The device
and the edge node run the same code on the same bytes, so the canonical encoding of a result computed on either
side is the same (paper Sec. III-A: the edge "processes the task" the device would otherwise run itself).
"""

from __future__ import annotations

from typing import Protocol

from offload.errors import UnknownTaskError
from primitives import codec


class Task(Protocol):
    """An analysis the device or an edge node can run on the same input bytes."""

    @property
    def name(self) -> str:
        """Stable versioned identifier carried in offload requests, e.g. "hrv/1"."""
        ...

    def run(self, payload: bytes) -> codec.Value:
        """Analyse the input bytes; raises `TaskInputError` or `TaskFailedError` on bad input."""
        ...


def registry() -> dict[str, Task]:
    """Every task this build can run, by name (what an edge node accepts)."""
    # Imported here so that importing the interface does not load scipy/heartpy.
    from offload.hrv import HeartRateTask
    from offload.tremor import TremorTask

    tasks: list[Task] = [HeartRateTask(), TremorTask()]
    return {task.name: task for task in tasks}


def preload() -> None:
    """Import what the first run of every task needs (heartpy and its scipy parts for `hrv/1`, scipy.signal for
    `tremor/1`), so that the first device to ask an edge node does not wait for the imports (about a second)."""
    import scipy.signal  # noqa: F401  (tremor/1)

    from offload.heartpy_import import import_heartpy

    registry()
    import_heartpy()


def get_task(name: str, tasks: dict[str, Task] | None = None) -> Task:
    table = registry() if tasks is None else tasks
    try:
        return table[name]
    except KeyError:
        raise UnknownTaskError(f"unknown task {name!r}; known: {sorted(table)}") from None
