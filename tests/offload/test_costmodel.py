"""The cost model on cases small enough to compute by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offload.costmodel import OffloadProblem, evaluate, local_costs, offload_costs
from offload.device import DeviceProfile
from offload.errors import ProblemError
from offload.profiler import TaskProfile
from offload.synthetic import random_problem

# Two tasks. Columns: time s, energy mAh, memory MB.
LOCAL = np.array([[2.0, 4.0, 10.0], [1.0, 2.0, 30.0]])
OFFLOAD = np.array([[1.0, 1.0, 1.0], [2.0, 4.0, 3.0]])


def problem(t_max: float = 100.0, memory: float = 1000.0) -> OffloadProblem:
    return OffloadProblem(LOCAL, OFFLOAD, t_max, memory)


def test_all_local_scores_one_and_totals_are_the_column_sums() -> None:
    p = problem()
    assert p.all_local.tolist() == [3.0, 6.0, 40.0]
    decision = evaluate(p, [0, 0], "local")
    assert decision.objective == pytest.approx(1.0)
    assert (decision.time_s, decision.energy_mah, decision.memory_mb) == (3.0, 6.0, 40.0)


def test_objective_normalises_each_term_by_its_all_local_total() -> None:
    p = problem()
    # Offload task 0 only: time 1+1=2, energy 1+2=3, memory 1+30=31.
    # f = (2/3 + 3/6 + 31/40) / 3 = (0.666.. + 0.5 + 0.775) / 3
    expected = (2 / 3 + 3 / 6 + 31 / 40) / 3
    assert evaluate(p, [1, 0], "x").objective == pytest.approx(expected)
    # Offload both: time 3, energy 5, memory 4 -> (1 + 5/6 + 0.1) / 3
    assert evaluate(p, [1, 1], "x").objective == pytest.approx((1 + 5 / 6 + 4 / 40) / 3)
    # Linear form agrees: f(x) = f(0) + c·x.
    assert p.constant + p.coefficients @ np.array([1, 1]) == pytest.approx((1 + 5 / 6 + 0.1) / 3)


def test_weights_change_the_objective() -> None:
    p = OffloadProblem(LOCAL, OFFLOAD, 100.0, 1000.0, weights=(1.0, 0.0, 0.0))
    assert evaluate(p, [0, 1], "x").objective == pytest.approx(4 / 3)


def test_c1_time_cannot_exceed_all_local() -> None:
    p = problem()
    # Offloading only task 1 takes 2 + 2 = 4 s > 3 s all-local, and 4 + 4 = 8 mAh > 6 mAh.
    assert evaluate(p, [0, 1], "x").violated == ("C1", "C2")
    assert evaluate(p, [1, 1], "x").violated == ()


def test_c3_deadline() -> None:
    p = problem(t_max=2.5)
    assert evaluate(p, [0, 0], "x").violated == ("C3",)
    assert evaluate(p, [1, 0], "x").violated == ()  # 2 s


def test_c4_is_per_task_memory() -> None:
    p = problem(memory=20.0)
    assert p.must_offload.tolist() == [False, True]  # task 1 needs 30 MB locally
    assert p.must_stay.tolist() == [False, False]
    decision = evaluate(p, [1, 0], "x")
    assert decision.violated == ("C4",)
    assert "available memory" in decision.explain()
    assert not decision.feasible


def test_device_model_matches_the_paper_formulas() -> None:
    device = DeviceProfile(
        name="d", role="device", cpu_hz=2e9, ipc_factor=0.5, memory_available_mb=100, uplink_bit_s=1e6,
        latency_s=0.01, active_power_w=2.0, tx_power_w=1.0, battery_mah=1000, battery_voltage_v=4.0,
    )  # fmt: skip
    edge = DeviceProfile(name="e", role="edge", cpu_hz=4e9, ipc_factor=1.0, memory_available_mb=1, uplink_bit_s=1e9)
    profile = TaskProfile(
        key="k", task="t", input_bits=2_000_000, local_s=1.0, local_peak_bytes=5_000_000, encrypt_s=0.1,
        encrypt_peak_bytes=1_000_000, reference_hz=1e9,
    )  # fmt: skip
    local = local_costs(profile, device)
    # 1e9 cycles at 1e9 effective Hz = 1 s; 2 W · 1 s = 2 J = 2 / (4 V · 3.6) mAh.
    assert local.time_s == pytest.approx(1.0)
    assert local.energy_mah == pytest.approx(2 / 14.4)
    assert local.memory_mb == pytest.approx(5.0)
    remote = offload_costs(profile, device, edge)
    # encrypt 0.1 s + 2 Mbit at 1 Mbit/s + 10 ms latency + 1e9 cycles at 4e9 Hz.
    assert remote.time_s == pytest.approx(0.1 + 2.0 + 0.01 + 0.25)
    assert remote.energy_mah == pytest.approx((2.0 * 0.1 + 1.0 * 2.0) / 14.4)
    assert remote.memory_mb == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("local", "offload", "weights"),
    [
        (np.ones((2, 2)), np.ones((2, 2)), (1 / 3, 1 / 3, 1 / 3)),
        (np.ones((0, 3)), np.ones((0, 3)), (1 / 3, 1 / 3, 1 / 3)),
        (-np.ones((2, 3)), np.ones((2, 3)), (1 / 3, 1 / 3, 1 / 3)),
        (np.full((2, 3), np.nan), np.ones((2, 3)), (1 / 3, 1 / 3, 1 / 3)),
        (np.ones((2, 3)), np.ones((2, 3)), (0.0, 0.0, 0.0)),
    ],
)
def test_malformed_problems_are_refused(local: np.ndarray, offload: np.ndarray, weights: tuple[float, ...]) -> None:
    with pytest.raises(ProblemError):
        OffloadProblem(local, offload, 1.0, 1.0, weights)  # type: ignore[arg-type]


def test_decision_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ProblemError):
        evaluate(problem(), [1, 0, 1], "x")


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=12), st.integers(min_value=0, max_value=2**32 - 1))
def test_linear_form_matches_direct_totals(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = random_problem(n, rng, t_max_fraction=float(rng.uniform(0.7, 1.1)), memory_available_mb=30.0)
    x = rng.random(n) < 0.5
    chosen = np.where(x[:, None], p.offload, p.local)
    totals = chosen.sum(axis=0)
    assert np.allclose(p.totals(x), totals)
    assert float(p.objective(x)) == pytest.approx(float(np.mean(totals / p.all_local)))
    expected = []
    if totals[0] > p.all_local[0] + p.tolerance[0]:
        expected.append("C1")
    if totals[1] > p.all_local[1] + p.tolerance[1]:
        expected.append("C2")
    if totals[0] > p.t_max_s + p.tolerance[2]:
        expected.append("C3")
    if chosen[:, 2].max() > p.memory_available_mb + p.tolerance[3]:
        expected.append("C4")
    assert p.violated(x) == tuple(expected)
