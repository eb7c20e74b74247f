"""``deepff kernels``: where the compiled kernels stand; ``--build`` compiles the step ahead of time, ``--clean``
deletes the modules built before for other versions.
"""

from __future__ import annotations

import time

from .common import PROG, _note, _say


def add_parser(subparsers):
    """Add ``deepff kernels`` and its flags to ``subparsers``."""
    k = subparsers.add_parser(
        "kernels", help="show how training steps are compiled; --build compiles the step ahead of time, "
                        "--clean deletes old builds")
    k.add_argument("--build", action="store_true",
                   help="compile the whole training step ahead of time (needs numba, setuptools and a C compiler; "
                        "up to about a minute), so that new processes train without loading numba")
    k.add_argument("--clean", action="store_true",
                   help="delete your modules in the kernel folder that this environment would not load: built "
                        "for other versions of deepff, its libraries or Python, or for another CPU (after --build, "
                        "when both are given); this environment's own module and other users' files stay")
    k.add_argument("--debug", action="store_true", help="show tracebacks")


def run(args):
    """Run ``deepff kernels``; return its exit status."""
    from .. import _aot, _kernels

    if args.build:
        t0 = time.perf_counter()
        file = _aot.build_step()
        _say(f"built {file} in {time.perf_counter() - t0:.1f} s")
    status = _clean(_aot.stale_modules()) if args.clean else 0
    s = _aot.status()
    _say(f"DEEPFF_NUMBA   {s['setting']}: {_kernels.SETTINGS[s['setting']]}")
    _say("numba          " + (s["numba"] or 'not installed (pip install "deepff[fast]")'))
    if s["file"] is None:
        _say("ahead of time  not available: deepff builds it on Linux only")
    elif s["built"]:
        _say(f"ahead of time  built{', not used while DEEPFF_NUMBA=0' if s['setting'] == '0' else ''}: {s['file']}")
    else:
        _say(f"ahead of time  not built (deepff kernels --build): {s['file']}")
    return status


def _clean(stale):
    """Delete the modules ``ours`` of ``stale`` (:func:`deepff._aot.stale_modules`), saying what went; the status."""
    ours, others = stale
    deleted, size, status = 0, 0, 0
    for file in ours:
        try:
            n = file.lstat().st_size
            file.unlink()
        except FileNotFoundError:               # gone meanwhile (another --clean)
            continue
        except OSError as exc:                  # e.g. a folder this user may not write to
            _note(f"{PROG}: error: {file}: {exc.strerror or exc}; not deleted")
            status = 2
            continue
        deleted, size = deleted + 1, size + n
        _say(f"deleted {file}")
    _say(f"deleted {deleted} module{'s' * (deleted != 1)} built for other versions ({size / 2**20:.1f} MiB)"
         if deleted else "nothing to delete: no module built for other versions")
    for file in others:
        _say(f"left {file}: it belongs to another user")
    return status
