"""``python -m fastbp bench`` (fastbp/bench): what it reports and how it refuses bad requests.

Timings are never asserted; the figures' relations are (same losses, ratios against the best row).
"""
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import PROGRAMS, ROOT

import fastbp
from fastbp import __main__ as cli
from fastbp import bench


@pytest.fixture(scope="module")
def small_result():
    workload = bench.make_workload("custom", layers=[4, 8, 3], samples=256, batch=32)
    return bench.run(workloads=(), backends=("cpu", "auto"), peers=("numpy",), epochs=2, custom=[workload],
                     log=lambda *a: None)


def test_run_reports_every_implementation_with_the_same_loss(small_result):
    (workload,) = small_result["workloads"]
    assert workload["name"] == "custom" and workload["layers"] == [4, 8, 3] and workload["samples"] == 256
    rows = {r["implementation"]: r for r in workload["results"]}
    assert set(rows) == {"fastbp-cpu", "fastbp-auto", "numpy"}
    assert rows["fastbp-auto"]["resolved_backend"] == "cpu"  # 3 * 32 * 56 multiply-adds: far below the threshold
    losses = [r["final_loss"] for r in rows.values()]
    np.testing.assert_allclose(losses, losses[0], rtol=1e-5)  # the speed is not bought with other arithmetic
    assert np.isfinite(losses[0]) and losses[0] > 0
    best = max(rows["fastbp-cpu"]["samples_per_second"], rows["fastbp-auto"]["samples_per_second"])
    for r in rows.values():
        assert len(r["epoch_times_s"]) == 2
        assert r["fastbp_speedup"] == pytest.approx(best / r["samples_per_second"])
        assert r["gflops"] == pytest.approx(r["samples_per_second"] * workload["flops_per_sample"] / 1e9)
    assert small_result["machine"]["gemm_gflops"] > 0


def test_table_and_json_carry_the_rows(small_result):
    table = bench.format_table(small_result).splitlines()
    assert sum(line.startswith("custom ") for line in table) == 3
    assert any("fastbp-auto (cpu)" in line for line in table)
    assert json.loads(bench.to_json(small_result))["workloads"][0]["results"][0]["implementation"] == "fastbp-cpu"


def test_rounds_time_every_implementation_again_from_the_initial_weights(small_result):
    workload = bench.make_workload("custom", layers=[4, 8, 3], samples=256, batch=32)
    result = bench.run(workloads=(), backends=("cpu",), peers=("numpy",), epochs=2, rounds=3, custom=[workload],
                       log=lambda *a: None)
    rows = {r["implementation"]: r for r in result["workloads"][0]["results"]}
    once = {r["implementation"]: r for r in small_result["workloads"][0]["results"]}
    for name, row in rows.items():
        assert len(row["epoch_times_s"]) == 6
        # every round starts again from the initial weights: the loss after the last round is one round's
        np.testing.assert_allclose(row["final_loss"], once[name]["final_loss"], rtol=1e-6)
    assert "median of 3 rounds x 2 epochs" in bench.format_table(result).splitlines()[0]


def test_measure_calls_before_round_at_the_start_of_every_round():
    from fastbp.bench.peers import FastbpRunner

    workload = bench.make_workload("custom", layers=[4, 8, 3], samples=64, batch=32)
    init = fastbp.MLP(workload.layers, loss="softmax_cross_entropy", seed=0).get_weights()
    runners = {name: FastbpRunner(workload, *init, backend="cpu") for name in ("first", "second")}
    events = []
    for name, runner in runners.items():
        runner.epoch = lambda name=name, epoch=runner.epoch: (events.append(name), epoch())[1]
    bench.measure(runners, workload, init, epochs=2, rounds=3, before_round=lambda: events.append("round"))
    # each round: the hook, then each runner's warm-up epoch and its two timed epochs
    assert events == ["round"] + ["first"] * 3 + ["second"] * 3 + (["round"] + ["first"] * 3 + ["second"] * 3) * 2


def test_each_workload_is_a_fraction_of_the_gemm_rate_measured_in_its_own_rounds(monkeypatch):
    calls = iter(range(1, 100))
    monkeypatch.setattr(bench, "gemm_gflops", lambda: 100.0 * next(calls))  # 100, 200, ...: each call its own
    workloads = [bench.make_workload("custom", layers=[4, 8, 3], samples=256, batch=32),
                 bench.make_workload("custom", layers=[6, 5, 2], samples=128, batch=16)]
    result = bench.run(workloads=(), backends=("cpu",), peers=("numpy",), epochs=1, rounds=3, custom=workloads,
                       log=lambda *a: None)
    # two calls a round, the first untimed (it takes the previous runner's spinning threads), the second kept
    first, second = result["workloads"]
    assert first["gemm_gflops_rounds"] == [200.0, 400.0, 600.0] and first["gemm_gflops"] == 400.0
    assert second["gemm_gflops_rounds"] == [800.0, 1000.0, 1200.0] and second["gemm_gflops"] == 1000.0
    for w in (first, second):
        for r in w["results"]:
            assert r["gemm_fraction"] == pytest.approx(r["gflops"] / w["gemm_gflops"])
    assert result["machine"]["gemm_gflops"] == 700.0  # the median over both workloads' six rounds
    table = bench.format_table(result).splitlines()
    assert "float32 GEMM 700.0 GFLOP/s (median of 6 rounds)" in table[0]
    (legend,) = [line for line in table if line.startswith("%GEMM:")]
    assert legend.endswith("custom 400.0, custom 1000.0")


def test_flops_count_every_delta_pass_but_the_first_layers():
    workload = bench.make_workload("custom", layers=[4, 8, 3], samples=16, batch=4)
    assert workload.flops_per_sample == 2 * (2 * (4 * 8 + 8 * 3) + 8 * 3)


@pytest.mark.parametrize("kwargs, message", [
    (dict(workloads=("huge",)), "unknown workload 'huge'"),
    (dict(backends=("gpu",)), "unknown fastbp backend 'gpu'"),
    (dict(peers=("none",)), "unknown peer 'none'"),
    (dict(epochs=0), "epochs must be at least 1, got 0"),
    (dict(rounds=0), "rounds must be at least 1, got 0"),
])
def test_run_refuses_unknown_names_before_measuring(kwargs, message):
    def fail(*args):
        raise AssertionError("measured before checking its arguments")

    with pytest.raises(ValueError, match=message):
        bench.run(**{"workloads": (), **kwargs}, log=fail)


def test_large_workload_is_named_but_not_run_by_default():
    workload = bench.make_workload("large")
    assert workload.layers == [784, 1024, 1024, 10] and workload.batch == 4096 and workload.X.shape == (65536, 784)
    assert "large" in bench.WORKLOAD_NAMES and "large" not in bench.DEFAULT_WORKLOADS


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None, reason="numba-cuda is not installed")
def test_cuda_row_trains_like_the_cpu_row_on_the_simulator():
    proc = subprocess.run([sys.executable, str(PROGRAMS / "bench_cuda_on_simulator.py")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["implementation"]: r for r in json.loads(proc.stdout)["workloads"][0]["results"]}
    assert set(rows) == {"fastbp-cpu", "fastbp-cuda"}
    assert rows["fastbp-cuda"]["device"] == "cuda" and rows["fastbp-cpu"]["device"] == "cpu"
    assert rows["fastbp-cuda"]["gemm_fraction"] is None and rows["fastbp-cpu"]["gemm_fraction"] > 0
    assert len(rows["fastbp-cuda"]["epoch_times_s"]) == 4
    # The same final loss: the device copy is reset to the initial weights before every round, and the
    # weights are fetched from the device before the loss is evaluated.
    np.testing.assert_allclose(rows["fastbp-cuda"]["final_loss"], rows["fastbp-cpu"]["final_loss"], rtol=1e-5)


def test_cuda_rows_are_skipped_with_the_reason_where_no_gpu_is_usable():
    torch_cuda = importlib.util.find_spec("torch") is not None and __import__("torch").cuda.is_available()
    from fastbp.kernels import cuda

    if torch_cuda or cuda.device_problem() is None:
        pytest.skip("a CUDA device is usable here")
    messages = []
    workload = bench.make_workload("custom", layers=[4, 8, 3], samples=64, batch=32)
    result = bench.run(workloads=(), backends=("cpu", "cuda"), peers=("torch-cuda",), epochs=1, custom=[workload],
                       log=messages.append)
    assert [r["implementation"] for r in result["workloads"][0]["results"]] == ["fastbp-cpu"]
    skipped = [m for m in messages if "skipped" in m]
    assert len(skipped) == 2
    assert "fastbp-cuda skipped (backend='cuda' cannot run:" in skipped[0]
    assert "torch-cuda skipped (" in skipped[1]


def test_command_line_saves_the_figures_as_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert cli.main(["bench", "--layers", "4-8-3", "--samples", "64", "--batch", "32", "--backends", "cpu",
                     "--peers", "numpy", "--epochs", "1", "--rounds", "2", "--save", str(path)]) == 0
    saved = json.loads(path.read_text())
    assert saved["rounds"] == 2 and saved["epochs"] == 1
    assert [r["implementation"] for r in saved["workloads"][0]["results"]] == ["fastbp-cpu", "numpy"]
    assert "median of 2 rounds x 1 epochs" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["bench", "--peers", "pytorch"],
     "unknown peer 'pytorch': expected one of numpy, sklearn, torch, torch-cuda, jax"),
    (["bench", "--layers", "5"], "--layers needs at least two positive widths"),
    (["bench", "--layers", "5-x-2"], "--layers must look like 20-64-64-5, got '5-x-2'"),
    (["bench", "--layers", "5-3", "--batch", "0"], "--samples and --batch must be positive"),
])
def test_command_line_errors_are_one_clear_line(argv, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert message in str(exc.value)
