"""When a process loads the compiled kernels: not for fits too short to win back numba's import.

Each case runs in a fresh interpreter, since "numba is not imported yet" is
a property of the process.
"""

import os
import subprocess
import sys
import warnings

import pytest

from _needs import require_kernels
from _procs import SMALL_RUN, SRC, resume_run, run_json

require_kernels()

SCRIPT = """
import json, sys
import numpy as np
import deepff
from deepff import _fused_step
_fused_step.LOAD_AFTER_S = {load_after}
rng = np.random.default_rng(0)
X = rng.standard_normal((400, 10)).astype(np.float32)
y = (X[:, 0] * X[:, 1] > 0).astype(int)
report = []
for fit in range({fits}):
    net = deepff.Network([deepff.Dense(24, "relu"), deepff.Dense(2, "softmax")], loss="neg_log_likelihood",
                         n_features=10, seed=fit, dtype=np.float32)
    net.fit(X, y, epochs=5, batch_size=32, optimizer={{"name": "adam", "lr": 0.01}})
    guess = _fused_step.numpy_seconds(net, 400, 32, 5)
    report.append({{"numba": "numba" in sys.modules, "theta": net.params.theta.tolist(), "guess": guess}})
print(json.dumps(report))
"""


def _run(load_after, fits=1, **env):
    return run_json(SCRIPT.format(load_after=load_after, fits=fits), **env)


def test_a_short_first_fit_runs_the_numpy_code_without_importing_numba():
    (deferred,) = _run(load_after=1.0)
    (numpy_only,) = _run(load_after=1.0, DEEPFF_NUMBA="0")
    assert deferred["guess"] < 0.05                    # the case is short by the guess too
    assert not deferred["numba"]
    assert deferred["theta"] == numpy_only["theta"]     # the very same numpy arithmetic, to the bit


def test_a_fit_long_enough_loads_the_kernels_and_takes_the_compiled_step():
    (loaded,) = _run(load_after=0.0)
    (numpy_only,) = _run(load_after=0.0, DEEPFF_NUMBA="0")
    assert loaded["numba"]
    assert loaded["theta"] != numpy_only["theta"]       # the compiled step rounds differently: it ran
    assert loaded["theta"] == pytest.approx(numpy_only["theta"], rel=1e-3, abs=1e-4)


def test_deepff_numba_always_loads_the_kernels_for_a_short_fit_too():
    (always,) = _run(load_after=1.0, DEEPFF_NUMBA="always")
    (deferred,) = _run(load_after=1.0)
    assert always["numba"] and not deferred["numba"]
    assert always["theta"] != deferred["theta"]          # the compiled step ran (it rounds differently)
    assert always["theta"] == pytest.approx(deferred["theta"], rel=1e-3, abs=1e-4)


def test_an_unknown_deepff_numba_value_is_named_with_the_valid_ones(monkeypatch):
    from deepff import _kernels

    monkeypatch.setenv("DEEPFF_NUMBA", "yes")
    _kernels.refresh()
    try:
        with pytest.warns(RuntimeWarning, match=r"DEEPFF_NUMBA='yes' is not a setting deepff knows; valid: "
                                                 r"0 \(off.*1 \(on for runs long enough.*always \(on for every"):
            assert _kernels.setting() == "1"
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert _kernels.setting() == "1"               # read once: no second warning
    finally:
        monkeypatch.delenv("DEEPFF_NUMBA")
        _kernels.refresh()


def test_short_fits_add_up_until_loading_pays():
    """Many short fits in one process (partial_fit in a loop, a grid search worker) load the kernels in the end."""
    (first,) = _run(load_after=1.0)
    guess = first["guess"]
    reports = _run(load_after=2.5 * guess, fits=4)
    assert [r["numba"] for r in reports] == [False, False, True, True]


def test_a_numpy_run_resumed_where_numba_is_loaded_stays_on_the_numpy_code(tmp_path):
    """A run short enough for the numpy code, resumed in a process that has loaded the kernels: the same bits."""
    whole = resume_run("whole", tmp_path / "unused.npz")
    resume_run("first", tmp_path / "ckpt.npz")
    resumed = resume_run("rest", tmp_path / "ckpt.npz", preload=True)
    assert not whole["numba"] and whole["compiled_kernels"] is False
    assert resumed["numba"] and resumed["compiled_kernels"] is False     # loaded, and not taken
    assert resumed["theta"] == whole["theta"]


def test_a_compiled_run_resumed_in_a_fresh_process_takes_the_kernels_again(tmp_path):
    """A run that took the kernels (its process had loaded them), resumed in a new process: the same bits."""
    whole = resume_run("whole", tmp_path / "unused.npz", preload=True)
    resume_run("first", tmp_path / "ckpt.npz", preload=True)
    resumed = resume_run("rest", tmp_path / "ckpt.npz")
    assert whole["compiled_kernels"] is True
    assert resumed["numba"] and resumed["compiled_kernels"] is True      # loaded for this short rest
    assert resumed["theta"] == whole["theta"]
    numpy_run = resume_run("whole", tmp_path / "unused.npz")
    assert numpy_run["theta"] != whole["theta"]          # (the two codes do differ in the last bits)


def test_a_warm_start_continues_on_the_code_its_run_took(tmp_path):
    whole = resume_run("whole", tmp_path / "unused.npz")
    warm = resume_run("warm", tmp_path / "unused.npz")
    assert warm["numba"] and warm["compiled_kernels"] is False
    assert warm["theta"] == whole["theta"]


WARM_LOOP = """
import json, sys
import numpy as np
import deepff
from deepff import _fused_step
""" + SMALL_RUN + """
# the threshold lies between 2 and 3 epochs of this run, and the process's deferred fits do not reach it
guess = _fused_step.numpy_seconds
_fused_step.LOAD_AFTER_S = 0.5 * (guess(net, 400, 32, 2) + guess(net, 400, 32, 3))
choices = []
for k in range(4):
    net.fit(X, y, epochs=1, batch_size=32, warm_start=k > 0)
    choices.append([net.trainer_.compiled_kernels, "numba" in sys.modules])
print(json.dumps(choices))
"""


def test_a_run_of_one_epoch_fits_takes_the_kernels_once_it_has_grown_long_enough():
    """fit(epochs=1, warm_start=True) in a loop: the run switches when its own epochs reach the threshold."""
    assert run_json(WARM_LOOP) == [[False, False], [False, False], [True, True], [True, True]]


def test_with_deepff_numba_0_a_run_records_the_numpy_code(monkeypatch):
    """Even where numba is imported and the run is long: its checkpoint must not claim the kernels."""
    import numpy as np

    import deepff
    from deepff import _kernels

    monkeypatch.setenv("DEEPFF_NUMBA", "0")
    _kernels.refresh()
    try:
        net = deepff.Network([deepff.Dense(4, "relu"), deepff.Dense(2, "softmax")], loss="neg_log_likelihood",
                             n_features=3, seed=0)
        net.fit(np.eye(3), [0, 1, 1], epochs=2)
        assert "numba" in sys.modules and net.trainer_.compiled_kernels is False
    finally:
        monkeypatch.delenv("DEEPFF_NUMBA")
        _kernels.refresh()


def test_where_numba_cannot_be_imported_a_long_run_records_the_numpy_code(tmp_path):
    """Its checkpoint must not claim kernels it did not run (a resume elsewhere would then take them)."""
    (tmp_path / "shim" / "numba").mkdir(parents=True)
    (tmp_path / "shim" / "numba" / "__init__.py").write_text("raise ImportError('numba made unimportable')\n")
    code = ("import warnings, numpy as np, deepff\n"
            "from deepff import _fused_step\n"
            "_fused_step.LOAD_AFTER_S = 0.0\n"          # long enough to load the kernels, were there any
            "net = deepff.Network([deepff.Dense(4, 'relu'), deepff.Dense(2, 'softmax')],"
            " loss='neg_log_likelihood', n_features=3, seed=0)\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    net.fit(np.eye(3), [0, 1, 1], epochs=2)\n"
            "print(net.trainer_.compiled_kernels, any('cannot be imported' in str(w.message) for w in caught))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "shim"), str(SRC)])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "True"]
