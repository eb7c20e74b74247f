"""Kernels compiled ahead of time: a process that loads them imports neither numba nor LLVM.

numba compiles a kernel the first time a process calls it, or loads it from
its on-disk cache; either way the process imports numba and llvmlite and
starts LLVM's code generator first. On the 2-core benchmark machine that
took 0.4-0.8 s and about 130 MiB of resident memory in every new process,
for kernels that were already compiled. numba's ahead-of-time compiler
(``numba.pycc``) writes the same kernels into an ordinary Python extension
module that needs only numpy at run time; this module builds such a module
(``deepff kernels --build``) and loads it. The module's functions hold the
GIL while they run (numba's ``nogil`` is a JIT option).

A built module is specific to its source and its machine, and its file name
says so: :func:`module_name` hashes the source file it was compiled from
(``deepff/_kernels.py``: every function compiled into the step lives there),
numpy's version, the interpreter and the CPU (model and instruction-set
flags, as the code is compiled for the host CPU, as numba's JIT compiles
it). After any change to one of them the name changes, the old file is
ignored, and the kernels compile at run time as before until the module is
built again. Modules live in :func:`folder`: ``$DEEPFF_KERNEL_DIR``, else
``$XDG_CACHE_HOME/deepff/kernels``, else ``~/.cache/deepff/kernels``.

``numba.pycc`` is pending deprecation in numba (since 0.57); where a numba
release no longer has it, :func:`build` says so and the JIT kernels run as
before.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.machinery
import importlib.util
import os
import platform
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from . import _blas, _kernels, _twins
from .errors import KernelBuildError, MissingDependencyError

__all__ = ["ENV", "folder", "module_name", "path", "load", "build", "step", "step_module_name", "build_step"]

ENV = "DEEPFF_KERNEL_DIR"
"""The environment variable naming the folder of the modules (see :func:`folder`)."""


def folder():
    """The folder the ahead-of-time modules are built into and loaded from.

    Returns
    -------
    pathlib.Path
        ``$DEEPFF_KERNEL_DIR`` when set, else ``$XDG_CACHE_HOME/deepff/kernels``,
        else ``~/.cache/deepff/kernels``.
    """
    own = os.environ.get(ENV)
    if own:
        return Path(own).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "deepff" / "kernels"


def _cpu():
    """The CPU's model and instruction-set flags (Linux), or what :mod:`platform` knows of it elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            lines = []
            for line in f:
                if not line.strip():            # the first processor's block is enough
                    break
                if line.startswith(("model name", "flags", "Features", "CPU part")):
                    lines.append(" ".join(line.split()))
            if lines:
                return "\n".join(lines)
    except OSError:
        pass
    return platform.processor() or platform.machine()


def module_name(source):
    """The name of the extension module built from ``source`` for this process's numpy, Python and CPU.

    Parameters
    ----------
    source : bytes
        The source file the module's functions are compiled from.

    Returns
    -------
    str
        ``_deepff_kernels_`` and 20 hexadecimal digits of a SHA-256 over the
        source, numpy's version, the interpreter's cache tag, the machine
        type and the CPU's model and flags.
    """
    h = hashlib.sha256(source)
    for part in (np.__version__, sys.implementation.cache_tag, platform.machine(), _cpu()):
        h.update(b"\0" + str(part).encode())
    return "_deepff_kernels_" + h.hexdigest()[:20]


def path(name):
    """The file of the module ``name`` in :func:`folder` (an extension module's file name on this platform).

    Parameters
    ----------
    name : str
        From :func:`module_name`.

    Returns
    -------
    pathlib.Path
    """
    return folder() / (name + importlib.machinery.EXTENSION_SUFFIXES[0])


def load(name):
    """Import the module ``name`` from :func:`folder`, or None when it has not been built.

    A file that is there but cannot be imported (damaged, built for
    another platform) gives a ``RuntimeWarning`` naming it, and None: the
    kernels then compile at run time.

    Parameters
    ----------
    name : str
        From :func:`module_name`.

    Returns
    -------
    module or None
    """
    file = path(name)
    if not file.is_file():
        return None
    try:
        spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    except Exception as exc:  # noqa: BLE001 - any failure to import means: not there
        warnings.warn(f"deepff's kernels compiled ahead of time in {file} cannot be loaded "
                      f"({type(exc).__name__}: {exc}); the kernels compile at run time instead. "
                      "Rebuild them with `deepff kernels --build`, or delete the file.",
                      RuntimeWarning, stacklevel=3)
        return None


def build(name, exports, source_module):
    """Compile ``exports`` into the extension module ``name`` in :func:`folder` (numba and a C compiler needed).

    The module is written beside its final name and moved there in one
    step, so that a process loading it never sees half a file, and two
    builds at once leave one whole module.

    Parameters
    ----------
    name : str
        From :func:`module_name`.
    exports : callable
        Called once numba is imported: returns a sequence of (str, str,
        function), the name each function takes in the module, its numba
        signature, and the function.
    source_module : str
        The module the functions are defined in.

    Returns
    -------
    pathlib.Path
        The module's file.

    Raises
    ------
    MissingDependencyError
        numba is not installed, or has no ``numba.pycc``.
    KernelBuildError
        The compilation failed (no C compiler, a folder that cannot be written...).
    """
    try:
        with warnings.catch_warnings():     # numba.pycc is pending deprecation: said in the docs, not at each build
            warnings.simplefilter("ignore")
            from numba.pycc import CC
    except ImportError as exc:
        raise MissingDependencyError(
            f"building deepff's kernels ahead of time needs numba with numba.pycc ({exc}); "
            'install it with pip install "deepff[fast]"') from exc
    target = path(name)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
            cc = CC(name, source_module=source_module)
            cc.output_dir = tmp
            cc.target_cpu = "host"              # as numba's JIT compiles: the same code, the same bits
            for export, signature, func in exports():
                cc.export(export, signature)(func)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cc.compile()
            built = Path(tmp) / (name + importlib.machinery.EXTENSION_SUFFIXES[0])
            if not built.is_file():
                built = next(Path(tmp).glob(name + ".*"))
            os.replace(built, target)
    except Exception as exc:  # noqa: BLE001 - a compiler's or the file system's failure, said in one line
        raise KernelBuildError(f"could not build deepff's kernels ahead of time into {target.parent} "
                               f"({type(exc).__name__}: {' '.join(str(exc).split())})") from exc
    _LOADED.pop(target, None)
    return target


# ---------------------------------------------------------------------------
# The whole training step (deepff._kernels.step_function) ahead of time
# ---------------------------------------------------------------------------

_LOADED = {}    # file -> its module, or None where there is none (looked for once per process and file)
_DTYPES = {np.dtype(np.float32): "f4", np.dtype(np.float64): "f8"}


@functools.lru_cache(maxsize=1)
def step_module_name():
    """The name of the whole step's module for :mod:`deepff._kernels`' source, this numpy, Python and CPU.

    Returns
    -------
    str
        :func:`module_name` of ``deepff/_kernels.py``.
    """
    with open(_kernels.__file__, "rb") as f:
        return module_name(f.read())


def _signature(t):
    """numba's signature of the whole step for the float type ``t`` ("f4" or "f8"), gemm addresses first."""
    a1, a2, i1 = f"{t}[::1]", f"{t}[:, ::1]", "i8[::1]"
    return (f"f8(i8[::1], {a2}, {a2}, {a1}, b1, {i1}, {a1}, {a1}, {a1}, {i1}, {i1}, {i1}, {i1}, i8, {a1}, "
            f"f8[::1], i8, {a1}, {a1}, {a1}, {a1})")


def step(dtype):
    """The whole step compiled ahead of time for ``dtype``, numpy's gemm bound, or None; never imports numba.

    None inside :func:`deepff._twins.numpy_only`, with ``DEEPFF_NUMBA=0``,
    for a dtype other than float32 and float64, or where
    :func:`build_step` has not built the module for this source, numpy,
    Python and CPU. The module is looked for once per process and folder.

    Parameters
    ----------
    dtype : numpy dtype

    Returns
    -------
    callable or None
        :func:`deepff._kernels.dense_step_kernel`'s kernel, with the same
        arguments and results. Unlike numba's, it does not check its
        arguments' types: each array must have the dtype, the number of
        dimensions and the C order that kernel's docstring gives, or the
        process crashes (:class:`deepff._fused_step.FusedStep` checks).
    """
    code = _DTYPES.get(np.dtype(dtype))
    if code is None or _twins.numpy_only_now() or _kernels.setting() == "0":
        return None
    name = step_module_name()
    file = path(name)
    if file not in _LOADED:
        _LOADED[file] = load(name)
    module = _LOADED[file]
    return None if module is None else functools.partial(getattr(module, "dense_step_" + code), _blas.gemms())


def build_step():
    """Compile the whole step for float32 and float64 ahead of time, for :func:`step` in later processes.

    A process that loads the module trains with the compiled step without
    importing numba or LLVM. Building needs numba (with ``numba.pycc``), a
    C compiler and about 20 s.

    Returns
    -------
    pathlib.Path
        The module's file.

    Raises
    ------
    MissingDependencyError
        numba, or its ``numba.pycc``, is not installed.
    KernelBuildError
        The compilation failed.
    """
    def exports():
        func = _kernels.step_function()
        return [(f"dense_step_{t}", _signature(t), func) for t in ("f4", "f8")]

    return build(step_module_name(), exports, _kernels.__name__)
