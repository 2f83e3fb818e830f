"""The device's offloading round: profile, decide, run here or on the edge (through a fake transport), collect."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nacl.public
import numpy as np
import pytest

from offload.client import run_local
from offload.context import RecordContext
from offload.deciders import AllLocal, AllOffload, Decider, MilpDecider
from offload.device import EDGE, PHONE, builtin_profile
from offload.edge import EdgeExecutor
from offload.errors import MalformedError, ProfileError, SessionError, TaskInputError, TransportError
from offload.fhir import build_record, patient_id
from offload.predict import MEASURING_DEVICE, predict
from offload.profiler import TaskProfile
from offload.session import FALLBACK, ON_DEVICE, ON_EDGE, OffloadSession, SessionTask, Transport
from offload.store import ProfileStore
from offload.task_input import encode_signal
from offload.workload import HRV, TREMOR, make_payload
from primitives import codec

DEVICE_KEY = nacl.public.PrivateKey(bytes(range(40, 72)))
EDGE_KEY = nacl.public.PrivateKey(bytes(range(80, 112)))
PATIENT = bytes(range(1, 21))
T0 = 1_763_950_000_000


class EdgeTransport:
    """Hands the sealed bytes straight to an in-process edge executor, as the node's protocol handler does."""

    def __init__(self, executor: EdgeExecutor) -> None:
        self.executor = executor
        self.sent: list[bytes] = []

    async def offload(self, wire: bytes) -> bytes:
        self.sent.append(wire)
        return self.executor.handle(wire)


class FailingTransport:
    def __init__(self, failure: Exception | None = None, answer: bytes = b"") -> None:
        self.failure = failure
        self.answer = answer
        self.calls = 0

    async def offload(self, wire: bytes) -> bytes:
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        return self.answer


class FhirSink:
    """An edge-side ResultSink that turns each result into its FHIR record, as the sharing issue's sink will."""

    def __init__(self) -> None:
        self.records: list[bytes] = []

    def store_result(self, patient: bytes, task: str, result: codec.Value, record: RecordContext | None) -> None:
        assert record is not None
        self.records.append(build_record(task, result, patient_id(patient), record, validate=False))


class LocalFhirRecords:
    def __init__(self) -> None:
        self.records: list[bytes] = []

    async def store(self, patient: bytes, task: str, result: codec.Value, record: RecordContext | None) -> None:
        assert record is not None
        self.records.append(build_record(task, result, patient_id(patient), record, validate=False))


@pytest.fixture(scope="module")
def batch() -> list[SessionTask]:
    rng = np.random.default_rng(11)
    spans = [(HRV, 15.0), (TREMOR, 8.0), (HRV, 20.0), (TREMOR, 6.0)]
    return [
        SessionTask(kind, make_payload(kind, seconds, rng), (T0 + i * 60_000, T0 + i * 60_000 + round(seconds * 1000)))
        for i, (kind, seconds) in enumerate(spans)
    ]


@pytest.fixture(scope="module")
def local_results(batch: list[SessionTask]) -> list[codec.Value]:
    return [run_local(task.kind, task.payload) for task in batch]


@pytest.fixture(scope="module")
def profiles_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A profile database as an earlier session would leave it (synthetic figures: no measuring in most tests)."""
    directory = tmp_path_factory.mktemp("profiles")
    ProfileStore(directory).put(
        MEASURING_DEVICE,
        [
            # Heart-rate analyses made costly enough that offloading them pays; tremor stays cheap.
            TaskProfile(f"{HRV}@s", HRV, 40_000, 1.0, 30_000_000, 0.0005, 100_000, 2.5e9),
            TaskProfile(f"{HRV}@l", HRV, 400_000, 10.0, 300_000_000, 0.004, 1_000_000, 2.5e9),
            TaskProfile(f"{TREMOR}@s", TREMOR, 150_000, 0.003, 50_000, 0.0004, 80_000, 2.5e9),
        ],
    )
    return directory


def session(
    transport: Transport, store: ProfileStore | None, decider: Decider | None = None, **options: Any
) -> OffloadSession:
    return OffloadSession(
        device_key=DEVICE_KEY,
        edge_public=bytes(EDGE_KEY.public_key),
        transport=transport,
        device=builtin_profile(PHONE),
        edge=builtin_profile(EDGE),
        store=store,
        decider=decider,
        rng=np.random.default_rng(0),
        **options,
    )


@pytest.mark.parametrize("decider", [MilpDecider(), AllLocal(), AllOffload()], ids=lambda d: d.name)
async def test_session_results_equal_local_results(
    decider: Decider, batch: list[SessionTask], local_results: list[codec.Value], profiles_dir: Path
) -> None:
    transport = EdgeTransport(EdgeExecutor(EDGE_KEY))
    report = await session(transport, ProfileStore(profiles_dir), decider).run(batch)
    assert report.results == local_results
    assert [o.where for o in report.outcomes] == [ON_EDGE if x else ON_DEVICE for x in report.decision.x]
    assert len(transport.sent) == report.decision.offloaded
    assert report.decision.method == decider.name and report.profiled == ()
    report.raise_for_errors()


async def test_report_carries_timings_and_the_decision_totals(batch: list[SessionTask], profiles_dir: Path) -> None:
    report = await session(EdgeTransport(EdgeExecutor(EDGE_KEY)), ProfileStore(profiles_dir)).run(batch)
    assert report.decision.feasible
    # The exact decider sends the costly heart-rate windows to the edge and keeps the cheap tremor ones.
    assert [o.where for o in report.outcomes] == [ON_EDGE, ON_DEVICE, ON_EDGE, ON_DEVICE]
    assert min(report.profile_ms, report.decide_ms, report.run_ms) >= 0
    assert all(o.run_ms > 0 and o.predicted.time_s > 0 for o in report.outcomes)
    summary = json.loads(json.dumps(report.summary()))
    assert summary["decider"] == "milp" and len(summary["tasks"]) == len(batch)
    assert summary["predicted"]["time_s"] == pytest.approx(report.decision.time_s)
    assert summary["objective"] < 1.0 and summary["offloaded"] == 2  # better than all-local


async def test_profiles_are_measured_once_then_reused(tmp_path: Path, batch: list[SessionTask]) -> None:
    store = ProfileStore(tmp_path)
    first = await session(EdgeTransport(EdgeExecutor(EDGE_KEY)), store).run(batch[:2])
    assert first.profiled == (HRV, TREMOR)
    stored = store.load(MEASURING_DEVICE)
    assert {p.task for p in stored.values()} == {HRV, TREMOR}
    assert {p.input_bits for p in stored.values()} == {8 * len(batch[0].payload), 8 * len(batch[1].payload)}
    second = await session(EdgeTransport(EdgeExecutor(EDGE_KEY)), store).run(batch)
    assert second.profiled == ()


async def test_edge_and_device_build_the_same_record_for_the_patient(
    batch: list[SessionTask], profiles_dir: Path
) -> None:
    sink, local = FhirSink(), LocalFhirRecords()
    options = {"patient": PATIENT, "device_id": "phone-1", "records": local}
    store = ProfileStore(profiles_dir)
    remote = await session(EdgeTransport(EdgeExecutor(EDGE_KEY, sink=sink)), store, AllOffload(), **options).run(batch)
    here = await session(EdgeTransport(EdgeExecutor(EDGE_KEY)), store, AllLocal(), **options).run(batch)
    assert remote.results == here.results
    assert len(sink.records) == len(batch) and local.records == sink.records  # same bytes, hence the same CID
    assert b'"Device/phone-1"' in sink.records[0] and patient_id(PATIENT).encode() in sink.records[0]


async def test_without_a_patient_nothing_is_stored(batch: list[SessionTask], profiles_dir: Path) -> None:
    sink, local = FhirSink(), LocalFhirRecords()
    store = ProfileStore(profiles_dir)
    await session(EdgeTransport(EdgeExecutor(EDGE_KEY, sink=sink)), store, AllOffload(), records=local).run(batch)
    await session(EdgeTransport(EdgeExecutor(EDGE_KEY)), store, AllLocal(), records=local).run(batch)
    assert sink.records == [] and local.records == []


@pytest.mark.parametrize(
    "failure", [TransportError("no route to the edge"), ConnectionRefusedError(111, "refused"), TimeoutError()]
)
async def test_unreachable_edge_falls_back_to_the_device(
    failure: Exception, batch: list[SessionTask], local_results: list[codec.Value], profiles_dir: Path
) -> None:
    local = LocalFhirRecords()
    transport = FailingTransport(failure)
    options = {"patient": PATIENT, "device_id": "phone-1", "records": local}
    report = await session(transport, ProfileStore(profiles_dir), AllOffload(), **options).run(batch)
    assert report.results == local_results
    assert transport.calls == len(batch)
    for outcome in report.outcomes:
        assert outcome.where == FALLBACK and outcome.ok
        assert isinstance(outcome.offload_error, TransportError)
    assert len(local.records) == len(batch)  # the edge stored nothing, so the device hands them on


async def test_without_fallback_a_transport_failure_is_a_typed_error(
    batch: list[SessionTask], profiles_dir: Path
) -> None:
    report = await session(
        FailingTransport(OSError("network down")), ProfileStore(profiles_dir), AllOffload(), fallback_local=False
    ).run(batch[:1])
    (outcome,) = report.outcomes
    assert outcome.where == ON_EDGE and outcome.result is None
    assert isinstance(outcome.error, TransportError) and "network down" in str(outcome.error)
    with pytest.raises(TransportError):
        report.raise_for_errors()


async def test_a_garbled_answer_is_malformed_and_the_device_takes_over(
    batch: list[SessionTask], local_results: list[codec.Value], profiles_dir: Path
) -> None:
    report = await session(FailingTransport(answer=b"\xa0junk"), ProfileStore(profiles_dir), AllOffload()).run(
        batch[:2]
    )
    assert report.results == local_results[:2]
    assert all(isinstance(o.offload_error, MalformedError) for o in report.outcomes)


async def test_a_bad_input_is_reported_not_retried(batch: list[SessionTask], profiles_dir: Path) -> None:
    wrong = SessionTask(TREMOR, encode_signal(np.zeros((600, 2)), 100.0))
    tasks = [batch[0], wrong]
    remote = await session(EdgeTransport(EdgeExecutor(EDGE_KEY)), ProfileStore(profiles_dir), AllOffload()).run(tasks)
    assert remote.outcomes[0].ok
    assert remote.outcomes[1].where == ON_EDGE and remote.outcomes[1].error is not None
    assert remote.outcomes[1].error.code == "bad-input" and remote.outcomes[1].offload_error is None
    here = await session(EdgeTransport(EdgeExecutor(EDGE_KEY)), ProfileStore(profiles_dir), AllLocal()).run(tasks)
    assert here.outcomes[0].ok and isinstance(here.outcomes[1].error, TaskInputError)


async def test_a_kind_no_input_of_which_runs_cannot_be_profiled(tmp_path: Path) -> None:
    wrong = SessionTask(TREMOR, encode_signal(np.zeros((600, 2)), 100.0))
    with pytest.raises(SessionError, match="cannot profile tremor/1"):
        await session(FailingTransport(), ProfileStore(tmp_path)).run([wrong])


@pytest.mark.parametrize(
    ("tasks", "options", "words"),
    [
        ([], {}, "at least one task"),
        ([SessionTask("ecg/9", b"")], {}, "unknown task"),
        ([SessionTask(HRV, b"", (5, 4))], {"patient": PATIENT, "device_id": "d"}, "ends before"),
        ([SessionTask(HRV, b"", (0, 1))], {"patient": PATIENT, "device_id": "no/slash"}, "FHIR id"),
    ],
)
async def test_unusable_batches_are_refused(
    tasks: list[SessionTask], options: dict[str, Any], words: str, profiles_dir: Path
) -> None:
    with pytest.raises(SessionError, match=words):
        await session(FailingTransport(), ProfileStore(profiles_dir), **options).run(tasks)


@pytest.mark.parametrize(
    ("options", "words"),
    [({"edge_public": b"short"}, "32 bytes"), ({"patient": b""}, "patient"), ({"t_max_s": 0.0}, "T_max")],
)
def test_unusable_configuration_is_refused(options: dict[str, object], words: str) -> None:
    base: dict[str, object] = {
        "device_key": DEVICE_KEY,
        "edge_public": bytes(EDGE_KEY.public_key),
        "transport": FailingTransport(),
        "device": builtin_profile(PHONE),
        "edge": builtin_profile(EDGE),
    }
    with pytest.raises(SessionError, match=words):
        OffloadSession(**(base | options))  # type: ignore[arg-type]


def test_prediction_interpolates_between_and_scales_beyond_stored_sizes() -> None:
    known = [
        TaskProfile("a", HRV, 1000, 1.0, 100, 0.1, 10, 2e9),
        TaskProfile("b", HRV, 3000, 5.0, 300, 0.3, 30, 2e9),
        TaskProfile("c", TREMOR, 1000, 9.0, 900, 0.9, 90, 2e9),
    ]
    middle = predict(HRV, 2000, known, "m")
    assert (middle.local_s, middle.local_peak_bytes, middle.encrypt_s) == pytest.approx((3.0, 200, 0.2))
    assert middle.input_bits == 2000 and middle.task == HRV and middle.reference_hz == 2e9
    assert predict(HRV, 6000, known, "x").local_s == pytest.approx(10.0)
    assert predict(HRV, 500, known, "y").encrypt_peak_bytes == 5
    with pytest.raises(ProfileError, match="no stored profile"):
        predict("ecg/9", 1000, known, "z")
