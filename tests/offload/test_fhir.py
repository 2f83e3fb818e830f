"""Analysis results as FHIR R4 records: valid, exact, one byte string per content, strict on what it accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offload.context import RecordContext
from offload.errors import RecordError
from offload.fhir import (
    ANALYSIS_CODES,
    LOINC,
    UCUM,
    AnalysisRecord,
    build_record,
    build_resource,
    canonical_json,
    instant,
    parse_record,
    patient_id,
    validate_fhir,
)
from primitives import codec

PATIENT = patient_id(bytes(range(1, 21)))
CONTEXT = RecordContext("phone-7.a", 1_763_950_000_123, 1_763_950_030_123)
HRV_RESULT: dict[str, codec.Value] = {
    "bpm_milli": 71_250,
    "ibi_us": 842_105,
    "sdnn_us": 48_310,
    "rmssd_us": 39_007,
    "pnn50_ppm": 162_791,
    "breathing_mhz": 216,
}
TREMOR_RESULT: dict[str, codec.Value] = {
    "severity": 2,
    "amplitude_um": 26_273,
    "frequency_mhz": 4_285,
    "gyro_rms_mrad_s": 4_998,
}


def observations(data: bytes) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in json.loads(data)["entry"]]


def test_heart_rate_and_hrv_use_loinc_with_ucum_units() -> None:
    heart_rate, hrv = observations(build_record("hrv/1", HRV_RESULT, PATIENT, CONTEXT))
    assert heart_rate["code"]["coding"][0] | {} == {"system": LOINC, "code": "8867-4", "display": "Heart rate"}
    assert heart_rate["category"][0]["coding"][0]["code"] == "vital-signs"
    assert heart_rate["valueQuantity"] == {
        "value": 71.25,
        "unit": "beats/minute",
        "system": UCUM,
        "code": "/min",
    }
    assert hrv["code"]["coding"][0]["code"] == "80404-7"
    assert hrv["valueQuantity"]["value"] == 48.31 and hrv["valueQuantity"]["code"] == "ms"
    components = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in hrv["component"]}
    assert components["hrv-pnn50"]["value"] == 16.2791 and components["hrv-pnn50"]["code"] == "%"
    assert components["ppg-breathing-rate"] == {"value": 0.216, "unit": "Hz", "system": UCUM, "code": "Hz"}
    assert all(c["code"]["coding"][0]["system"] == ANALYSIS_CODES for c in hrv["component"])


def test_every_observation_names_patient_device_window_and_task() -> None:
    for task, result in (("hrv/1", HRV_RESULT), ("tremor/1", TREMOR_RESULT)):
        for observation in observations(build_record(task, result, PATIENT, CONTEXT)):
            assert observation["resourceType"] == "Observation" and observation["status"] == "final"
            assert observation["subject"] == {"reference": f"Patient/{PATIENT}"}
            assert observation["device"] == {"reference": "Device/phone-7.a"}
            assert observation["effectivePeriod"] == {
                "start": "2025-11-24T02:06:40.123Z",
                "end": "2025-11-24T02:07:10.123Z",
            }
            assert observation["method"]["coding"][0]["code"] == task
            assert observation["note"][0]["text"]


def test_tremor_severity_is_an_integer_under_the_local_code_system() -> None:
    (tremor,) = observations(build_record("tremor/1", TREMOR_RESULT, PATIENT, CONTEXT))
    assert tremor["code"]["coding"][0]["system"] == ANALYSIS_CODES
    assert tremor["code"]["coding"][0]["code"] == "rest-tremor-severity"
    assert tremor["valueInteger"] == 2
    units = [c["valueQuantity"]["code"] for c in tremor["component"]]
    assert units == ["um", "Hz", "mrad/s"]


@pytest.mark.parametrize(("task", "result"), [("hrv/1", HRV_RESULT), ("tremor/1", TREMOR_RESULT)])
def test_round_trip_recovers_the_exact_result(task: str, result: dict[str, codec.Value]) -> None:
    record = parse_record(build_record(task, result, PATIENT, CONTEXT))
    assert record == AnalysisRecord(task, PATIENT, CONTEXT, result)


def test_unmeasurable_values_become_data_absent_and_come_back_as_null() -> None:
    result = HRV_RESULT | {"sdnn_us": None, "pnn50_ppm": None}
    data = build_record("hrv/1", result, PATIENT, CONTEXT)
    _, hrv = observations(data)
    assert "valueQuantity" not in hrv
    assert hrv["dataAbsentReason"]["coding"][0]["code"] == "not-a-number"
    assert parse_record(data).result == result
    no_tremor = TREMOR_RESULT | {"severity": 0, "frequency_mhz": None}
    assert parse_record(build_record("tremor/1", no_tremor, PATIENT, CONTEXT)).result == no_tremor


def test_same_content_same_bytes_whatever_the_key_order() -> None:
    shuffled = dict(reversed(list(HRV_RESULT.items())))
    first = build_record("hrv/1", HRV_RESULT, PATIENT, CONTEXT)
    assert build_record("hrv/1", shuffled, PATIENT, CONTEXT) == first
    assert build_record("hrv/1", HRV_RESULT, PATIENT, CONTEXT, validate=False) == first
    assert first == json.dumps(json.loads(first), sort_keys=True, separators=(",", ":")).encode()
    other_window = RecordContext(CONTEXT.device, CONTEXT.start_ms + 1, CONTEXT.end_ms)
    assert build_record("hrv/1", HRV_RESULT, PATIENT, other_window) != first


fixed_point = st.one_of(st.none(), st.integers(min_value=0, max_value=10**12))


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(fixed_point, min_size=10, max_size=10),
    severity=st.integers(min_value=0, max_value=4),
    start=st.integers(min_value=0, max_value=253_402_300_000_000),
    length=st.integers(min_value=0, max_value=10**9),
)
def test_any_fixed_point_result_round_trips_byte_for_byte(
    values: list[int | None], severity: int, start: int, length: int
) -> None:
    context = RecordContext("dev", start, min(start + length, 253_402_300_799_999))
    hrv: dict[str, codec.Value] = dict(zip(HRV_RESULT, values[:6], strict=True))
    hrv["bpm_milli"] = values[0] if values[0] is not None else 60_000
    tremor: dict[str, codec.Value] = dict(zip(TREMOR_RESULT, [severity, *values[6:9]], strict=True))
    for task, result in (("hrv/1", hrv), ("tremor/1", tremor)):
        data = build_record(task, result, "p", context, validate=False)
        assert parse_record(data) == AnalysisRecord(task, "p", context, result)


def test_instants_have_one_spelling() -> None:
    assert instant(0) == "1970-01-01T00:00:00.000Z"
    assert instant(253_402_300_799_999) == "9999-12-31T23:59:59.999Z"


@pytest.mark.parametrize(
    ("task", "result", "words"),
    [
        ("hrv/1", {k: v for k, v in HRV_RESULT.items() if k != "ibi_us"}, "fields"),
        ("hrv/1", HRV_RESULT | {"extra": 1}, "fields"),
        ("tremor/1", TREMOR_RESULT | {"severity": True}, "integer"),
        ("tremor/1", TREMOR_RESULT | {"amplitude_um": 2.5}, "integer"),
        ("ecg/9", HRV_RESULT, "no FHIR mapping"),
        ("hrv/1", [1, 2], "map"),
    ],
)
def test_malformed_results_are_refused(task: str, result: codec.Value, words: str) -> None:
    with pytest.raises(RecordError, match=words):
        build_record(task, result, PATIENT, CONTEXT)


def test_patient_ids_must_be_fhir_ids() -> None:
    with pytest.raises(RecordError, match="FHIR id"):
        build_record("tremor/1", TREMOR_RESULT, "Patient/x", CONTEXT)
    with pytest.raises(RecordError, match=r"1\.\.32 bytes"):
        patient_id(bytes(33))
    assert len(patient_id(bytes(32))) == 64


def _edited(edit: Any) -> bytes:
    resource = json.loads(build_record("tremor/1", TREMOR_RESULT, PATIENT, CONTEXT))
    edit(resource)
    return canonical_json(resource)


def _set(path: list[Any], value: Any) -> Any:
    def edit(resource: Any) -> None:
        for step in path[:-1]:
            resource = resource[step]
        resource[path[-1]] = value

    return edit


OBS = ["entry", 0, "resource"]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\xff\xfe", "UTF-8 JSON"),
        (b"{not json", "UTF-8 JSON"),
        (b'{"resourceType":"Bundle","resourceType":"Bundle"}', "duplicate key"),
        (b'{"resourceType":"Bundle","x":NaN}', "NaN"),
        (b"[]", "Bundle"),
        (b"x" * 70_000, "exceeds"),
        (_edited(_set([*OBS, "effectivePeriod", "start"], "yesterday")), "FHIR R4"),
        (_edited(_set([*OBS, "unknownField"], 1)), "FHIR R4"),
        (_edited(_set([*OBS, "method", "coding", 0, "code"], "ecg/9")), "no FHIR mapping"),
        (_edited(_set([*OBS, "subject", "reference"], "Group/1")), "Patient"),
        (_edited(_set([*OBS, "component"], [])), "ehrnet analysis record"),
        (_edited(_set([*OBS, "component", 0, "valueQuantity", "value"], 1.5)), "precision"),
        (_edited(_set([*OBS, "note", 0, "text"], "edited")), "canonical form"),
        (_edited(_set([*OBS, "effectivePeriod", "start"], "2025-11-24T02:06:40Z")), "YYYY-MM-DD"),
    ],
)
def test_received_records_that_are_not_ours_exactly_are_refused(data: bytes, words: str) -> None:
    with pytest.raises(RecordError, match=words):
        parse_record(data)


def test_pretty_printed_record_is_not_canonical() -> None:
    data = build_record("hrv/1", HRV_RESULT, PATIENT, CONTEXT)
    with pytest.raises(RecordError, match="canonical form"):
        parse_record(json.dumps(json.loads(data), indent=1, sort_keys=True).encode())


def test_validation_rejects_an_observation_without_its_required_elements() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Observation"}}]}
    with pytest.raises(RecordError, match="FHIR R4"):
        validate_fhir(bundle)
    validate_fhir(build_resource(AnalysisRecord("tremor/1", PATIENT, CONTEXT, TREMOR_RESULT)))


def test_fhir_resources_is_the_r4_release() -> None:
    import fhir.resources

    assert fhir.resources.__fhir_version__ == "4.0.1"


def test_importing_the_offload_client_side_does_not_load_pydantic() -> None:
    code = (
        "import sys, offload.fhir, offload.session, offload.client, offload.context; "
        "print(sorted(m for m in sys.modules if m.startswith(('pydantic', 'fhir.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
