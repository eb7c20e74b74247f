"""Fresh interpreters for the tests whose subject is a property of a process (which kernels it has loaded).

``run_json(code, **changes)`` runs ``python -c code`` against this checkout's
``src`` and returns the JSON its last line prints; ``changes`` set
environment variables (None removes one), and ``kernel_env`` makes the
environment of a process that looks for the step built ahead of time in a
given folder. ``resume_run`` runs one part of
the checkpoint-and-resume script both tests/test_kernel_loading.py and
tests/test_ahead_of_time.py use.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def env(**changes):
    """``os.environ`` with this checkout's ``src`` first on ``PYTHONPATH`` and ``changes`` (None: unset)."""
    out = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    for name, value in changes.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = str(value)
    return out


def kernel_env(kernel_dir, **changes):
    """:func:`env` looking for kernels built ahead of time in ``kernel_dir``, ``DEEPFF_NUMBA`` unset unless given."""
    return env(**{"DEEPFF_NUMBA": None, **changes, "DEEPFF_KERNEL_DIR": kernel_dir})


def run_json(code, environ=None, timeout=300, **changes):
    """Run ``python -c code`` in ``environ`` (default :func:`env` with ``changes``); it must succeed.

    Returns the JSON its last line prints; raises ``subprocess.TimeoutExpired``
    after ``timeout`` seconds.
    """
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env(**changes) if environ is None else environ, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


SMALL_RUN = """
rng = np.random.default_rng(0)
X = rng.standard_normal((400, 10)).astype(np.float32)
y = (X[:, 0] * X[:, 1] > 0).astype(int)
net = deepff.Network([deepff.Dense(24, "relu"), deepff.Dense(2, "softmax")], loss="neg_log_likelihood",
                     n_features=10, seed=0, dtype=np.float32)
"""
"""The data and network of the scripts run here (after ``import numpy as np`` and ``import deepff``): a small
float32 run, long enough to cross the kernels' threshold in a few epochs."""

RESUME = """
import json, sys
if {preload}:
    import numba            # a process that has loaded the kernels already (an earlier, longer run)
import numpy as np
import deepff
""" + SMALL_RUN + """
settings = dict(batch_size=32, optimizer={{"name": "adam", "lr": 0.01}})


class CrashAfterEpoch6(deepff.callbacks.Callback):   # the checkpoint a run killed after epoch 6 leaves
    def on_epoch_end(self, trainer, record):
        if trainer.epoch == 6:
            deepff.save_checkpoint(trainer, {path!r})
            trainer.stop_requested = True


if {part!r} == "whole":
    net.fit(X, y, epochs=10, **settings)
elif {part!r} == "first":
    net.fit(X, y, epochs=10, callbacks=[CrashAfterEpoch6()], **settings)
elif {part!r} == "warm":            # 6 epochs, then numba is loaded, then 4 more with warm_start
    net.fit(X, y, epochs=6, **settings)
    import numba
    net.fit(X, y, epochs=4, warm_start=True)
else:
    net, state, _ = deepff.load_checkpoint({path!r})
    net.fit(X, y, epochs=10, resume_state=state, **settings)
print(json.dumps({{"numba": "numba" in sys.modules, "theta": net.params.theta.tolist(),
                  "compiled_kernels": net.trainer_.compiled_kernels}}))
"""


def resume_run(part, path, preload=False, environ=None):
    """Run the ``part`` ("whole", "first", "warm" or "rest") of :data:`RESUME` with the checkpoint at ``path``."""
    return run_json(RESUME.format(part=part, path=str(path), preload=preload), environ)
