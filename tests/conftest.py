"""Suite-wide helpers, printed figures and fixtures.

At the end of every run (``pytest -q`` included) two sections show what was
measured, so that CI's log holds the numbers without ``-s``: "hypothesis
examples run" (the count of examples each property-based test ran,
tests/_fuzzing.py) and "figures" (lines that tests give ``report_figure``,
such as the docs browser test's pages, math elements and request counts).
Fixtures: ``report_figure``, ``kernel_calls``, ``kernels_on``, ``mnist_dir``, and two autouse ones:
short in-process fits take the compiled kernels, and no process finds a step built ahead of time.
"""

import collections

import pytest

from _fuzzing import COUNTS

_FIGURES = pytest.StashKey[list]()


def pytest_configure(config):
    config.stash[_FIGURES] = []


@pytest.fixture(scope="session")
def report_figure(pytestconfig):
    """Return ``add(line)``: ``line`` is printed in the "figures" section of the run's summary."""
    return pytestconfig.stash[_FIGURES].append


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if COUNTS:
        terminalreporter.write_sep("-", "hypothesis examples run")
        for name, n in sorted(COUNTS.items()):
            terminalreporter.write_line(f"{name}: {n}")
    lines = config.stash.get(_FIGURES, [])
    if lines:
        terminalreporter.write_sep("-", "figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True, scope="session")
def _compiled_even_for_short_fits():
    """In-process fits take the compiled kernels (where numba is) however short they are.

    Outside the tests a run too short to win back numba's load trains with
    the numpy code (``deepff._fused_step.LOAD_AFTER_S``); the suite's fits
    are nearly all that short, and they are here to test the compiled path
    as well as the numpy one (which the CI's ``DEEPFF_NUMBA=0`` pass and the
    tests' own switches cover). tests/test_kernel_loading.py checks the
    threshold itself, in fresh processes. Session-wide, so that module
    fixtures' runs (tests/test_checkpoint.py's ``seed5``) take the same code
    as their tests' runs, and not through a test's ``monkeypatch``, whose
    ``undo()`` some tests call halfway.
    """
    from deepff import _fused_step

    saved, _fused_step.LOAD_AFTER_S = _fused_step.LOAD_AFTER_S, 0.0
    yield
    _fused_step.LOAD_AFTER_S = saved


@pytest.fixture(autouse=True, scope="session")
def _no_step_built_ahead_of_time(tmp_path_factory):
    """The suite's processes (subprocesses too) look for kernels built ahead of time in an empty folder.

    A developer who ran ``deepff kernels --build`` has the step in
    ``~/.cache/deepff/kernels``; the suite tests numba's kernels and the numpy
    code unless a test builds its own (tests/test_ahead_of_time.py).
    """
    import os

    from deepff import _aot

    saved = os.environ.get(_aot.ENV)
    os.environ[_aot.ENV] = str(tmp_path_factory.mktemp("no-kernels-built-ahead-of-time"))
    yield
    if saved is None:
        os.environ.pop(_aot.ENV, None)
    else:
        os.environ[_aot.ENV] = saved


@pytest.fixture
def kernel_calls(monkeypatch):
    """Count the calls of every compiled kernel deepff._kernels and deepff._piece_kernels hand out, by getter name.

    Each getter (``relu_backward_kernel``, ``softmax_kernels``...) is wrapped so
    that the kernels it returns count their calls; a tuple of kernels counts as
    ``name[0]``, ``name[1]``... A test comparing the compiled path with numpy
    uses it to prove the compiled side really ran (not numpy against numpy).
    """
    from deepff import _kernels, _piece_kernels

    counts = collections.Counter()
    for module in (_kernels, _piece_kernels):
        for name in module.__all__:
            getter = getattr(module, name)
            if name.endswith(("_kernel", "_kernels")) and callable(getter):
                monkeypatch.setattr(module, name, _counting_getter(getter, name, counts))
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
def compiled_calls(monkeypatch):
    """Count the compiled step's calls and the steps they ran (wrapping the real kernel, one or many a call).

    ``{"calls": ..., "steps": ...}``: a test comparing the compiled step with
    the numpy step uses it to prove which one ran, and how many steps a call.
    """
    from deepff import _kernels

    kernel = _kernels.dense_steps_kernel()
    count = {"calls": 0, "steps": 0}

    def counted(*args):
        done = kernel(*args)
        count["calls"] += 1
        count["steps"] += done
        return done

    monkeypatch.setattr(_kernels, "dense_steps_kernel", lambda: counted)
    return count


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
