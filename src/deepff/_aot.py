"""Kernels compiled ahead of time: a process that loads them imports neither numba nor LLVM.

numba compiles a kernel the first time a process calls it, or loads it from
its on-disk cache; either way the process imports numba and llvmlite and
starts LLVM's code generator first. On the 2-core benchmark machine that
took 0.4-0.8 s and about 130 MiB of resident memory in every new process,
for kernels that were already compiled. numba's ahead-of-time compiler
(``numba.pycc``) writes the same kernels into an ordinary Python extension
module that needs only numpy at run time; this module builds such a module
(``deepff kernels --build``) and loads it. Like numba's JIT-compiled
kernels (``nogil=True``), the module's functions let go of the GIL while they
run, so that the user's other Python threads go on meanwhile.

The build compiles as numba's JIT does (this CPU's name and its own list of
instruction-set features, numpy's error model rather than Python's), then
checks its work: a fresh process runs a few steps with the new module and
must get numba's results to the bit, or the module is not installed.

A built module is specific to its source and its machine, and its file name
says so: :func:`module_name` hashes the source files
(``deepff/_kernel_source.py``, where every function compiled into the step
lives, ``deepff/_kernels.py``, which compiles them, and this file, which says
how it is built), the versions of numpy, numba and llvmlite, the
interpreter and the CPU (model and instruction-set flags from
``/proc/cpuinfo``; elsewhere than Linux there is no building). After any
change to one of them the name changes, the old file is ignored, and the
kernels compile at run time as before until the module is built again.
Modules live in :func:`folder`: ``$DEEPFF_KERNEL_DIR``, else
``$XDG_CACHE_HOME/deepff/kernels``, else ``~/.cache/deepff/kernels``. A
file there that another user owns, or that others may write, is not loaded.

``numba.pycc`` is pending deprecation in numba (since 0.57); where a numba
release no longer has it, :func:`build` says so and the JIT kernels run as
before.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.machinery
import importlib.util
import os
import platform
import re
import stat
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from . import _blas, _kernel_source, _kernels, _twins
from .errors import KernelBuildError, MissingDependencyError

__all__ = ["ENV", "folder", "module_name", "path", "load", "build", "status", "step", "step_module_name",
           "build_step", "stale_modules"]

ENV = "DEEPFF_KERNEL_DIR"
"""The environment variable naming the folder of the modules (see :func:`folder`)."""

_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]     # an extension module's file ending here


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
    """The CPU's model and instruction-set flags from ``/proc/cpuinfo``, or None where there is none."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            lines = []
            for line in f:
                if not line.strip():            # the first processor's block is enough
                    break
                if line.startswith(("model name", "flags", "Features", "CPU part", "CPU implementer")):
                    lines.append(" ".join(line.split()))
            return "\n".join(lines) or None
    except OSError:
        return None


def _version(package):
    """The installed version of ``package``, or None, without importing it."""
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def module_name(source):
    """The name of the extension module built from ``source`` for this process's libraries, Python and CPU.

    Parameters
    ----------
    source : bytes
        The source the module's functions are compiled from, and how.

    Returns
    -------
    str or None
        ``_deepff_kernels_`` and 20 hexadecimal digits of a SHA-256 over the
        source, the versions of numpy, numba and llvmlite, the interpreter's
        cache tag, the machine type and the CPU's model and flags; None where
        the CPU cannot be told (no ``/proc/cpuinfo``).
    """
    cpu = _cpu()
    if cpu is None:
        return None
    h = hashlib.sha256(source)
    for part in (np.__version__, _version("numba"), _version("llvmlite"), sys.implementation.cache_tag,
                 platform.machine(), cpu):
        h.update(b"\0" + str(part).encode())
    return "_deepff_kernels_" + h.hexdigest()[:20]


def path(name):
    """The file of the module ``name`` in :func:`folder`.

    Parameters
    ----------
    name : str
        From :func:`module_name`.

    Returns
    -------
    pathlib.Path
    """
    return folder() / (name + _SUFFIX)


def _owned(st):
    """Whether the file of ``os.stat`` result ``st`` belongs to this process's user (True where there are none)."""
    return not hasattr(os, "getuid") or st.st_uid == os.getuid()


def _refusal(file):
    """Why ``file`` must not be loaded (another user's, or writable by others), or None."""
    if not hasattr(os, "getuid"):
        return None
    st = file.stat()
    if not _owned(st):
        return "it belongs to another user"
    if st.st_mode & 0o022:
        return "others may write to it"
    return None


def load(name):
    """Import the module ``name`` from :func:`folder`, or None when it has not been built.

    A file that is there but cannot be imported (damaged, built for
    another platform), or that another user owns or others may write, gives
    a ``RuntimeWarning`` naming it, and None: the kernels then compile at
    run time.

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
        refusal = _refusal(file)
        if refusal:
            raise PermissionError(f"not loaded: {refusal}")
        return _import(name, file)
    except Exception as exc:  # noqa: BLE001 - any failure to import means: not there
        warnings.warn(f"deepff's kernels compiled ahead of time in {file} cannot be loaded "
                      f"({type(exc).__name__}: {exc}); the kernels compile at run time instead. "
                      "Rebuild them with `deepff kernels --build`, or delete the file.",
                      RuntimeWarning, stacklevel=3)
        return None


def _import(name, file):
    """Import the extension module ``name`` from ``file`` (not entered in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _as_the_jit_compiles():
    """Within: ``numba.pycc`` compiles as the JIT compiles :func:`deepff._kernels.compiled`'s kernels.

    That is, for this CPU's own feature list, with numpy's error model, and
    with a Python wrapper that releases the GIL around the compiled call.
    Left to itself pycc takes the features the CPU's model name implies
    (more than a virtual machine may allow: an illegal instruction, not an
    exception), Python's error model (a float division by zero raises
    instead of giving inf, as the JIT-compiled step does), and holds the GIL
    (pycc has no ``nogil``; its wrapper takes the flag from the compiler's
    ``Flags``, as the JIT's does).
    """
    from numba.core import codegen
    from numba.pycc import compiler

    features, flags = codegen.AOTCPUCodegen._customize_tm_features, compiler.Flags

    class AsTheJit(flags):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.error_model = "numpy"
            self.release_gil = True

    codegen.AOTCPUCodegen._customize_tm_features = lambda self: self._get_host_cpu_features()
    compiler.Flags = AsTheJit
    try:
        yield
    finally:
        codegen.AOTCPUCodegen._customize_tm_features, compiler.Flags = features, flags


def build(name, exports, source_module, check):
    """Compile ``exports`` into the extension module ``name`` in :func:`folder` (numba and a C compiler needed).

    The module is written beside its final name, ``check`` runs it, and
    only then is it moved to its name in one step, so that a process loading
    it never sees half a file (nor an unchecked one), and two builds at once
    leave one whole module.

    Parameters
    ----------
    name : str or None
        From :func:`module_name` (None: this machine's CPU cannot be told).
    exports : callable
        Called once numba is imported: returns a sequence of (str, str,
        function), the name each function takes in the module, its numba
        signature, and the function.
    source_module : str
        The module the functions are defined in.
    check : callable
        ``check(file)`` with the built file: raises ``KernelBuildError``
        when the module does not do what it should.

    Returns
    -------
    pathlib.Path
        The module's file.

    Raises
    ------
    MissingDependencyError
        numba (with ``numba.pycc``) or setuptools is not installed.
    KernelBuildError
        The compilation failed (no C compiler, a folder that cannot be
        written...), the check failed, or the CPU cannot be told.
    """
    if name is None:
        raise KernelBuildError("deepff builds its kernels ahead of time on Linux only, where /proc/cpuinfo names "
                               "the CPU the module is built for; the kernels compile at run time instead")
    for package, needed_for in (("setuptools", "to compile and link the module"), ("numba.pycc", "to compile")):
        try:
            with warnings.catch_warnings():     # numba.pycc is pending deprecation: said in the docs
                warnings.simplefilter("ignore")
                importlib.import_module(package)
        except Exception as exc:  # noqa: BLE001 - absent, or present and broken: either way not there
            raise MissingDependencyError(
                f"building deepff's kernels ahead of time needs {package} {needed_for} "
                f"({type(exc).__name__}: {exc}); install numba and setuptools with "
                'pip install "deepff[fast]"') from exc
    from numba.pycc import CC

    target = path(name)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
            cc = CC(name, source_module=source_module)
            cc.output_dir = tmp
            cc.target_cpu = "host"
            for export, signature, func in exports():
                cc.export(export, signature)(func)
            with warnings.catch_warnings(), _as_the_jit_compiles():
                warnings.simplefilter("ignore")
                cc.compile()
            built = Path(tmp) / (name + _SUFFIX)
            if not built.is_file():
                built = next(Path(tmp).glob(name + ".*"))
            check(built)
            built.chmod(0o755)
            os.replace(built, target)
    except KernelBuildError:
        raise
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
    """The name of the whole step's module for this source, these libraries, this Python and CPU.

    Returns
    -------
    str or None
        :func:`module_name` of ``deepff/_kernel_source.py``, ``deepff/_kernels.py`` and this file; None
        where the CPU cannot be told.
    """
    source = b""
    for file in (_kernel_source.__file__, _kernels.__file__, __file__):
        with open(file, "rb") as f:
            source += f.read()
    return module_name(source)


def _signature(t):
    """numba's signature of a run of whole steps for the float type ``t`` ("f4" or "f8"), gemm addresses first."""
    a1, a2, i1 = f"{t}[::1]", f"{t}[:, ::1]", "i8[::1]"
    return (f"i8(i8[::1], {a2}, {a2}, {a1}, b1, {i1}, i8, {a1}, {a1}, {a1}, {i1}, {i1}, {i1}, {i1}, i8, {a1}, "
            f"f8[::1], i8, i8, {a1}, {a1}, {a1}, {a2}, f8[:, ::1])")


def status():
    """Where the whole step built ahead of time stands here (for ``deepff kernels`` and the benchmarks).

    Returns
    -------
    dict
        "setting" (``DEEPFF_NUMBA``, see :data:`deepff._kernels.SETTINGS`),
        "numba" (its installed version or None), "file" (the module's
        path, None where the CPU cannot be told), "built" (whether the file
        is there) and "code": what a run this step computes takes here,
        "numpy" (``DEEPFF_NUMBA=0``, or neither numba nor a built module),
        "built" or "numba".
    """
    setting = _kernels.setting()
    name = step_module_name()
    file = None if name is None else path(name)
    built = file is not None and file.is_file()
    numba = _version("numba")
    code = "numpy" if setting == "0" else ("built" if built else ("numba" if numba else "numpy"))
    return {"setting": setting, "numba": numba, "file": file, "built": built, "code": code}


_MODULE_FILE = re.compile(r"_deepff_kernels_[0-9a-f]{20}(?:\.[\w-]+)*\.(?:so|pyd)")   # module_name() + a suffix


def stale_modules():
    """The modules in :func:`folder` that this process would not load: built for another :func:`module_name`.

    Every upgrade (or edit of the kernels) leaves the module built before it
    behind, about 1 MB each. The folder may be shared: by other Python
    environments with other versions of the libraries, or by other
    machines (a cluster's nodes with other CPUs under one home folder),
    whose modules are among these too; they build theirs again with
    ``deepff kernels --build``. ``deepff kernels --clean`` deletes this
    user's.

    Only regular files named as :func:`module_name` names modules count
    (not links, not the temporary folder of a build under way). Where this
    machine's module cannot be named (no CPU to tell), none does.

    Returns
    -------
    ours : list of pathlib.Path
        Such modules this user owns, sorted.
    others : list of pathlib.Path
        Such modules other users own (to be left alone), sorted.

    Raises
    ------
    OSError
        The folder exists but cannot be listed.
    """
    name = step_module_name()
    ours, others = [], []
    if name is None:
        return ours, others
    try:
        entries = sorted(folder().iterdir())
    except FileNotFoundError:                   # nothing built yet
        return ours, others
    for file in entries:
        if file == path(name) or not _MODULE_FILE.fullmatch(file.name):
            continue
        try:
            st = file.lstat()
        except FileNotFoundError:               # deleted meanwhile
            continue
        if stat.S_ISREG(st.st_mode):
            (ours if _owned(st) else others).append(file)
    return ours, others


def step(dtype):
    """The run of whole steps compiled ahead of time for ``dtype``, numpy's gemm bound, or None; no numba.

    None inside :func:`deepff._twins.numpy_only`, with ``DEEPFF_NUMBA=0``,
    for a dtype other than float32 and float64, or where
    :func:`build_step` has not built the module for this source, these
    libraries, Python and CPU. The module is looked for once per process
    and folder.

    Parameters
    ----------
    dtype : numpy dtype

    Returns
    -------
    callable or None
        :func:`deepff._kernels.dense_steps_kernel`'s kernel, with the same
        arguments and results. Unlike numba's, it does not check its
        arguments' types: each array must have the dtype, the number of
        dimensions, the C order and the alignment that kernel's docstring
        gives, or the process crashes
        (:class:`deepff._fused_step.FusedStep` checks).
    """
    code = _DTYPES.get(np.dtype(dtype))
    if code is None or _twins.numpy_only_now() or _kernels.setting() == "0":
        return None
    name = step_module_name()
    if name is None:
        return None
    file = path(name)
    if file not in _LOADED:
        _LOADED[file] = load(name)
    module = _LOADED[file]
    return None if module is None else _bound(module, code)


def _bound(module, code):
    """The module's step for ``code`` ("f4" or "f8") with numpy's gemm addresses bound."""
    return functools.partial(getattr(module, "dense_steps_" + code), _blas.gemms())


def _check_digest(kernel_of):
    """A digest of a few steps of the whole step, for numba's kernel and a built one to compare.

    ``kernel_of(code)`` returns the run of steps for "f4" or "f8", gemm
    addresses bound (three steps, in two calls). The steps cover both dtypes, Adam with sample weights (PyTorch's
    rule, sqrt(bc2) < 1), SGD with momentum and an L2 penalty, plain SGD
    inside the products, and Adam with its corrections folded into the
    rate (sqrt(bc2) = 1) on a batch whose weights sum to 0 under a
    per-sample penalty (a division by zero: inf, not an exception).
    """
    h = hashlib.sha256()
    dims = np.array([5, 6, 3], dtype=np.int64)
    woff, boff = np.array([0, 36], dtype=np.int64), np.array([30, 54], dtype=np.int64)
    acts = np.array([3, 0], dtype=np.int64)
    adam = (0.9, 0.1, 0.999, 0.001, 1e-2, 0.001 ** 0.5, 1e-8, 0.0, 1.0, 0, 0, 0)   # step 1: lr / bc1, sqrt(bc2)
    folded = (0.9, 0.1, 0.999, 0.001, 1e-3 * 0.001 ** 0.5 / 0.1, 1.0, 1e-8, 0.0, 1.0, 0, 0, 0)
    momentum = (0.1, 0.9, 1.0, 0.0, 0, 0, 0, 0, 0, 1, 0, 0)
    plain = (0.1, 0.0, 1.0, 0.0, 0, 0, 0, 0, 0, 1, 0, 0)
    for code, dt in (("f4", np.float32), ("f8", np.float64)):
        kernel = kernel_of(code)
        rng = np.random.default_rng(7)
        X = rng.standard_normal((24, 5)).astype(dt)
        Y = np.eye(3, dtype=dt)[rng.integers(0, 3, 24)]
        w = rng.random(24).astype(dt)
        w[16:] = 0
        for opt_code, hyper, l2, per_sample, weighted in ((0, adam, 0.0, 0, True), (1, momentum, 1e-2, 0, False),
                                                          (2, plain, 0.0, 0, False), (0, folded, 1e-2, 1, True)):
            theta = (0.3 * rng.standard_normal(57)).astype(dt)
            grad, states = np.zeros(57, dt), [np.zeros(57, dt) for _ in range(3)]
            mask = np.ones(57, dt)
            mask[[*range(30, 36), *range(54, 57)]] = 0
            scratch = np.zeros(_kernels.step_scratch_size(8, dims.tolist()), dt)
            lossargs = np.array([1.0, 1.0, 2.0 if weighted else 1.0, l2, per_sample, 0, 0, 0], dtype=np.float64)
            order, results = np.arange(24, dtype=np.int64), np.zeros((3, 3))
            # three steps of 8 rows, one call for the first and one for the other two (the last one's code 1)
            for start, k in ((0, 1), (8, 2)):
                done = kernel(X, Y, w, weighted, order[start:], 8, theta, grad, mask, dims, woff, boff, acts, 0,
                              scratch, lossargs, opt_code, 1 if opt_code == 2 else opt_code, *states,
                              np.array([hyper] * k, dtype=dt), results[:k])
                h.update(np.int64(done).tobytes() + results.tobytes())
            h.update(theta.tobytes())
            h.update(lossargs.tobytes())
    return h.hexdigest()


def _digest_of_file(file):
    """:func:`_check_digest` of the module in ``file`` (run in a fresh process by :func:`build_step`'s check)."""
    module = _import(Path(file).name.split(".")[0], file)
    return _check_digest(lambda code: _bound(module, code))


def _same_as_numbas(file):
    """Raise ``KernelBuildError`` unless the module in ``file`` gives numba's step's results to the bit."""
    jit = functools.partial(_kernels.compiled("dense_steps", _kernels.step_function()), _blas.gemms())
    expected = _check_digest(lambda code: jit)
    src = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", "import sys; from deepff import _aot; "
                           "print(_aot._digest_of_file(sys.argv[1]))", str(file)],
                          capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise KernelBuildError(f"the step built ahead of time failed its check in a new process ({detail}); "
                               "it is not installed, and the kernels compile at run time as before")
    if proc.stdout.split()[-1:] != [expected]:
        raise KernelBuildError("the step built ahead of time gives other results than numba's; it is not "
                               "installed, and the kernels compile at run time as before")


def build_step():
    """Compile the whole step for float32 and float64 ahead of time, for :func:`step` in later processes.

    A process that loads the module trains with the compiled step without
    importing numba or LLVM. Building needs numba (with ``numba.pycc``),
    setuptools, a C compiler and up to about a minute; the new module must
    give numba's results to the bit in a fresh process before it is
    installed.

    Returns
    -------
    pathlib.Path
        The module's file.

    Raises
    ------
    MissingDependencyError
        numba, its ``numba.pycc``, or setuptools is not installed.
    KernelBuildError
        The compilation or the check failed, or the CPU cannot be told.
    """
    def exports():
        func = _kernels.step_function()
        return [(f"dense_steps_{t}", _signature(t), func) for t in ("f4", "f8")]

    return build(step_module_name(), exports, _kernels.__name__, _same_as_numbas)
