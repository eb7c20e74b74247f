"""Benchmarks are not tests: this only proves the suite runs end to end on tiny sizes."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_suite_runs_in_quick_mode(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    names = [r["workload"] for r in report["results"]]
    for b in (32, 128, 512):
        assert f"epoch sgd b{b}" in names and f"epoch adam b{b}" in names
    assert "epoch wide sgd b256" in names
    assert any(n.startswith("inference") for n in names)
    assert "import deepff (s)" in names
    epochs = [r for r in report["results"] if r["workload"].startswith("epoch")]
    assert all(r["deepff"] > 0 and r["floor"] > 0 for r in epochs)
    if "sklearn" in epochs[0]:   # the bound on deepff/sklearn is reported where sklearn runs
        assert all("floor/sklearn" in r for r in epochs if "wide" not in r["workload"])
        assert all("floor/sklearn" not in r for r in epochs if "wide" in r["workload"])
    # the compiled step's gain (before and after, interleaved) and the drop-in against Network.fit
    assert all(r["deepff-numpy-step"] > 0 and r["ratios"]["deepff-numpy-step"] > 0 for r in epochs)
    assert all(r["sklearn-drop-in/deepff"] > 0 for r in epochs if "wide" not in r["workload"])
    assert all(r["sklearn-drop-in/Network.fit"] > 0 and r["deepff-fit"] > 0
               for r in epochs if "wide" not in r["workload"])
    rss = [r for r in report["results"] if r["workload"].startswith("peak RSS")][0]
    assert rss["deepff"] > 10  # MiB: a real measurement of a real process
    assert report["machine"]["blas"], "threadpoolctl should report the BLAS in use"
    # the suite's processes find no step built ahead of time (conftest): numba's kernels, or the numpy code
    numba_here = importlib.util.find_spec("numba") is not None and os.environ.get("DEEPFF_NUMBA") != "0"
    kernels = report["machine"]["kernels"]
    assert (kernels.startswith("numba ") and "'s kernels" in kernels) if numba_here else \
        kernels.startswith("the numpy code")
    assert f"deepff's kernels: {report['machine']['kernels']}" in proc.stdout
    # the peak-RSS process took the timed runs' code (it reports its own), so no warning
    assert report["machine"]["rss_kernels"] == kernels and "warning: the peak-RSS process" not in proc.stdout
    assert "| workload |" in proc.stdout  # the table is printed
    assert all(r["floor spread"] >= 1 for r in epochs) and "the machine's swings: " in proc.stdout
    if hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) >= 2:   # the cores probed each round
        assert all(len(r["cross-core reads"]) == 2 and r["split rounds"] in (0, 1) for r in epochs)
        assert "the cores: split across last-level caches around " in proc.stdout


def test_a_peak_rss_process_on_other_kernels_is_reported(monkeypatch):
    """A run whose kernels' source was edited midway measures memory on other code: the report says so."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench

    built = "the whole step built ahead of time (/k/_deepff_kernels_0.so; numba is not loaded for it)"
    numba = "numba 0.68.1's kernels (compiled, or loaded from numba's cache, in each process)"
    assert bench.kernels_warning(built, built) is None
    assert bench.kernels_warning(built, None) is None            # --no-rss: nothing measured
    line = bench.kernels_warning(built, numba)
    assert line.startswith("warning: the peak-RSS process took numba 0.68.1's kernels")
    assert "does not describe them" in line and "\n" not in line


def test_the_network_fit_runner_trains_one_epoch_a_call_at_its_batch_size(monkeypatch):
    """Each call is one more epoch of the same run, at the workload's batch (not fit's default 32)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench

    X, y, _, _ = bench.load_data(quick=True)          # 512 rows
    runner = bench.DeepffFitRunner([784, 16, 10], "adam", 1e-3, 128, X, y)
    runner.epoch()
    runner.epoch()
    trainer = runner.net.trainer_
    assert trainer.batch_size == 128 and trainer.epoch == 2
    assert trainer.optimizer.t == 2 * 512 // 128       # Adam's step count: 4 steps an epoch, state kept


def test_step_profile_accounts_for_the_whole_epoch(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import numpy as np
    import profile_step

    import deepff.layers

    rows = profile_step.main(["--quick", "--batch", "64"])
    assert deepff.layers.np is np          # the timed numpy is taken back out
    (row,) = rows
    # every part was timed (the matrix products inside the sweeps, so the sweeps
    # without them stay positive), and the loop left over is real, not negative
    for part in ("matmul", "sweeps without matmul", "optimizer step", "rest of the loop"):
        assert 0 < row[part] < row["epoch"], part


def test_step_profile_times_the_compiled_step(monkeypatch):
    from _needs import require_kernels

    require_kernels()
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import profile_step

    from deepff import _fused_step

    call = _fused_step.FusedStep.steps
    (row,) = profile_step.main(["--quick", "--batch", "64", "--step", "compiled"])
    assert _fused_step.FusedStep.steps is call and _fused_step.ENABLED   # taken back out
    assert 0 < row["gemm floor"] and 0 < row["rest of the loop"] < row["epoch"]
    assert row["step outside the products"] + row["gemm floor"] < row["epoch"]


def test_ratios_pair_the_runs_of_each_round(monkeypatch):
    """A ratio is the median of within-round ratios, not a ratio of medians: rounds in a slow phase pair up."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench

    clock = [0.0]
    seconds = {"deepff": [9, 1, 2, 3, 4], "sklearn": [9, 4, 1, 3, 2], "floor": [9, 1, 2, 3, 4]}  # round 0: warm-up

    def runner(label):
        class Fake:
            name = label

            def __init__(self, *args):
                self.round = 0

            def epoch(self):
                clock[0] += seconds[label][self.round]
                self.round += 1
        return Fake

    probes = iter([1.1, 1.0, 1.9, 1.1, 1.2])     # before each of the 4 rounds and after the last
    monkeypatch.setattr(bench, "cross_core_read", lambda: next(probes))
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(bench, "RUNNERS", [runner("deepff"), runner("sklearn")])
    monkeypatch.setattr(bench, "GemmFloor", runner("floor"))
    r = bench.run_training("w", [4, 2], "sgd", 0.1, 8, (None, None), 4, ["deepff", "sklearn"])
    assert r["rounds"]["sklearn"] == [4, 1, 3, 2] and r["sklearn"] == 2.5 and r["floor"] == 2.5
    # within rounds floor/sklearn is 1/4, 2/1, 3/3, 4/2: median 1.5 (the ratio of medians would be 1.0)
    assert r["floor/sklearn"] == 1.5 and r["ratios"]["sklearn"] == 1.5
    assert r["ratios"]["floor"] == 1.0
    assert r["floor spread"] == 4.0     # the floor's rounds took 1 to 4 s: the machine's swing
    # the probe after round 2 (before round 3) found the cores apart: rounds 2 and 3 count as split
    assert r["cross-core reads"] == [1.1, 1.0, 1.9, 1.1, 1.2] and r["split rounds"] == 2


def test_a_run_on_a_machine_that_was_not_quiet_is_reported(monkeypatch):
    """The gemm floor's spread and the cores' placement say whether the machine was quiet; the report names the rest."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench

    assert bench.quiet_report([{"workload": "import deepff (s)"}]) == []
    five = {"floor": [1.0] * 5}
    rows = [{"workload": "epoch sgd b32", "floor spread": 1.42, "split rounds": 0, "rounds": five},
            {"workload": "epoch adam b32", "floor spread": 1.05, "split rounds": 2, "rounds": five},
            {"workload": "epoch sgd b128", "floor spread": 1.05, "split rounds": 0, "rounds": five},
            {"workload": "epoch wide sgd b256", "floor spread": 1.27, "split rounds": 0, "rounds": five},
            {"workload": "inference 10000 images"}]
    first, cores, warning = bench.quiet_report(rows)
    assert first == ("the machine's swings: the gemm floor's slowest round was 1.42 x its fastest at most "
                     "(epoch sgd b32)")
    assert cores == "the cores: split across last-level caches around 2 of 20 rounds (benchmarks/cores.py)"
    assert warning.startswith("warning: the machine was not quiet")
    assert "epoch sgd b32 (spread 1.42)" in warning and "epoch wide sgd b256 (spread 1.27)" in warning
    assert "epoch adam b32 (2 of 5 rounds split)" in warning and "b128" not in warning
    quiet = [dict(r, **{"floor spread": 1.2, "split rounds": 0}) for r in rows[:4]]
    assert [line[:10] for line in bench.quiet_report(quiet)] == ["the machin", "the cores:"]
    unprobed = [{k: v for k, v in r.items() if k != "split rounds"} for r in quiet]   # one core, or not Linux
    assert [line[:10] for line in bench.quiet_report(unprobed)] == ["the machin"]


def test_a_round_can_wait_for_the_cores_to_share_a_cache(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench

    slept = []
    monkeypatch.setattr(bench.time, "sleep", slept.append)
    reads = iter([1.9, 1.7, 1.1, 1.8])
    monkeypatch.setattr(bench, "cross_core_read", lambda: next(reads))
    assert bench.probe_cores(5) == (1.1, 2.0) and slept == [1.0, 1.0]     # split, split, shared: two waits
    assert bench.probe_cores(0) == (1.8, 0.0)                             # no wait: the one probe, split
    reads = iter([2.0] * 10)
    assert bench.probe_cores(3) == (2.0, 3.0)                             # gives up after the budget
    monkeypatch.setattr(bench, "cross_core_read", lambda: None)
    assert bench.probe_cores(3) == (None, 0.0)                            # nothing to probe: no wait
    row = {"workload": "epoch adam b32", "floor spread": 1.1, "split rounds": 1, "rounds": {"floor": [1.0] * 5},
           "waited for shared cores (s)": 7.0}
    assert bench.quiet_report([row])[1].endswith("around 1 of 5 rounds (benchmarks/cores.py); the rounds waited "
                                                 "7 s in all for them to share one")


def test_the_cores_probe_compares_a_read_of_the_other_cores_writes_with_a_read_of_its_own(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import cores

    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two cores and Linux thread pinning")
    before = os.sched_getaffinity(0)
    ratio = cores.cross_core_read(n_bytes=1 << 20, reps=3)
    assert 0.3 < ratio < 20 and os.sched_getaffinity(0) == before      # a real ratio; the pinning undone
    try:
        os.sched_setaffinity(0, {min(before)})
        assert cores.cross_core_read() is None                       # one core: nothing to compare
    finally:
        os.sched_setaffinity(0, before)
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cores.py"), "--seconds", "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    line, total = proc.stdout.splitlines()
    assert line.split()[2:] in (["sharing", "a", "last-level", "cache"], ["split", "across", "last-level", "caches"])
    assert total in ("split in 0 of 1 probes", "split in 1 of 1 probes")


def test_small_tables_benchmark_runs_and_compares_both_libraries():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "small_tables.py"), "--seeds", "1", "--tables", "iris,diabetes"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("|")[1:-1] for line in proc.stdout.splitlines() if line.startswith("| iris")
            or line.startswith("| diabetes")]
    assert [r[0].strip() for r in rows] == ["iris", "diabetes"]
    for r in rows:
        deepff_score, sklearn_score, diff = float(r[3]), float(r[6]), float(r[9])
        assert diff == pytest.approx(deepff_score - sklearn_score, abs=0.11)   # each shown to 0.1
    assert float(rows[0][3]) > 80          # iris: a real fit, not a constant guess (33%)


def test_augment_benchmark_runs_in_quick_mode(tmp_path):
    """bench_augment.py measures both transforms (no figure is asserted) and draws the docs' picture."""
    out, png = tmp_path / "aug.json", tmp_path / "augment.png"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_augment.py"), "--quick", "--json", str(out),
                           "--picture", str(png)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())["results"]
    assert [r["transform"] for r in results] == ["affine", "elastic"]
    for r in results:
        assert r["images_per_s"] > 0 and r["epoch_plain_s"] > 0 and r["epoch_augmented_s"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert "| affine |" in proc.stdout and "| elastic |" in proc.stdout


def test_mnist_table_runs_a_row_end_to_end(tmp_path):
    """One row of benchmarks/mnist_table.py for one epoch on the real MNIST: the table and its command."""
    from _needs import require

    mnist = ROOT.parent / "shared" / "datasets" / "mnist"
    require(mnist.is_dir(), area="MNIST", reason=f"no MNIST copy in {mnist}")
    table = tmp_path / "table.md"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "mnist_table.py"), "--rows", "A", "--epochs", "1",
                           "--data-dir", str(mnist), "--workdir", str(tmp_path / "runs"), "--output", str(table)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    text = table.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| A |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4] == "1.6%" and cells[6] == "1"                       # the paper's error, one epoch
    assert 1.0 < float(cells[5].rstrip("%")) < 10.0                     # one epoch of 784-800-10: a few % error
    assert "deepff train --config examples/mnist_800.yaml --dataset mnist" in cells[9]
    assert "SMOKE RUN" in text
    assert (tmp_path / "runs" / "rowA.npz").is_file()


def test_sklearn_parity_script_runs_and_reports_every_setting(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import sklearn_parity

    worst = sklearn_parity.main(["--quick"])
    assert set(worst) == {"adam", "sgd/constant", "sgd/invscaling", "sgd/adaptive", "lbfgs"}
    assert all(0 <= v < 1e-9 for v in worst.values())      # the same algorithm: rounding only
    assert "worst relative difference per setting" in capsys.readouterr().out


def test_thread_benchmark_measures_each_product_the_pair_and_adam(monkeypatch):
    from _needs import require_module

    require_module("threadpoolctl", area="the benchmarks' thread limits")
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_threads

    result = bench_threads.main(["--quick"])
    # every product of every layer, at both thread counts, with its speedup worked out from the two
    assert [(r["layer"], r["product"]) for r in result["products"]] == [
        (layer, p) for layer in ("20-16", "16-3") for p in ("h W", "h^T g", "g W^T")]
    for row in result["products"] + result["concurrent"]:
        times = [v for k, v in row.items() if k.endswith(" us")]
        assert len(times) == 2 and all(0 < t < 1e5 for t in times)
    for row in result["products"]:
        assert row["speedup"] == pytest.approx(row["1 thread us"] / row["2 threads us"])
    (pair,) = result["concurrent"]
    assert pair["shape"] == "(4, 20) x (20, 16)"
    assert pair["pair / alone"] == pytest.approx(pair["pair us"] / pair["alone us"])
    from deepff import _kernels

    if _kernels.adam_kernel() is None:
        assert result["adam"] is None
    else:
        assert result["adam"]["parameters"] == 20 * 16 + 16 + 16 * 3 + 3
        assert result["adam"]["adam us"] > 0 and result["adam"]["memory streams us"] > 0
    # two fits one after the other and in two threads, for each optimizer and batch at 1 and 2 BLAS threads
    assert [(r["fit"], r["BLAS threads"]) for r in result["fits"]] == [
        (fit, n) for fit in ("sgd b128", "adam b32", "adam b128") for n in (1, 2)]
    for row in result["fits"]:
        assert row["one after the other ms"] > 0 and row["two threads ms"] > 0
        assert len(row["ratios"]) == 3 and row["two threads / one after the other"] == row["ratios"][1] > 0
        # the fits ran the compiled step exactly where the benchmark says the kernels are compiled
        assert row["compiled step"] is (not result["kernels"].startswith("the numpy code"))


def test_two_core_experiment_takes_the_engines_steps(monkeypatch):
    """The experiment's split step (benchmarks/two_cores.py) lands where the engine's step does, to rounding."""
    from _needs import require_kernels, require_module

    require_kernels()
    require_module("threadpoolctl", area="the benchmarks' thread limits")
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import two_cores

    result = two_cores.main(["--quick", "--check"])
    assert sorted(result) == ["adam", "adam, a call a step", "sgd", "sgd, a call a step"]
    for label, (diff, moved, loss, sleeps) in result.items():
        assert moved > 1e-3, label                      # the three steps did move the weights
        assert diff <= 1e-6, (label, diff)              # and both threads' halves of every step were taken,
        assert loss <= 1e-9, (label, loss)              # with the engine's loss (odd widths, a short last batch)
        # a call a step: the pauses between calls sent the follower to sleep, and each call woke it
        assert (sleeps >= 3) if label.endswith("a call a step") else sleeps == 0, (label, sleeps)


def test_gather_benchmark_times_the_engines_gather_and_a_plain_copy(monkeypatch):
    """benchmarks/gather.py runs the engine's compiled gather itself, and it copies the batch's rows."""
    from _needs import require_kernels

    require_kernels()
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import inspect

    import gather

    from deepff import _kernel_source

    rows = gather.main(["--quick"])
    assert [r["batch"] for r in rows] == [32, 128]
    for r in rows:
        assert r["rows right"], r
        times = [r[k] for k in ("engine us", "plain copy us", "from cache us", "plain copy from cache us", "shared us")]
        assert all(0 < t < 1e5 for t in times), r
    # the loop it times is the engine's: it calls the very kernel the step calls
    engine_loop = gather.loops()["engine"].py_func
    assert inspect.getclosurevars(engine_loop).nonlocals["gather"] is _kernel_source._nb_gather_rows
    shared_loop = gather.loops()["shared"].py_func
    assert inspect.getclosurevars(shared_loop).nonlocals["gather_shared"] is _kernel_source._nb_gather


def test_pass_after_products_benchmark_times_every_column_and_sorts_rounds_by_placement(monkeypatch):
    """benchmarks/pass_after_products.py times every column and files a round by its two probes only when they agree."""
    from _needs import require_kernels

    require_kernels()
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import pass_after_products as pap

    summary = pap.main(["--quick"])
    (row,) = summary["rounds"]
    for name in pap.COLUMNS:
        assert 0 < row[name] < 1e6, (name, row)
    kind = pap._kind(row["probes"])
    assert set(summary) == {"rounds"} | ({kind} if kind else set())
    # a round counts as split or shared only when both of its probes agree (cores.SPLIT_AT = 1.4)
    assert pap._kind((1.05, 1.2)) == "shared"
    assert pap._kind((1.6, 2.1)) == "split"
    assert pap._kind((1.1, 1.7)) is None and pap._kind((None, 1.1)) is None


def test_shared_pass_benchmark_times_the_engines_update_on_one_thread_and_shared(monkeypatch):
    """benchmarks/shared_pass.py calls the step's own update, and both ways leave the same bits."""
    from _needs import require_kernels

    require_kernels()
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import shared_pass

    from deepff import _kernel_source

    rows = shared_pass.main(["--quick"])
    assert [(r["optimizer"], r["entries"]) for r in rows] == [("adam", 4096), ("adam", 40000), ("sgd", 4096),
                                                               ("sgd", 40000)]
    for r in rows:
        assert r["same bits"], r
        assert 0 < r["one thread us"] < 1e5 and 0 < r["shared us"] < 1e5, r
    assert shared_pass.update() is _kernel_source._nb_update
