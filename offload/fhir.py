"""Analysis results as FHIR R4 records: what a doctor receives, readable by any FHIR tool (docs/OFFLOAD.md).

One task result becomes one FHIR `Bundle` of type `collection` holding its `Observation`s:

* `hrv/1` → heart rate (LOINC 8867-4, vital signs, /min) and heart-rate variability (LOINC 80404-7
  "R-R interval.standard deviation (Heart rate variability)", i.e. SDNN in ms, with RMSSD, pNN50, mean
  inter-beat interval and the PPG breathing-rate estimate as components under local codes: no LOINC code
  names them exactly, and calling heartpy's breathing estimate "Respiratory rate" (9279-1) would overstate it).
* `tremor/1` → rest-tremor severity, 0-4 on the MDS-UPDRS 3.17 amplitude thresholds, under a local code (no
  LOINC code covers a sensor-derived tremor amplitude score), with amplitude (µm), frequency (Hz) and gyroscope
  RMS (mrad/s) as components.

Local codes live in the code system `ANALYSIS_CODES` and the producing task in `TASK_CODES` (`Observation.method`);
both are listed in docs/OFFLOAD.md. Every Observation has `subject` = Patient/<patient id>, `device` =
Device/<device id>, `effectivePeriod` = the analysed window, values with UCUM units, and a `note` on the method.
A value the analysis could not compute (heartpy's NaN) is a `dataAbsentReason` of `not-a-number`.

Bytes: sorted-key JSON without spaces, UTF-8, so the same result, patient, device and window give the same
bytes — hence the same CID — whether the device or an edge node built it. Quantities are exact: results are
fixed-point integers, and a quantity is that integer times a power of ten, so `parse_record` recovers the
result exactly and can check that the bytes are exactly what `build_record` makes.

Validation uses the `fhir.resources` package (6.4.0, FHIR 4.0.1), imported only inside `validate_fhir`: it
pulls pydantic (≈15 MB resident, ≈0.4 s), and a light client must stay small unless it handles a record.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from offload.context import RecordContext, is_fhir_id
from offload.errors import OffloadError, RecordError
from primitives import codec

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
ANALYSIS_CODES = "urn:ehrnet:fhir:analysis"
TASK_CODES = "urn:ehrnet:fhir:task"
MAX_RECORD_BYTES = 64 * 1024
MAX_PATIENT_ADDRESS_BYTES = 32  # hex of at most 32 bytes fits a FHIR id (64 characters)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@dataclass(frozen=True)
class Coding:
    system: str
    code: str
    display: str

    def to_json(self) -> dict[str, Any]:
        return {"system": self.system, "code": self.code, "display": self.display}


@dataclass(frozen=True)
class Measure:
    """One field of a task result and how it appears in FHIR: the field's integer is value × 10^scale in `ucum`
    (`ucum` None: a plain integer, `valueInteger`)."""

    key: str
    coding: Coding
    ucum: str | None = None
    unit: str | None = None  # human-readable unit text; defaults to the UCUM code
    scale: int = 0


@dataclass(frozen=True)
class ObservationSpec:
    category: str
    main: Measure
    components: tuple[Measure, ...]
    note: str


def _local(code: str, display: str) -> Coding:
    return Coding(ANALYSIS_CODES, code, display)


_HEART_RATE = ObservationSpec(
    category="vital-signs",
    main=Measure("bpm_milli", Coding(LOINC, "8867-4", "Heart rate"), "/min", "beats/minute", 3),
    components=(),
    note="Mean heart rate over the window from PPG/ECG peak detection (heartpy 1.2.7), ehrnet task hrv/1.",
)
_HRV = ObservationSpec(
    category="procedure",
    main=Measure(
        "sdnn_us", Coding(LOINC, "80404-7", "R-R interval.standard deviation (Heart rate variability)"), "ms", None, 3
    ),
    components=(
        Measure("rmssd_us", _local("hrv-rmssd", "RMSSD of successive inter-beat intervals"), "ms", None, 3),
        Measure("pnn50_ppm", _local("hrv-pnn50", "Successive intervals differing by more than 50 ms"), "%", None, 4),
        Measure("ibi_us", _local("mean-ibi", "Mean inter-beat interval"), "ms", None, 3),
        Measure("breathing_mhz", _local("ppg-breathing-rate", "Breathing rate estimated from the PPG"), "Hz", None, 3),
    ),
    note="Time-domain heart-rate variability of the window (heartpy 1.2.7), ehrnet task hrv/1; "
    "short windows give unstable SDNN/RMSSD.",
)
_TREMOR = ObservationSpec(
    category="procedure",
    main=Measure("severity", _local("rest-tremor-severity", "Rest tremor amplitude score (MDS-UPDRS 3.17 scale)")),
    components=(
        Measure("amplitude_um", _local("tremor-amplitude", "Peak tremor displacement"), "um", None, 0),
        Measure("frequency_mhz", _local("tremor-frequency", "Dominant tremor frequency"), "Hz", None, 3),
        Measure("gyro_rms_mrad_s", _local("tremor-gyro-rms", "RMS angular velocity in 3-12 Hz"), "mrad/s", None, 0),
    ),
    note="Wrist accelerometer and gyroscope, band-passed to 3-12 Hz; displacement scored with the MDS-UPDRS 3.17 "
    "amplitude thresholds (0: < 0.15 cm, 1: <= 1 cm, 2: <= 3 cm, 3: <= 10 cm, 4: > 10 cm), ehrnet task tremor/1. "
    "A sensor estimate, not a clinical rating.",
)
SPECS: dict[str, tuple[ObservationSpec, ...]] = {"hrv/1": (_HEART_RATE, _HRV), "tremor/1": (_TREMOR,)}


@dataclass(frozen=True)
class AnalysisRecord:
    """A task result with whom and what it is about: the content of one FHIR record."""

    task: str
    patient: str  # FHIR id of the Patient
    context: RecordContext
    result: dict[str, codec.Value]


def patient_id(address: bytes) -> str:
    """The FHIR Patient id of a patient address: its lower-case hex."""
    if not 0 < len(address) <= MAX_PATIENT_ADDRESS_BYTES:
        raise RecordError(f"a patient address for a FHIR record is 1..{MAX_PATIENT_ADDRESS_BYTES} bytes")
    return address.hex()


def instant(ms: int) -> str:
    """Unix milliseconds as a FHIR dateTime in UTC with exactly three fraction digits (one spelling per time)."""
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def _epoch_ms(text: object) -> int:
    if not isinstance(text, str) or not _INSTANT.match(text):
        raise RecordError(f"time {text!r} is not in the form YYYY-MM-DDThh:mm:ss.sssZ")
    moment = datetime.strptime(text[:-1], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _number(value: int, scale: int) -> int | float:
    # value / 10^scale as the double nearest that decimal; its shortest repr is that decimal, so JSON shows it
    # exactly (fixed-point integers stay far below 2^53 / 10^scale).
    return value if scale == 0 else float(Decimal(value).scaleb(-scale))


def _absent(reason: str) -> dict[str, Any]:
    return {"coding": [{"system": DATA_ABSENT_REASON, "code": reason}]}


def _value_fields(measure: Measure, value: codec.Value) -> dict[str, Any]:
    if value is None:
        return {"dataAbsentReason": _absent("not-a-number")}
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"result field {measure.key!r} must be an integer or null, got {type(value).__name__}")
    if measure.ucum is None:
        return {"valueInteger": value}
    quantity = {"value": _number(value, measure.scale), "unit": measure.unit or measure.ucum}
    return {"valueQuantity": quantity | {"system": UCUM, "code": measure.ucum}}


def _observation(spec: ObservationSpec, record: AnalysisRecord) -> dict[str, Any]:
    result = record.result
    category = {"coding": [{"system": OBSERVATION_CATEGORY, "code": spec.category}]}
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [category],
        "code": {"coding": [spec.main.coding.to_json()], "text": spec.main.coding.display},
        "subject": {"reference": f"Patient/{record.patient}"},
        "device": {"reference": f"Device/{record.context.device}"},
        "effectivePeriod": {"start": instant(record.context.start_ms), "end": instant(record.context.end_ms)},
        "method": {"coding": [{"system": TASK_CODES, "code": record.task}]},
        "note": [{"text": spec.note}],
    }
    observation |= _value_fields(spec.main, result[spec.main.key])
    if spec.components:
        observation["component"] = [
            {"code": {"coding": [m.coding.to_json()], "text": m.coding.display}} | _value_fields(m, result[m.key])
            for m in spec.components
        ]
    return observation


def _specs(task: str) -> tuple[ObservationSpec, ...]:
    specs = SPECS.get(task)
    if specs is None:
        raise RecordError(f"no FHIR mapping for task {task!r}; known: {sorted(SPECS)}")
    return specs


def _keys(specs: tuple[ObservationSpec, ...]) -> set[str]:
    return {m.key for spec in specs for m in (spec.main, *spec.components)}


def build_resource(record: AnalysisRecord) -> dict[str, Any]:
    """The FHIR Bundle (as JSON-ready data) of one analysis result; raises `RecordError` on a malformed one."""
    specs = _specs(record.task)
    if not is_fhir_id(record.patient):
        raise RecordError("patient id must be a FHIR id: 1-64 of [A-Za-z0-9.-]")
    if set(record.result) != _keys(specs):
        raise RecordError(f"a {record.task} result has the fields {sorted(_keys(specs))}, got {sorted(record.result)}")
    entries = [{"resource": _observation(spec, record)} for spec in specs]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def canonical_json(resource: dict[str, Any]) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8: one byte string per resource."""
    return json.dumps(resource, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def build_record(
    task: str, result: codec.Value, patient: str, context: RecordContext, *, validate: bool = True
) -> bytes:
    """The canonical FHIR JSON bytes of `result` of `task` for `patient` (a FHIR id, see `patient_id`).

    `validate` checks the Bundle against FHIR R4 with fhir.resources (imports pydantic; off for hot paths that
    trust this module's output)."""
    if not isinstance(result, dict):
        raise RecordError(f"a task result is a map, got {type(result).__name__}")
    resource = build_resource(AnalysisRecord(task, patient, context, result))
    if validate:
        validate_fhir(resource)
    return canonical_json(resource)


def validate_fhir(resource: dict[str, Any]) -> None:
    """Check a Bundle and every Observation in it against the FHIR R4 (4.0.1) models of fhir.resources."""
    import pydantic
    from fhir.resources.bundle import Bundle
    from fhir.resources.observation import Observation

    try:
        Bundle.parse_obj(resource)
        for entry in resource.get("entry") or []:
            Observation.parse_obj(entry["resource"])
    except (pydantic.ValidationError, TypeError, KeyError) as exc:
        summary = " ".join(str(exc).split())[:300]
        raise RecordError(f"not a valid FHIR R4 Bundle of Observations: {summary}") from exc


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    table = dict(pairs)
    if len(table) != len(pairs):
        raise RecordError("JSON object with a duplicate key")
    return table


def _reject_constant(name: str) -> Any:
    raise RecordError(f"JSON constant {name} is not allowed")


def _read_value(measure: Measure, holder: dict[str, Any]) -> codec.Value:
    if "dataAbsentReason" in holder:
        return None
    if measure.ucum is None:
        value = holder["valueInteger"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecordError(f"{measure.key}: valueInteger must be an integer")
        return value
    scaled = Decimal(holder["valueQuantity"]["value"]).scaleb(measure.scale)
    if scaled != scaled.to_integral_value():
        raise RecordError(f"{measure.key}: more precision than the analysis produces")
    return int(scaled)


def _reference_id(reference: dict[str, Any], kind: str) -> str:
    text = reference["reference"]
    if not isinstance(text, str) or not text.startswith(kind + "/"):
        raise RecordError(f"expected a reference to a {kind}, got {text!r}")
    return text[len(kind) + 1 :]


def _extract(bundle: dict[str, Any]) -> AnalysisRecord:
    entries = bundle["entry"]
    first = entries[0]["resource"]
    task = first["method"]["coding"][0]["code"]
    specs = _specs(task)
    if len(entries) != len(specs):
        raise RecordError(f"a {task} record holds {len(specs)} observation(s), got {len(entries)}")
    result: dict[str, codec.Value] = {}
    for spec, entry in zip(specs, entries, strict=True):
        observation = entry["resource"]
        result[spec.main.key] = _read_value(spec.main, observation)
        for measure, component in zip(spec.components, observation.get("component", []), strict=True):
            result[measure.key] = _read_value(measure, component)
    period = first["effectivePeriod"]
    context = RecordContext(
        _reference_id(first["device"], "Device"), _epoch_ms(period["start"]), _epoch_ms(period["end"])
    )
    return AnalysisRecord(task, _reference_id(first["subject"], "Patient"), context, result)


def parse_record(data: bytes, *, max_bytes: int = MAX_RECORD_BYTES) -> AnalysisRecord:
    """Validate a received record (after decryption) and recover the analysis it holds.

    Accepts exactly what `build_record` produces: valid FHIR R4, and byte for byte the canonical record of the
    recovered result. Anything else raises `RecordError`."""
    if len(data) > max_bytes:
        raise RecordError(f"record of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    try:
        resource = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_reject_duplicates,
            parse_float=Decimal,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise RecordError(f"record is not UTF-8 JSON: {exc}") from exc
    if not isinstance(resource, dict) or resource.get("resourceType") != "Bundle":
        raise RecordError("a record is a FHIR Bundle")
    validate_fhir(resource)
    try:
        record = _extract(resource)
    except OffloadError as exc:
        raise RecordError(f"not an ehrnet analysis record: {exc}") from exc
    except (KeyError, IndexError, TypeError, ValueError, InvalidOperation) as exc:
        raise RecordError(f"not an ehrnet analysis record: missing or ill-typed {exc}") from exc
    if canonical_json(build_resource(record)) != data:
        raise RecordError("record differs from the canonical form of its content (reordered, re-spaced or extended)")
    return record
