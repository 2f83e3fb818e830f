"""Cold start of the demo's offload step, the former way against the current one, in the same run.

    .venv/bin/python -m bench.offload_cold_start [--repeats 3]

Each case runs in a fresh interpreter (imports are the point), `--repeats` times; the figures are medians of
CPU time (user + system of that process) and wall time, with the machine's load average.
  phone, former:  import heartpy whole (pyplot, pkg_resources), cut the demo's four windows with heartpy's CSV
                  loader, profile both task kinds (no profile store), decide with the MILP;
  phone, now:     cut the windows with numpy, take profiles from a filled store, decide.
  edge, former:   the former warm-up (the task registry only), then the first heart-rate task (10-minute window);
  edge, now:      `tasks.preload()`, then the same first task.
The edge cases print the warm-up and the first task separately: the warm-up runs at node start, the first task
is what a device waits for.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

_PRELUDE = """
import json, os, sys, time
import numpy as np
wall0, cpu0 = time.perf_counter(), time.process_time()
def mark(name, marks={}):
    marks[name] = (time.process_time() - cpu0, time.perf_counter() - wall0)
    return marks
"""

_WINDOWS = "[('hrv/1', 600.0), ('hrv/1', 120.0), ('tremor/1', 60.0), ('tremor/1', 20.0)]"

_PHONE = {
    "former": _PRELUDE
    + f"""
import heartpy
from offload import recordings
def heartpy_recording(index):
    data, timer = heartpy.load_exampledata(index)
    rate = heartpy.get_samplerate_datetime(timer, timeformat='%Y-%m-%d %H:%M:%S.%f')
    return recordings.Recording(np.asarray(data, dtype=np.float64), float(rate))
recordings.ppg_recording = heartpy_recording
from offload.workload import make_payload
from offload.tasks import registry
from offload.predict import ProfileBook
from offload.workload import sealer
rng = np.random.default_rng(2021)
payloads = [(kind, make_payload(kind, s, rng)) for kind, s in {_WINDOWS}]
mark('windows')
tasks = registry()
book = ProfileBook(None, 'reference-core', 2.5e9, sealer())
profiles, _ = book.profiles_for([(tasks[k], p) for k, p in payloads])
mark('profiled')
""",
    "now": _PRELUDE
    + f"""
from offload.workload import make_payload
from offload.tasks import registry
from offload.predict import ProfileBook
from offload.store import ProfileStore
from offload.workload import sealer
rng = np.random.default_rng(2021)
payloads = [(kind, make_payload(kind, s, rng)) for kind, s in {_WINDOWS}]
mark('windows')
tasks = registry()
book = ProfileBook(ProfileStore(__import__('pathlib').Path(sys.argv[1])), 'reference-core', 2.5e9, sealer())
profiles, measured = book.profiles_for([(tasks[k], p) for k, p in payloads])
mark('profiled')
""",
}
_DECIDE = """
from offload.costmodel import OffloadProblem
from offload.device import EDGE, PHONE, builtin_profile
from offload.milp import MilpDecider
problem = OffloadProblem.from_profiles(profiles, builtin_profile(PHONE), builtin_profile(EDGE), 0.0)
problem = OffloadProblem(problem.local, problem.offload, float(problem.all_local[0]), problem.memory_available_mb)
MilpDecider().decide(problem, rng)
marks = mark('decided')
print(json.dumps(marks))
"""
_EDGE = {
    "former": "from offload.tasks import registry\nregistry()\n",
    "now": "from offload.tasks import preload\npreload()\n",
}
_FIRST_TASK = """
marks = mark('warm-up')
from offload.workload import make_payload
from offload.tasks import get_task
payload = make_payload('hrv/1', 600.0, np.random.default_rng(1))
cpu, wall = time.process_time(), time.perf_counter()
get_task('hrv/1').run(payload)
marks['first task'] = (time.process_time() - cpu, time.perf_counter() - wall)
print(json.dumps(marks))
"""


def _run(code: str, *args: str) -> dict[str, list[float]]:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    result: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _fill_store(directory: str) -> None:
    """Profile both kinds once into `directory`, as the first demo on a machine does."""
    _run(_PHONE["now"] + _DECIDE, directory)


def _median(samples: list[dict[str, list[float]]], key: str) -> tuple[float, float]:
    return statistics.median(s[key][0] for s in samples), statistics.median(s[key][1] for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="ehrnet-cold-") as store:
        _fill_store(store)
        phone = {way: [_run(code + _DECIDE, store) for _ in range(args.repeats)] for way, code in _PHONE.items()}
    edge = {way: [_run(_PRELUDE + code + _FIRST_TASK) for _ in range(args.repeats)] for way, code in _EDGE.items()}
    print(f"\nphone side, fresh process (medians of {args.repeats}; CPU s / wall s, cumulative from start)")
    for way, samples in phone.items():
        cells = [f"{key} {_median(samples, key)[0]:.2f} / {_median(samples, key)[1]:.2f}" for key in samples[0]]
        print(f"  {way:<7} " + "   ".join(cells))
    former, now = _median(phone["former"], "decided"), _median(phone["now"], "decided")
    print(f"  now / former: CPU {now[0] / former[0]:.2f}, wall {now[1] / former[1]:.2f}")
    print("\nedge side, fresh process: warm-up (cumulative from start), then the first hrv/1 task (10-min window)")
    for way, samples in edge.items():
        warm, first = _median(samples, "warm-up"), _median(samples, "first task")
        print(f"  {way:<7} warm-up {warm[0]:.2f} / {warm[1]:.2f}   first task {first[0]:.2f} / {first[1]:.2f}")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
