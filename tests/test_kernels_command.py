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


def test_clean_deletes_this_users_modules_of_other_versions_and_nothing_else(tmp_path):
    from deepff import _aot

    folder = tmp_path / "k"
    folder.mkdir()
    suffix = _aot.path("x").name[1:]                        # this Python's extension-module ending
    current = folder / (_aot.step_module_name() + suffix)
    stale = {folder / f"_deepff_kernels_{'0' * 20}{suffix}": 1000, folder / f"_deepff_kernels_{'a' * 20}{suffix}": 2000}
    foreign = folder / f"_deepff_kernels_{'b' * 20}{suffix}"
    kept = [current, folder / "notes.txt", folder / f"_deepff_kernels_{'c' * 19}{suffix}"]
    for file in kept + [foreign]:
        file.write_bytes(b"kept")
    for file, size in stale.items():
        file.write_bytes(b"x" * size)
    if os.getuid() == 0:                                    # as root: a module another user owns stays
        os.chown(foreign, 65534, 65534)
        kept.append(foreign)
    else:
        stale[foreign] = 4
    proc = subprocess.run([sys.executable, "-m", "deepff.cli", "kernels", "--clean"], capture_output=True, text=True,
                          env=kernel_env(folder, DEEPFF_NUMBA="0"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    n = len(stale)
    assert lines[:n] == [f"deleted {file}" for file in sorted(stale)]
    assert lines[n] == f"deleted {n} modules built for other versions ({sum(stale.values()) / 2**20:.1f} MiB)"
    if foreign in kept:
        assert lines[n + 1] == f"left {foreign}: it belongs to another user"
    assert lines[-1] == f"ahead of time  built, not used while DEEPFF_NUMBA=0: {current}"   # the status follows
    assert sorted(folder.iterdir()) == sorted(kept)
    assert current.read_bytes() == b"kept"                  # this environment's module is untouched
    again = subprocess.run([sys.executable, "-m", "deepff.cli", "kernels", "--clean"], capture_output=True,
                           text=True, env=kernel_env(folder, DEEPFF_NUMBA="0"), timeout=120)
    assert again.stdout.splitlines()[0] == "nothing to delete: no module built for other versions"
    assert sorted(folder.iterdir()) == sorted(kept)


def test_clean_without_a_folder_deletes_nothing(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "deepff.cli", "kernels", "--clean"], capture_output=True, text=True,
                          env=kernel_env(tmp_path / "none", DEEPFF_NUMBA="0"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "nothing to delete: no module built for other versions"
    assert not (tmp_path / "none").exists()
