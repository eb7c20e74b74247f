"""``deepff kernels`` where numba is missing or switched off (they need no kernels, so they run without numba too).

The build itself, and everything the built step does, is in tests/test_ahead_of_time.py.
"""

import os
import subprocess
import sys

from _procs import kernel_env


def test_status_without_a_build_says_how_to_build(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "deepff.cli", "kernels"], capture_output=True, text=True,
                          env=kernel_env(tmp_path, DEEPFF_NUMBA="0"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "DEEPFF_NUMBA   0: off: the numpy code only"
    assert lines[1].startswith("numba          ")
    assert lines[2].startswith(f"ahead of time  not built (deepff kernels --build): {tmp_path}/_deepff_kernels_")
    assert list(tmp_path.iterdir()) == []                  # asking builds nothing


def test_building_without_numba_is_one_line_naming_it_and_status_2(tmp_path):
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "numba.py").write_text("raise ImportError('numba blocked for this test')\n")
    env = kernel_env(tmp_path / "k")
    env["PYTHONPATH"] = os.pathsep.join([str(blocker), env["PYTHONPATH"]])
    proc = subprocess.run([sys.executable, "-m", "deepff.cli", "kernels", "--build"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and "Traceback" not in proc.stderr
    assert "needs numba.pycc to compile (ImportError: numba blocked for this test)" in proc.stderr
    assert 'pip install "deepff[fast]"' in proc.stderr
    assert not (tmp_path / "k").exists()                   # nothing was made
