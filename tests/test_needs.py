"""Optional areas cannot go quiet: numba's import is judged, and CI fails where a test would skip.

deepff._kernels.enabled() treats an absent numba as "kernels off" and says
nothing; a numba that is installed but fails to import is also off, with a
RuntimeWarning naming the error. tests/_needs.py turns a missing area into a
skip locally and a failure naming the area in CI (``CI=true``); the last tests
run pytest on real test modules with torch and numba made unimportable by a
shim folder on PYTHONPATH, as a broken install would leave them.
"""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from deepff import _kernels

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh_switch(monkeypatch):
    """enabled() decides afresh in the test, and again after it (the real numba back in place)."""
    monkeypatch.delenv("DEEPFF_NUMBA", raising=False)
    _kernels.refresh()
    yield monkeypatch
    _kernels.refresh()


def _fake_numba(tmp_path, monkeypatch, body):
    """Make ``import numba`` run ``body`` (a package folder first on sys.path)."""
    pkg = tmp_path / "shim" / "numba"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path / "shim"))
    monkeypatch.delitem(sys.modules, "numba", raising=False)


def test_an_absent_numba_means_off_quietly(fresh_switch):
    fresh_switch.setitem(sys.modules, "numba", None)     # import numba: ModuleNotFoundError, name 'numba'
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _kernels.enabled() is False
    assert _kernels.adam_kernel() is None and _kernels.softmax_kernels() is None


@pytest.mark.parametrize("body, shown", [
    ("raise ImportError('Numba needs NumPy 2.2 or less. Got NumPy 9.9.')", "ImportError: Numba needs NumPy 2.2"),
    ("import llvmlite_is_not_here_either", "ModuleNotFoundError: No module named 'llvmlite_is_not_here_either'"),
    ("raise AttributeError('module numpy has no attribute long')", "AttributeError: module numpy has no"),
], ids=["wrong-numpy", "missing-dependency", "other-error"])
def test_a_broken_numba_means_off_with_a_warning(body, shown, fresh_switch, tmp_path):
    _fake_numba(tmp_path, fresh_switch, body)
    with pytest.warns(RuntimeWarning, match="numba is installed but cannot be imported") as record:
        assert _kernels.enabled() is False
    assert len(record) == 1 and shown in str(record[0].message) and "DEEPFF_NUMBA=0" in str(record[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _kernels.enabled() is False        # decided once: no warning per training step
        assert _kernels.sgd_kernel() is None


def test_deepff_numba_0_does_not_even_try(fresh_switch, tmp_path):
    _fake_numba(tmp_path, fresh_switch, "raise ImportError('broken')")
    fresh_switch.setenv("DEEPFF_NUMBA", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _kernels.enabled() is False


# ------------------------------------------- the rule of tests/_needs.py, end to end
SHIM = {
    "torch.py": "raise ImportError('torch is made unimportable for this test')\n",
    "numba/__init__.py": "raise ImportError('numba is made unimportable for this test')\n",
}


def _pytest(tmp_path, *tests, ci, numba="1"):
    """Run pytest on ``tests`` in a child with torch and numba unimportable; return (exit code, output)."""
    for name, text in SHIM.items():
        (tmp_path / "shim" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "shim" / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env.update(PYTHONPATH=os.pathsep.join([str(tmp_path / "shim"), str(ROOT / "src")]), DEEPFF_NUMBA=numba)
    if ci:
        env["CI"] = "true"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W",
                           "ignore::RuntimeWarning", *tests], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def test_in_ci_missing_torch_and_numba_fail_naming_the_area(tmp_path):
    rc, out = _pytest(tmp_path, "tests/test_torch_parity.py", "tests/test_kernels.py", ci=True)
    assert rc != 0, out
    assert "CI must cover PyTorch parity cannot run: torch cannot be imported" in out
    assert "CI must cover compiled kernels (numba) cannot run: numba cannot be imported" in out


def test_locally_they_skip_with_the_reason(tmp_path):
    rc, out = _pytest(tmp_path, "-rs", "tests/test_torch_parity.py", "tests/test_kernels.py", ci=False)
    assert rc == 5, out                  # pytest's "no tests ran": whole modules skipped, nothing failed
    assert "PyTorch parity cannot run: torch cannot be imported" in out
    assert "compiled kernels (numba) cannot run: numba cannot be imported" in out
    assert " passed" not in out and "2 skipped" in out


def test_in_ci_deepff_numba_0_is_a_choice_not_a_fault(tmp_path):
    rc, out = _pytest(tmp_path, "-rs", "tests/test_kernels.py", ci=True, numba="0")
    assert rc == 5, out                  # nothing ran, nothing failed
    assert "compiled kernels switched off by DEEPFF_NUMBA=0" in out and "1 skipped" in out
