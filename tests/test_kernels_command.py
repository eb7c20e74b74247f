"""``deepff kernels`` where numba is missing or switched off (they need no kernels, so they run without numba too).

The build itself, and everything the built step does, is in tests/test_ahead_of_time.py.
"""

import os
import subprocess
import sys

import pytest

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


def _clean(folder):
    return subprocess.run([sys.executable, "-m", "deepff.cli", "kernels", "--clean"], capture_output=True,
                          text=True, env=kernel_env(folder, DEEPFF_NUMBA="0"), timeout=120)


def test_clean_deletes_this_users_modules_of_other_versions_and_nothing_else(tmp_path):
    from deepff import _aot

    if _aot.step_module_name() is None:
        pytest.skip("no module can be named where /proc/cpuinfo cannot tell the CPU")
    folder = tmp_path / "k"
    (folder / ".build-x1").mkdir(parents=True)              # a build under way writes in such a folder
    suffix = _aot.path("x").name[1:]                        # this Python's extension-module ending
    current = folder / (_aot.step_module_name() + suffix)
    stale = {folder / f"_deepff_kernels_{'0' * 20}{suffix}": 2**20,
             folder / f"_deepff_kernels_{'a' * 20}.cpython-312-x86_64-linux-gnu.so": 2**19}
    kept = [current, folder / "notes.txt", folder / f"_deepff_kernels_{'c' * 19}{suffix}",
            folder / f"_deepff_kernels_{'d' * 20}{suffix}.bak", folder / ".build-x1" / current.name,
            tmp_path / "target.so"]
    for file in kept:
        file.write_bytes(b"kept")
    link = folder / f"_deepff_kernels_{'e' * 20}{suffix}"   # a link named as a module: not a module
    link.symlink_to(tmp_path / "target.so")
    kept.append(link)
    for file, size in stale.items():
        file.write_bytes(b"x" * size)
    foreign = folder / f"_deepff_kernels_{'b' * 20}{suffix}"
    foreign.write_bytes(b"kept")
    try:
        os.chown(foreign, 65534, 65534)                     # (root may give a file away)
        kept.append(foreign)
    except PermissionError:
        foreign.unlink()
    proc = _clean(folder)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == [f"deleted {file}" for file in sorted(stale)]
    assert lines[2] == "deleted 2 modules built for other versions (1.5 MiB)"
    if foreign in kept:
        assert lines[3] == f"left {foreign}: it belongs to another user"
    assert lines[-1] == f"ahead of time  built, not used while DEEPFF_NUMBA=0: {current}"   # the status follows
    assert all(file.is_symlink() or file.read_bytes() == b"kept" for file in kept)
    assert sorted(folder.rglob("*")) == sorted([folder / ".build-x1"] + [f for f in kept if f.parent != tmp_path])
    assert (tmp_path / "target.so").read_bytes() == b"kept"
    again = _clean(folder)
    assert again.stdout.splitlines()[0] == "nothing to delete: no module built for other versions"
    assert sorted(folder.rglob("*")) == sorted([folder / ".build-x1"] + [f for f in kept if f.parent != tmp_path])


def test_clean_without_a_folder_deletes_nothing_and_a_file_in_its_place_is_one_line_and_status_2(tmp_path):
    proc = _clean(tmp_path / "none")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "nothing to delete: no module built for other versions"
    assert not (tmp_path / "none").exists()
    (tmp_path / "file").write_text("not a folder")
    proc = _clean(tmp_path / "file")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [f"deepff: error: {tmp_path / 'file'}: Not a directory"]
    assert (tmp_path / "file").read_text() == "not a folder"
