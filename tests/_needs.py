"""Optional areas of the suite: they skip on a developer's machine, and fail in CI.

An area of the suite that needs something optional (PyTorch for parity, numba for
the compiled kernels, the shared MNIST files, a browser, MPI, onnxruntime) must
not go quiet in CI: where ``CI`` is set to a true value, a missing requirement
is a failure naming the area, not a skip. Locally the test skips and the reason
shows in pytest's summary (``-ra`` is on in pyproject.toml).

Use at module level (the whole file needs it)::

    torch = require_module("torch", area="PyTorch parity")

or inside a test::

    require(MNIST_DIR.is_dir(), area="MNIST", reason=f"no MNIST copy in {MNIST_DIR}")
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def missing(area, reason):
    """Skip (locally) or fail (in CI) because ``area`` cannot run, saying ``reason``."""
    message = f"{area} cannot run: {reason}"
    if IN_CI:
        pytest.fail(f"CI must cover {message}", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require(condition, area, reason):
    """Go on when ``condition`` holds; otherwise skip locally or fail in CI."""
    if not condition:
        missing(area, reason)


def require_module(name, area):
    """Import and return module ``name``; skip locally or fail in CI when it cannot be imported.

    Any exception from the import counts (a package that installs but fails to
    import, as a numba built for another numpy does, is as missing as an absent one).
    """
    try:
        return importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any import failure means the area cannot run
        missing(area, f"{name} cannot be imported ({type(exc).__name__}: {exc})")


KERNELS = "compiled kernels (numba)"
MNIST = "MNIST data"
# CI clones the project into some folder with shared/ beside it: go through the repository root's parent.
MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist"
MNIST_GZ = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz")


def require_kernels():
    """Go on when deepff's compiled kernels are on; otherwise skip locally or fail in CI.

    ``DEEPFF_NUMBA=0`` is the user's switch, not a fault: with it the kernel
    tests skip even in CI (.ci/run's numpy-only pass sets it on purpose).
    Without it, a numba that cannot be imported (absent or broken) is a
    missing area like any other.
    """
    from deepff import _kernels

    if os.environ.get("DEEPFF_NUMBA", "1") == "0":
        pytest.skip("compiled kernels switched off by DEEPFF_NUMBA=0", allow_module_level=True)
    require_module("numba", area=KERNELS)
    require(_kernels.enabled(), area=KERNELS, reason="numba imports but deepff._kernels.enabled() is False")


def require_mnist():
    """Return the shared MNIST folder; skip locally or fail in CI when one of its four files is absent."""
    absent = [name for name in MNIST_GZ if not (MNIST_DIR / name).is_file()]
    require(not absent, area=MNIST, reason=f"{', '.join(absent)} not found in {MNIST_DIR} (the shared data folder "
            "beside the repository)")
    return MNIST_DIR
