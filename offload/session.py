"""The device's side of one offloading round (paper Sec. III-A, end to end): profile, decide, run, collect.

`OffloadSession.run(tasks)` is what `ehrnet light offload` calls. For a batch of analysis windows it
1. predicts each task's profile from the device's profile database (measuring a kind never seen before),
2. builds the cost model for the device and edge profiles and asks the decider (exact MILP by default),
3. runs the tasks decided local one after another in a worker thread (the cost model's device runs tasks
   sequentially), and meanwhile sends the others, sealed for the edge node, through the `Transport` the caller
   supplies (libp2p or HTTP: this module holds no sockets),
4. returns every task's result or typed error, where it ran and how long each step took, with the decision.

An offload that fails for a reason unrelated to the task's input (edge unreachable, refused, misbehaving) is run
on the device instead when `fallback_local` is set; a bad input is not retried, it would fail the same way.
With a `patient`, the edge stores offloaded results as that patient's EHRs (`ResultSink`); results computed on
the device go to the caller's `LocalRecords` (the issue: local results are sent to the EHRs manager).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import nacl.public
import numpy as np

from offload import sealed_messages
from offload.client import build_request, open_response
from offload.context import RecordContext
from offload.costmodel import Costs, Decision, OffloadProblem
from offload.deciders import Decider, MilpDecider
from offload.device import DeviceProfile
from offload.errors import OffloadError, SessionError, TaskFailedError, TransportError
from offload.predict import MEASURING_DEVICE, ProfileBook
from offload.profiler import Clock, TaskProfile
from offload.store import ProfileStore
from offload.tasks import Task, get_task, registry
from offload.workload import sealer
from primitives import codec

ON_DEVICE, ON_EDGE, FALLBACK = "device", "edge", "device-fallback"
# Refusals caused by the task's input: running the same code on the device would fail the same way.
_INPUT_FAULTS = frozenset({"bad-input", "task-failed"})


class Transport(Protocol):
    """Carries one sealed offload request to an edge node and returns its answer (result or error bytes).

    Implementations raise `TransportError` when the edge cannot be reached or does not answer in time; an
    `OSError` or `TimeoutError` is treated the same way."""

    async def offload(self, wire: bytes) -> bytes: ...


class LocalRecords(Protocol):
    """Where results computed on the device go to become the patient's EHRs (the EHRs manager)."""

    async def store(self, patient: bytes, task: str, result: codec.Value, record: RecordContext | None) -> None: ...


@dataclass(frozen=True)
class SessionTask:
    """One analysis to run: its task name, its input bytes, and the recorded window (Unix ms) for the record."""

    kind: str
    payload: bytes
    window: tuple[int, int] | None = None


@dataclass(frozen=True)
class TaskOutcome:
    index: int
    kind: str
    where: str  # ON_DEVICE, ON_EDGE or FALLBACK
    result: codec.Value | None
    error: OffloadError | None
    run_ms: float  # sealing + transport + edge + opening when offloaded; the analysis when run here
    predicted: Costs  # the cost model's figures for the side the decider chose
    offload_error: OffloadError | None = None  # why an offload fell back to the device
    record_error: OffloadError | None = None  # why handing a device result to `LocalRecords` failed

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class SessionReport:
    outcomes: tuple[TaskOutcome, ...]
    decision: Decision
    profile_ms: float
    decide_ms: float
    run_ms: float  # wall time of step 3, both lanes together
    profiled: tuple[str, ...] = field(default=())  # kinds measured in this session (nothing was stored)

    @property
    def results(self) -> list[codec.Value | None]:
        return [outcome.result for outcome in self.outcomes]

    def raise_for_errors(self) -> None:
        """Raise the first task's error, if any task failed."""
        for outcome in self.outcomes:
            if outcome.error is not None:
                raise outcome.error

    def summary(self) -> dict[str, Any]:
        """JSON-friendly view for the CLI."""
        decision = self.decision
        return {
            "decider": decision.method,
            "feasible": decision.feasible,
            "explain": decision.explain(),
            "objective": decision.objective,
            "optimality_gap": decision.optimality_gap,
            "time_limited": decision.time_limited,
            "predicted": {
                "time_s": decision.time_s,
                "energy_mAh": decision.energy_mah,
                "memory_MB": decision.memory_mb,
            },
            "offloaded": decision.offloaded,
            "profile_ms": self.profile_ms,
            "decide_ms": self.decide_ms,
            "run_ms": self.run_ms,
            "profiled": list(self.profiled),
            "tasks": [
                {
                    "kind": o.kind,
                    "where": o.where,
                    "run_ms": o.run_ms,
                    "ok": o.ok,
                    "error": None if o.error is None else f"{o.error.code}: {o.error}",
                }
                for o in self.outcomes
            ],
        }


class OffloadSession:
    """One device talking to one edge node. Construct once, `await run(tasks)` per batch."""

    def __init__(
        self,
        *,
        device_key: nacl.public.PrivateKey,
        edge_public: bytes,
        transport: Transport,
        device: DeviceProfile,
        edge: DeviceProfile,
        store: ProfileStore | None = None,
        decider: Decider | None = None,
        t_max_s: float | None = None,
        patient: bytes | None = None,
        device_id: str | None = None,
        records: LocalRecords | None = None,
        fallback_local: bool = True,
        tasks: dict[str, Task] | None = None,
        reference_hz: float | None = None,
        rng: np.random.Generator | None = None,
        clock: Clock = time.perf_counter,
        random_bytes: Callable[[int], bytes] = os.urandom,
        max_response_bytes: int = sealed_messages.DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if len(edge_public) != sealed_messages.KEY_BYTES:
            raise SessionError(
                f"the edge's X25519 public key is {sealed_messages.KEY_BYTES} bytes, got {len(edge_public)}"
            )
        if patient is not None and not 0 < len(patient) <= sealed_messages.MAX_PATIENT_BYTES:
            raise SessionError(f"a patient is 1..{sealed_messages.MAX_PATIENT_BYTES} bytes")
        if t_max_s is not None and not (np.isfinite(t_max_s) and t_max_s > 0):
            raise SessionError("T_max must be a positive number of seconds")
        self._device_key = device_key
        self._edge_public = edge_public
        self._transport = transport
        self._device = device
        self._edge = edge
        self._decider: Decider = decider if decider is not None else MilpDecider()
        self._t_max_s = t_max_s
        self._patient = patient
        self._device_id = device_id
        self._records = records
        self._fallback = fallback_local
        self._tasks = registry() if tasks is None else tasks
        self._rng = rng if rng is not None else np.random.default_rng()
        self._clock = clock
        self._random_bytes = random_bytes
        self._max_response_bytes = max_response_bytes
        # The measuring machine stands in for the reference core, as in the experiment (docs/OFFLOAD.md).
        hz = reference_hz if reference_hz is not None else edge.effective_hz
        self._book = ProfileBook(store, MEASURING_DEVICE, hz, sealer(random_bytes), clock=clock)

    def _context(self, task: SessionTask) -> RecordContext | None:
        if self._patient is None or self._device_id is None or task.window is None:
            return None
        try:
            return RecordContext(self._device_id, *task.window)
        except OffloadError as exc:
            raise SessionError(f"bad record context for a {task.kind} task: {exc}") from exc

    def _check(self, tasks: Sequence[SessionTask]) -> tuple[list[Task], list[RecordContext | None]]:
        if not tasks:
            raise SessionError("an offload session needs at least one task")
        try:
            resolved = [get_task(task.kind, self._tasks) for task in tasks]
        except OffloadError as exc:
            raise SessionError(str(exc)) from exc
        return resolved, [self._context(task) for task in tasks]

    async def run(self, tasks: Sequence[SessionTask]) -> SessionReport:
        resolved, contexts = self._check(tasks)
        start = self._clock()
        batch = [(task, item.payload) for task, item in zip(resolved, tasks, strict=True)]
        profiles, measured = await asyncio.to_thread(self._book.profiles_for, batch)
        profiled = self._clock()
        problem = self._problem(profiles)
        decision = await asyncio.to_thread(self._decider.decide, problem, self._rng)
        decided = self._clock()

        outcomes: list[TaskOutcome | None] = [None] * len(tasks)

        async def lane(indices: list[int], offload: bool) -> None:
            for i in indices:
                predicted = Costs(*(problem.offload[i] if offload else problem.local[i]))
                if offload:
                    outcomes[i] = await self._run_on_edge(i, tasks[i], contexts[i], predicted)
                else:
                    outcomes[i] = await self._run_here(i, tasks[i], contexts[i], predicted, ON_DEVICE)

        chosen = [bool(x) for x in decision.x]
        await asyncio.gather(
            lane([i for i, x in enumerate(chosen) if not x], offload=False),
            lane([i for i, x in enumerate(chosen) if x], offload=True),
        )
        finished = self._clock()
        done = tuple(outcome for outcome in outcomes if outcome is not None)
        return SessionReport(
            outcomes=done,
            decision=decision,
            profile_ms=(profiled - start) * 1000,
            decide_ms=(decided - profiled) * 1000,
            run_ms=(finished - decided) * 1000,
            profiled=tuple(measured),
        )

    def _problem(self, profiles: list[TaskProfile]) -> OffloadProblem:
        problem = OffloadProblem.from_profiles(profiles, self._device, self._edge, 0.0)
        # Without a deadline, C3 is C1 (no slower than all-local); the problem needs a finite T_max.
        t_max = self._t_max_s if self._t_max_s is not None else float(problem.all_local[0])
        return OffloadProblem(problem.local, problem.offload, t_max, problem.memory_available_mb, problem.weights)

    async def _run_here(
        self, index: int, task: SessionTask, context: RecordContext | None, predicted: Costs, where: str
    ) -> TaskOutcome:
        start = self._clock()
        result: codec.Value | None = None
        error: OffloadError | None = None
        try:
            result = await asyncio.to_thread(self._analyse, task)
        except OffloadError as exc:
            error = exc
        elapsed = (self._clock() - start) * 1000
        record_error = None
        if error is None and self._patient is not None and self._records is not None:
            try:
                await self._records.store(self._patient, task.kind, result, context)
            except OffloadError as exc:
                record_error = exc
        return TaskOutcome(index, task.kind, where, result, error, elapsed, predicted, record_error=record_error)

    def _analyse(self, task: SessionTask) -> codec.Value:
        try:
            return get_task(task.kind, self._tasks).run(task.payload)
        except OffloadError:
            raise
        except Exception as exc:
            # Same rule as the edge (offload/edge.py): third-party analysis code can fail in ways we cannot
            # enumerate on odd signals, and one bad window must not lose the batch.
            raise TaskFailedError(f"{task.kind} failed on this input: {type(exc).__name__}") from exc

    async def _run_on_edge(
        self, index: int, task: SessionTask, context: RecordContext | None, predicted: Costs
    ) -> TaskOutcome:
        start = self._clock()
        try:
            result = await self._offload(task, context)
        except OffloadError as exc:
            if not self._fallback or exc.code in _INPUT_FAULTS:
                elapsed = (self._clock() - start) * 1000
                return TaskOutcome(index, task.kind, ON_EDGE, None, exc, elapsed, predicted)
            outcome = await self._run_here(index, task, context, predicted, FALLBACK)
            elapsed = (self._clock() - start) * 1000
            return TaskOutcome(
                index,
                task.kind,
                FALLBACK,
                outcome.result,
                outcome.error,
                elapsed,
                predicted,
                offload_error=exc,
                record_error=outcome.record_error,
            )
        return TaskOutcome(index, task.kind, ON_EDGE, result, None, (self._clock() - start) * 1000, predicted)

    async def _offload(self, task: SessionTask, context: RecordContext | None) -> codec.Value:
        pending = build_request(
            task.kind,
            task.payload,
            self._device_key,
            self._edge_public,
            patient=self._patient,
            record=context,
            random_bytes=self._random_bytes,
        )
        try:
            answer = await self._transport.offload(pending.wire)
        except TransportError:
            raise
        except (OSError, TimeoutError) as exc:
            raise TransportError(f"edge node unreachable: {type(exc).__name__}: {exc}") from exc
        return open_response(answer, pending, self._device_key, max_bytes=self._max_response_bytes)
