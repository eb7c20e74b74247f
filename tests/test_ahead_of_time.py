"""The whole step compiled ahead of time (deepff._aot, ``deepff kernels --build``).

The module is built once for this file, by the real command, into a folder
of its own; the fits run in fresh interpreters, since "numba is not
imported" is a property of the process.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _needs import require_kernels

require_kernels()

SRC = Path(__file__).resolve().parents[1] / "src"

FITS = """
import json, sys
import numpy as np
import deepff
rng = np.random.default_rng(0)
cases = []
for dtype in (np.float32, np.float64):
    for out, loss, opt, extra in (
            ("softmax", "neg_log_likelihood", {"name": "adam", "lr": 0.01}, {}),
            ("softmax", "neg_log_likelihood", {"name": "sgd", "lr": 0.1}, {}),        # W moved inside the products
            ("sigmoid", "binary_cross_entropy", {"name": "sgd", "lr": 0.1, "momentum": 0.9}, {"l2": 1e-3}),
            ("linear", "squared_error", {"name": "adam", "lr": 0.01}, {"weights": True})):
        X = rng.standard_normal((300, 12)).astype(dtype)
        y = rng.integers(0, 3, 300) if out == "softmax" else (X[:, :3] > 0).astype(dtype)
        net = deepff.Network([deepff.Dense(20, "relu"), deepff.Dense(16, "sigmoid"), deepff.Dense(3, out)],
                             loss=loss, n_features=12, seed=1, dtype=dtype)
        w = rng.random(300) + 0.5 if extra.get("weights") else None
        penalty = {"l2": extra["l2"]} if "l2" in extra else None
        net.fit(X, y, epochs=3, batch_size=32, optimizer=opt, sample_weight=w, regularization=penalty)
        cases.append(net.params.theta.astype(np.float64).tolist())
print(json.dumps({"numba": "numba" in sys.modules, "theta": cases,
                  "compiled_kernels": net.trainer_.compiled_kernels}))
"""


def _env(kernel_dir, **extra):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "DEEPFF_KERNEL_DIR": str(kernel_dir)}
    env.pop("DEEPFF_NUMBA", None)
    env.update(extra)
    return env


def _fits(kernel_dir, **extra):
    proc = subprocess.run([sys.executable, "-c", FITS], capture_output=True, text=True, env=_env(kernel_dir, **extra),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1]), proc.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A folder with the step built by ``deepff kernels --build``; the command's output."""
    folder = tmp_path_factory.mktemp("kernels-built-ahead-of-time")
    proc = subprocess.run([sys.executable, "-m", "deepff.cli", "kernels", "--build"], capture_output=True, text=True,
                          env=_env(folder), timeout=600)
    assert proc.returncode == 0, proc.stderr
    return folder, proc.stdout


def test_the_command_builds_one_module_and_says_where(built):
    folder, out = built
    (module,) = [p for p in folder.iterdir() if not p.name.startswith(".")]     # no build leftovers either
    assert list(folder.iterdir()) == [module]
    assert module.name.startswith("_deepff_kernels_")
    lines = out.splitlines()
    assert lines[0].startswith(f"built {module} in ") and lines[0].endswith(" s")
    assert lines[-1] == f"ahead of time  built: {module}"
    assert lines[1].startswith("DEEPFF_NUMBA   1: ")


def test_a_short_fit_takes_the_built_step_without_numba_to_the_bits_of_numbas_step(built, tmp_path):
    folder, _ = built
    aot, stderr = _fits(folder)
    jit, _ = _fits(tmp_path, DEEPFF_NUMBA="always")          # nothing built there: numba's step
    numpy_code, _ = _fits(folder, DEEPFF_NUMBA="0")
    assert "RuntimeWarning" not in stderr
    assert not aot["numba"] and aot["compiled_kernels"] is True
    assert jit["numba"] and not numpy_code["numba"] and numpy_code["compiled_kernels"] is False
    for a, j, n in zip(aot["theta"], jit["theta"], numpy_code["theta"]):
        assert a == j                                          # the same code compiled twice: the same bits
        assert a != n                                          # (the numpy code rounds otherwise: the step ran)
        assert np.allclose(a, n, rtol=1e-3, atol=1e-4)


def test_a_damaged_module_is_named_in_a_warning_and_numbas_step_runs(built, tmp_path):
    folder, _ = built
    (module,) = folder.iterdir()
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / module.name).write_bytes(b"\x7fELF not a module")
    got, stderr = _fits(damaged, DEEPFF_NUMBA="always")
    jit, _ = _fits(tmp_path / "none", DEEPFF_NUMBA="always")
    assert "RuntimeWarning" in stderr and str(damaged / module.name) in stderr
    assert "deepff kernels --build" in stderr
    assert got["numba"] and got["theta"] == jit["theta"]


def test_a_module_built_from_other_source_or_for_another_cpu_is_not_taken(built, tmp_path, monkeypatch):
    from deepff import _aot

    folder, _ = built
    (module,) = folder.iterdir()
    name = module.name.split(".")[0]
    assert _aot.module_name(b"x") == _aot.module_name(b"x") != _aot.module_name(b"y")
    assert _aot.step_module_name() == name                  # this process finds the module built for it
    monkeypatch.setattr(_aot, "_cpu", lambda: "another CPU")
    with open(_aot._kernels.__file__, "rb") as f:
        source = f.read()
    assert _aot.module_name(source) != name
    monkeypatch.undo()
    assert _aot.module_name(source) == name
    monkeypatch.setattr(np, "__version__", "0.0.0")
    assert _aot.module_name(source) != name
    monkeypatch.undo()
    stale = tmp_path / "stale"
    stale.mkdir()
    shutil.copy(module, stale / module.name.replace(name, _aot.module_name(source + b"# edited")))
    monkeypatch.setenv(_aot.ENV, str(stale))
    assert _aot.step(np.float32) is None                    # only its own name is looked for
    monkeypatch.setenv(_aot.ENV, str(folder))
    assert _aot.step(np.float32) is not None and _aot.step(np.int32) is None


def test_the_built_step_refuses_arrays_it_would_misread_and_takes_any_integer_rows(built, monkeypatch):
    """The built step does not check types (a wrong one crashes): FusedStep checks them for it."""
    import deepff
    from deepff import _aot, _fused_step

    folder, _ = built
    monkeypatch.setenv(_aot.ENV, str(folder))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 5)).astype(np.float32)
    y = rng.integers(0, 2, 64)
    net = deepff.Network([deepff.Dense(7, "relu"), deepff.Dense(2, "softmax")], loss="neg_log_likelihood",
                         n_features=5, seed=0, dtype=np.float32)
    net.fit(X, y, epochs=1, batch_size=16, optimizer="adam")
    trainer = net.trainer_
    Y = np.eye(2, dtype=np.float32)[y]
    step = _fused_step.plan(trainer, X, Y, None, 16)
    assert step._unchecked                                 # the built step, not numba's
    theta = net.params.theta.copy()
    state = trainer.optimizer.state_dict()
    J64 = step(np.arange(16, dtype=np.int64))
    after64 = net.params.theta.copy()
    net.params.theta[:] = theta
    trainer.optimizer.load_state_dict(state)
    J32 = step(np.arange(16, dtype=np.int32))              # converted, not misread
    assert J32 == J64 and np.array_equal(net.params.theta, after64)
    raw = bytearray(X.nbytes + 1)                          # X at an odd address: numba's step takes it
    unaligned = np.frombuffer(raw, dtype=np.float32, offset=1).reshape(X.shape)
    unaligned[:] = X
    assert not unaligned.flags.aligned and unaligned.flags.c_contiguous
    numbas = _fused_step.plan(trainer, unaligned, Y, None, 16)
    assert not numbas._unchecked and np.isfinite(numbas(np.arange(16)))
    trainer.optimizer.state["exp_avg"] = trainer.optimizer.state["exp_avg"].astype(np.float64)
    with pytest.raises(TypeError, match=r"optimizer state must be a C-ordered 1-D float32 array, got .*float64"):
        step(np.arange(16))


def test_building_without_numba_or_into_a_file_is_one_line_and_status_2(tmp_path):
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "numba.py").write_text("raise ImportError('numba blocked for this test')\n")
    env = _env(tmp_path / "k")
    env["PYTHONPATH"] = os.pathsep.join([str(blocker), env["PYTHONPATH"]])
    proc = subprocess.run([sys.executable, "-m", "deepff.cli", "kernels", "--build"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and "Traceback" not in proc.stderr
    assert "needs numba with numba.pycc" in proc.stderr and 'pip install "deepff[fast]"' in proc.stderr
    a_file = tmp_path / "a-file"
    a_file.write_text("mine\n")
    proc = subprocess.run([sys.executable, "-m", "deepff.cli", "kernels", "--build"], capture_output=True, text=True,
                          env=_env(a_file), timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"deepff: error: could not build deepff's kernels ahead of time into {a_file}")
    assert a_file.read_text() == "mine\n"                  # nothing of the user's is touched


def test_status_without_a_build_says_how_to_build(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "deepff.cli", "kernels"], capture_output=True, text=True,
                          env=_env(tmp_path, DEEPFF_NUMBA="0"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "DEEPFF_NUMBA   0: off: the numpy code only"
    assert lines[1].startswith("numba          ") and lines[1].split()[1][0].isdigit()
    assert lines[2].startswith(f"ahead of time  not built (deepff kernels --build): {tmp_path}/_deepff_kernels_")
