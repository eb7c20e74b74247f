"""``deepff kernels``: where the compiled kernels stand, and ``--build`` to compile the step ahead of time.
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
    k.add_argument("--debug", action="store_true", help="show tracebacks")


def run(args):
    """Run ``deepff kernels``; return its exit status."""
    from .. import _aot, _kernels

    if args.build:
        t0 = time.perf_counter()
        file = _aot.build_step()
        _say(f"built {file} in {time.perf_counter() - t0:.1f} s")
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
