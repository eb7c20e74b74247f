"""``deepff kernels``: where the compiled kernels stand, ``--build`` to compile the step ahead of time, ``--clean``.
"""

from __future__ import annotations

import time

from .common import _say


def add_parser(subparsers):
    """Add ``deepff kernels`` and its flags to ``subparsers``."""
    k = subparsers.add_parser(
        "kernels", help="show how training steps are compiled; --build compiles the step ahead of time")
    k.add_argument("--build", action="store_true",
                   help="compile the whole training step ahead of time (needs numba, setuptools and a C compiler; "
                        "up to about a minute), so that new processes train without loading numba")
    k.add_argument("--clean", action="store_true",
                   help="delete the modules built before for other versions of deepff, numpy, numba or Python "
                        "(after --build, when both are given); this environment's own module stays")
    k.add_argument("--debug", action="store_true", help="show tracebacks")


def run(args):
    """Run ``deepff kernels``; return its exit status."""
    from .. import _aot, _kernels

    if args.build:
        t0 = time.perf_counter()
        file = _aot.build_step()
        _say(f"built {file} in {time.perf_counter() - t0:.1f} s")
    if args.clean:
        _clean(_aot)
    s = _aot.status()
    _say(f"DEEPFF_NUMBA   {s['setting']}: {_kernels.SETTINGS[s['setting']]}")
    _say("numba          " + (s["numba"] or 'not installed (pip install "deepff[fast]")'))
    if s["file"] is None:
        _say("ahead of time  not available: deepff builds it on Linux only")
    elif s["built"]:
        _say(f"ahead of time  built{', not used while DEEPFF_NUMBA=0' if s['setting'] == '0' else ''}: {s['file']}")
    else:
        _say(f"ahead of time  not built (deepff kernels --build): {s['file']}")
    return 0


def _clean(_aot):
    """Delete this user's stale modules (:func:`deepff._aot.stale_modules`), saying what went."""
    ours, others = _aot.stale_modules()
    size = 0
    for file in ours:
        size += file.stat().st_size
        file.unlink()
        _say(f"deleted {file}")
    _say(f"deleted {len(ours)} module{'s' * (len(ours) != 1)} built for other versions ({size / 2**20:.1f} MiB)"
         if ours else "nothing to delete: no module built for other versions")
    for file in others:
        _say(f"left {file}: it belongs to another user")
