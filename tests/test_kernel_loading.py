"""When a process loads the compiled kernels: not for fits too short to win back numba's import.

Each case runs in a fresh interpreter, since "numba is not imported yet" is
a property of the process.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _needs import require_kernels

require_kernels()

SRC = Path(__file__).resolve().parents[1] / "src"

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
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]), **env}
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(load_after=load_after, fits=fits)],
                          capture_output=True, text=True, env=full_env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


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


def test_short_fits_add_up_until_loading_pays():
    """Many short fits in one process (partial_fit in a loop, a grid search worker) load the kernels in the end."""
    (first,) = _run(load_after=1.0)
    guess = first["guess"]
    reports = _run(load_after=2.5 * guess, fits=4)
    assert [r["numba"] for r in reports] == [False, False, True, True]
