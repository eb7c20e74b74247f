"""The whole step compiled ahead of time (deepff._aot, ``deepff kernels --build``).

The module is built once for this file, by the real command, into a folder
of its own; the fits run in fresh interpreters, since "numba is not
imported" is a property of the process.
"""

import json
import platform
import shutil
import subprocess
import sys

import numpy as np
import pytest

from _needs import KERNELS, require, require_kernels, require_module
from _procs import SMALL_RUN, kernel_env, resume_run, run_json

require_kernels()
require_module("setuptools", area=KERNELS)
require(shutil.which("cc") or shutil.which("gcc"), area=KERNELS,
        reason="no C compiler (cc) to build the step ahead of time")
pytestmark = pytest.mark.slow        # one build (about a minute from a cold numba cache), fresh processes

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


def _fits(kernel_dir, **extra):
    proc = subprocess.run([sys.executable, "-c", FITS], capture_output=True, text=True,
                          env=kernel_env(kernel_dir, **extra), timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1]), proc.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A folder with the step built by ``deepff kernels --build``; the command's output."""
    folder = tmp_path_factory.mktemp("kernels-built-ahead-of-time")
    proc = subprocess.run([sys.executable, "-m", "deepff.cli", "kernels", "--build"], capture_output=True, text=True,
                          env=kernel_env(folder), timeout=600)
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


def test_a_module_built_from_other_source_or_for_another_cpu_or_numba_is_not_taken(built, tmp_path, monkeypatch):
    from deepff import _aot

    folder, _ = built
    (module,) = folder.iterdir()
    name = module.name.split(".")[0]
    assert _aot.module_name(b"x") == _aot.module_name(b"x") != _aot.module_name(b"y")
    assert _aot.step_module_name() == name                  # this process finds the module built for it
    source = b""
    for file in (_aot._kernel_source.__file__, _aot._kernels.__file__, _aot.__file__):   # what is compiled, and how
        with open(file, "rb") as f:
            source += f.read()
    assert _aot.module_name(source) == name
    def upgraded(which):
        return lambda package: "9.9" if package == which else versions(package)

    versions = _aot._version
    for target, attr, value in ((_aot, "_cpu", lambda: "another CPU"), (np, "__version__", "0.0.0"),
                                (_aot, "_version", upgraded("numba")), (_aot, "_version", upgraded("llvmlite"))):
        monkeypatch.setattr(target, attr, value)
        assert _aot.module_name(source) != name, attr
        monkeypatch.undo()
    monkeypatch.setattr(_aot, "_cpu", lambda: None)          # no /proc/cpuinfo: no module at all
    assert _aot.module_name(source) is None
    monkeypatch.undo()
    stale = tmp_path / "stale"
    stale.mkdir()
    shutil.copy(module, stale / module.name.replace(name, _aot.module_name(source + b"# edited")))
    monkeypatch.setenv(_aot.ENV, str(stale))
    assert _aot.step(np.float32) is None                    # only its own name is looked for
    monkeypatch.setenv(_aot.ENV, str(folder))
    assert _aot.step(np.float32) is not None and _aot.step(np.int32) is None


def test_a_module_that_fails_its_check_is_refused(built, tmp_path, monkeypatch):
    """The build runs the new module in a fresh process against numba's step before installing it."""
    from deepff import _aot, _kernels
    from deepff.errors import KernelBuildError

    folder, _ = built
    (module,) = folder.iterdir()
    _aot._same_as_numbas(module)                            # the module the fixture built passes
    with monkeypatch.context() as m:                        # and passes with the kernels switched off,
        m.setenv("DEEPFF_NUMBA", "0")                       # as `DEEPFF_NUMBA=0 deepff kernels --build` checks it
        _kernels.refresh()
        try:
            _aot._same_as_numbas(module)
        finally:
            m.undo()
            _kernels.refresh()
    damaged = tmp_path / module.name
    damaged.write_bytes(b"\x7fELF not a module")
    with pytest.raises(KernelBuildError, match=r"failed its check in a new process \(ImportError: "):
        _aot._same_as_numbas(damaged)
    monkeypatch.setattr(_aot, "_check_digest", lambda kernel_of: "0" * 64)     # numba's side now differs
    with pytest.raises(KernelBuildError, match=r"gives other results than numba's; it is not installed"):
        _aot._same_as_numbas(module)


def test_a_module_others_may_write_is_not_loaded(built, tmp_path, monkeypatch):
    from deepff import _aot

    folder, _ = built
    (module,) = folder.iterdir()
    shared = tmp_path / "shared"
    shared.mkdir()
    copy = shared / module.name
    shutil.copy(module, copy)
    copy.chmod(0o666)
    monkeypatch.setenv(_aot.ENV, str(shared))
    with pytest.warns(RuntimeWarning, match=rf"{copy} cannot be loaded \(PermissionError: not loaded: others may "
                                            r"write to it\)"):
        assert _aot.step(np.float32) is None
    assert oct(module.stat().st_mode & 0o777) == "0o755"   # the build's own file is not


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
    J64 = step.steps(np.arange(16, dtype=np.int64), 0, 1)[0, 0]   # one step on rows 0-15
    after64 = net.params.theta.copy()
    net.params.theta[:] = theta
    trainer.optimizer.load_state_dict(state)
    J32 = step.steps(np.arange(16, dtype=np.int32), 0, 1)[0, 0]   # converted, not misread
    assert J32 == J64 and np.array_equal(net.params.theta, after64)
    raw = bytearray(X.nbytes + 1)                          # X at an odd address: numba's step takes it
    unaligned = np.frombuffer(raw, dtype=np.float32, offset=1).reshape(X.shape)
    unaligned[:] = X
    assert not unaligned.flags.aligned and unaligned.flags.c_contiguous
    numbas = _fused_step.plan(trainer, unaligned, Y, None, 16)
    assert not numbas._unchecked and np.isfinite(numbas.steps(np.arange(16), 0, 1)[0, 0])
    trainer.optimizer.state["exp_avg"] = trainer.optimizer.state["exp_avg"].astype(np.float64)
    t = trainer.optimizer.t
    with pytest.raises(TypeError, match=r"optimizer state must be a C-ordered 1-D float32 array, got .*float64"):
        step.steps(np.arange(16), 0, 1)
    assert trainer.optimizer.t == t                        # the refused step is not counted
    trainer.optimizer.load_state_dict(state)
    fresh = _fused_step.plan(trainer, X, Y, None, 16)
    net.params.theta.flags.writeable = False
    try:
        with pytest.raises(TypeError, match=r"parameters must be writeable"):
            fresh.steps(np.arange(16), 0, 1)
    finally:
        net.params.theta.flags.writeable = True


def test_building_into_a_file_is_one_line_and_status_2_and_the_file_stays(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("mine\n")
    proc = subprocess.run([sys.executable, "-m", "deepff.cli", "kernels", "--build"], capture_output=True, text=True,
                          env=kernel_env(a_file), timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(f"deepff: error: could not build deepff's kernels ahead of time into {a_file}")
    assert a_file.read_text() == "mine\n"                  # nothing of the user's is touched


VALIDATED = """
import json, sys
import numpy as np
import deepff
from deepff.sklearn import MLPClassifier
""" + SMALL_RUN + """
history = net.fit(X, y, epochs=6, batch_size=32, optimizer={"name": "adam", "lr": 0.01}, validation_split=0.25,
                  early_stopping={"patience": 2, "monitor": "val_loss"})
clf = MLPClassifier(hidden_layer_sizes=(16,), early_stopping=True, max_iter=30, random_state=0).fit(X, y)
print(json.dumps({"numba": "numba" in sys.modules, "theta": net.params.theta.tolist(),
                  "val_loss": list(history["val_loss"]), "choice": net.trainer_.compiled_kernels,
                  "clf": clf.score(X, y), "clf_val": clf.validation_scores_}))
"""


def test_validation_and_early_stopping_do_not_load_numba_either(built, tmp_path):
    """Evaluation runs the numpy code, as prediction does: the same figures with the built step and numba's."""
    folder, _ = built
    aot = run_json(VALIDATED, kernel_env(folder))
    jit = run_json(VALIDATED, kernel_env(tmp_path, DEEPFF_NUMBA="always"))
    assert not aot["numba"] and aot["choice"] is True and jit["numba"]
    assert len(aot["val_loss"]) >= 3
    assert aot == {**jit, "numba": False}                   # weights, validation figures, the estimator's


def test_a_run_begun_on_the_numpy_code_resumes_on_it_where_the_step_is_built(built, tmp_path):
    folder, _ = built
    ckpt, nothing_built, with_module = tmp_path / "ckpt.npz", kernel_env(tmp_path), kernel_env(folder)
    whole = resume_run("whole", ckpt, environ=nothing_built)           # no module: short, numpy
    resume_run("first", ckpt, environ=nothing_built)
    resumed = resume_run("rest", ckpt, environ=with_module)
    assert whole["compiled_kernels"] is False and resumed["compiled_kernels"] is False and not resumed["numba"]
    assert resumed["theta"] == whole["theta"]
    built_run = resume_run("whole", ckpt, environ=with_module)
    assert built_run["compiled_kernels"] is True and built_run["theta"] != whole["theta"]   # (the built step ran)


THREADS = """
import copy, ctypes, json, os, sys, threading, time
import numpy as np
import deepff
from deepff import _blas
""" + SMALL_RUN + """
def run(sign, out):                         # a copy of net on X or on -X
    n = copy.deepcopy(net)
    n.fit(sign * X, y, epochs=3, batch_size=16, optimizer={"name": "adam", "lr": 0.01})
    out[sign] = (n.params.theta.tolist(), n.trainer_.compiled_kernels)

alone, together = {}, {}
for sign in (1, -1):
    run(sign, alone)
threads = [threading.Thread(target=run, args=(sign, together)) for sign in (1, -1)]
for t in threads:
    t.start()
for t in threads:
    t.join()

# From here every product of the step calls read(101, ...) instead of cblas_sgemm: in x86-64's calling
# convention gemm's first argument (CblasRowMajor, 101) is read's file descriptor, and its next two (the
# transposes' enums, 111 or 112) read's buffer address and count (zero-extended in practice, though the
# convention does not promise it). So the step blocks in its first product until the pipe on descriptor
# 101 holds data; then every read fails at once (EFAULT: 111 is no buffer's address) and the step ends
# without its products.
r, w = os.pipe()
os.dup2(r, 101)
read_at = ctypes.cast(ctypes.CDLL(None).read, ctypes.c_void_p).value
_blas.gemms()[:3] = (read_at, read_at, 1)
worker_id, ended = [], []

def blocked_fit():
    worker_id.append(threading.get_native_id())
    try:
        net.fit(X, y, epochs=1, batch_size=32)
    except Exception as exc:                # without its products the fit may end as it will
        ended.append(type(exc).__name__)
    ended.append("returned")

worker = threading.Thread(target=blocked_fit, daemon=True)
worker.start()
syscall, deadline = [], time.monotonic() + 20
while worker.is_alive() and time.monotonic() < deadline:   # this thread runs Python while the worker waits
    try:
        with open(f"/proc/self/task/{worker_id[0]}/syscall") as f:
            syscall = f.read().split()[:2]
    except (IndexError, FileNotFoundError):
        syscall = []
    if syscall == ["0", "0x65"]:            # read (0) on descriptor 101
        break
    time.sleep(0.001)
os.write(w, b"x")                           # (past the deadline too: the assertions then say what was seen)
worker.join(60)
print(json.dumps({"numba": "numba" in sys.modules, "alone": alone, "together": together,
                  "ended": ended, "syscall": syscall}))
"""


@pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64",
                    reason="blocks the step through x86-64 Linux's calling convention and /proc")
def test_the_built_step_lets_other_threads_run_and_two_fits_in_two_threads_agree_with_one_at_a_time(built):
    """As numba's JIT-compiled step does (``nogil``), the built step releases the GIL while it runs.

    While a thread's fit waits inside the step (its gemm replaced by a read
    from an empty pipe), the main thread must run Python to fill the pipe:
    a step that held the GIL would wait forever (the module built before
    this was so: the script hung).
    """
    folder, _ = built
    try:
        out = run_json(THREADS, kernel_env(folder), timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("no thread ran while a fit waited inside the step built ahead of time: it held the GIL "
                    "(or the script ran past 120 s)")
    assert not out["numba"]
    assert out["syscall"] == ["0", "0x65"] and out["ended"][-1:] == ["returned"]
    for sign in ("1", "-1"):
        assert out["alone"][sign][1] is True                # the built step ran
        assert out["together"][sign] == out["alone"][sign]  # bit for bit, two at once or one at a time
    assert out["alone"]["1"][0] != out["alone"]["-1"][0]
