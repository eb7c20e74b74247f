"""Suite-wide helpers: the count of examples each property-based test ran (tests/_fuzzing.py), printed in
the terminal summary, and the ``kernel_calls`` fixture."""

import collections

import pytest

from _fuzzing import COUNTS


def pytest_terminal_summary(terminalreporter):
    if COUNTS:
        terminalreporter.write_sep("-", "hypothesis examples run")
        for name, n in sorted(COUNTS.items()):
            terminalreporter.write_line(f"{name}: {n}")


@pytest.fixture
def kernel_calls(monkeypatch):
    """Count the calls of every compiled kernel deepff._kernels hands out, by getter name.

    Each getter (``relu_backward_kernel``, ``softmax_kernels``...) is wrapped so
    that the kernels it returns count their calls; a tuple of kernels counts as
    ``name[0]``, ``name[1]``... A test comparing the compiled path with numpy
    uses it to prove the compiled side really ran (not numpy against numpy).
    """
    from deepff import _kernels

    counts = collections.Counter()
    for name in _kernels.__all__:
        getter = getattr(_kernels, name)
        if name.endswith(("_kernel", "_kernels")) and callable(getter):
            monkeypatch.setattr(_kernels, name, _counting_getter(getter, name, counts))
    return counts


def _counting_getter(getter, name, counts):
    def counted(kernel, label):
        def call(*args, **kwargs):
            counts[label] += 1
            return kernel(*args, **kwargs)
        return call

    def patched():
        got = getter()
        if got is None:
            return None
        if isinstance(got, tuple):
            return tuple(counted(k, f"{name}[{i}]") for i, k in enumerate(got))
        return counted(got, name)

    return patched


@pytest.fixture
def kernels_on():
    """Run the test only with deepff's compiled kernels on (tests/_needs.py: fails in CI when numba is missing)."""
    from _needs import require_kernels

    require_kernels()


@pytest.fixture
def mnist_dir():
    """The shared real MNIST folder (tests/_needs.py: skips locally, fails in CI, when it is absent)."""
    from _needs import require_mnist

    return require_mnist()
