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
                   help="compile the whole training step ahead of time (needs numba and a C compiler, ~20-60 s), "
                        "so that new processes train without loading numba")
    k.add_argument("--debug", action="store_true", help="show tracebacks")


def _numba_version():
    """numba's installed version, or None, without importing it."""
    from importlib import metadata

    try:
        return metadata.version("numba")
    except metadata.PackageNotFoundError:
        return None


def run(args):
    """Run ``deepff kernels``; return its exit status."""
    from .. import _aot, _kernels

    if args.build:
        t0 = time.perf_counter()
        file = _aot.build_step()
        _say(f"built {file} in {time.perf_counter() - t0:.1f} s")
    setting = _kernels.setting()
    version = _numba_version()
    file = _aot.path(_aot.step_module_name())
    _say(f"DEEPFF_NUMBA   {setting}: {_kernels.SETTINGS[setting]}")
    _say("numba          " + (version or 'not installed (pip install "deepff[fast]")'))
    if file.is_file():
        state = "built" + (", not used while DEEPFF_NUMBA=0" if setting == "0" else "")
    else:
        state = "not built (deepff kernels --build)"
    _say(f"ahead of time  {state}: {file}")
    return 0
