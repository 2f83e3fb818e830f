"""Task profiles for a batch the device is about to run, from its profile database (paper Sec. III-A: profiles
are "kept in a database on the device", so a decision does not re-run the tasks it decides about).

A stored profile was measured on one input size; a new task of the same kind gets its figures interpolated
linearly in the input size D between the two nearest stored sizes, and scaled in proportion to D outside them
(the paper's cost model is D·c). A kind with nothing stored is measured once, on the first input of that kind
that runs, and stored for every later batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from offload.errors import OffloadError, ProfileError, SessionError
from offload.profiler import Clock, TaskProfile, profile_task
from offload.store import ProfileStore
from offload.tasks import Task

# Profiles are measured on the machine running the code, which stands in for the reference core (the cost model
# maps them onto the phone and edge profiles); the experiment files its profiles under the same name, so a store
# it filled (`ehrnet experiment offload --out DIR` → DIR/profiles) serves sessions too.
MEASURING_DEVICE = "reference-core"


def predict(kind: str, input_bits: int, known: Sequence[TaskProfile], key: str) -> TaskProfile:
    """The expected profile of a `kind` task whose input is `input_bits` long."""
    mine = sorted((p for p in known if p.task == kind and p.input_bits > 0), key=lambda p: p.input_bits)
    if not mine:
        raise ProfileError(f"no stored profile of {kind}")
    sizes = np.array([p.input_bits for p in mine], dtype=np.float64)
    figures = np.array(
        [[p.local_s, p.local_peak_bytes, p.encrypt_s, p.encrypt_peak_bytes] for p in mine], dtype=np.float64
    )
    if input_bits <= sizes[0]:
        row = figures[0] * (input_bits / sizes[0])
    elif input_bits >= sizes[-1]:
        row = figures[-1] * (input_bits / sizes[-1])
    else:
        row = np.array([np.interp(input_bits, sizes, figures[:, column]) for column in range(4)])
    local_s, local_peak, encrypt_s, encrypt_peak = (float(v) for v in row)
    return TaskProfile(
        key=key,
        task=kind,
        input_bits=input_bits,
        local_s=local_s,
        local_peak_bytes=round(local_peak),
        encrypt_s=encrypt_s,
        encrypt_peak_bytes=round(encrypt_peak),
        reference_hz=mine[0].reference_hz,
    )


class ProfileBook:
    """Stored profiles of one device, topped up by measuring kinds never seen before."""

    def __init__(
        self,
        store: ProfileStore | None,
        device_name: str,
        reference_hz: float,
        encrypt: Callable[[bytes], bytes],
        *,
        repeats: int = 3,
        clock: Clock = time.perf_counter,
    ) -> None:
        self._store = store
        self._device = device_name
        self._reference_hz = reference_hz
        self._encrypt = encrypt
        self._repeats = repeats
        self._clock = clock
        self._known: list[TaskProfile] | None = None

    def known(self) -> list[TaskProfile]:
        if self._known is None:
            self._known = list(self._store.load(self._device).values()) if self._store is not None else []
        return self._known

    def profiles_for(self, batch: Sequence[tuple[Task, bytes]]) -> tuple[list[TaskProfile], list[str]]:
        """One predicted profile per (task, input) of `batch`, and the kinds measured to make them."""
        have = {p.task for p in self.known()}
        measured: list[str] = []
        for task, _ in batch:
            if task.name not in have:
                self._measure(task, [payload for t, payload in batch if t.name == task.name])
                have.add(task.name)
                measured.append(task.name)
        known = self.known()
        predicted = [
            predict(task.name, 8 * len(payload), known, f"{task.name}#{i}") for i, (task, payload) in enumerate(batch)
        ]
        return predicted, measured

    def _measure(self, task: Task, payloads: list[bytes]) -> None:
        # A batch may hold inputs the task rejects (too short, no heartbeats); measure on the first one it takes.
        last: OffloadError | None = None
        for payload in payloads:
            try:
                profile = profile_task(
                    f"{task.name}@{8 * len(payload)}b",
                    task,
                    payload,
                    self._encrypt,
                    reference_hz=self._reference_hz,
                    repeats=self._repeats,
                    clock=self._clock,
                )
            except OffloadError as exc:
                last = exc
                continue
            self.known().append(profile)
            if self._store is not None:
                self._store.put(self._device, [profile])
            return
        raise SessionError(f"cannot profile {task.name}: no input of this batch runs ({last})")
