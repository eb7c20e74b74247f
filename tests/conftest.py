"""Suite-wide pytest hooks.

``report_figure`` lets a test put a line in a "figures" section printed at the
end of every run (``pytest -q`` included): measured numbers such as the browser
test's pages, math elements and request counts show in CI's log without ``-s``.
"""

from __future__ import annotations

import pytest

_FIGURES = pytest.StashKey[list]()


def pytest_configure(config):
    config.stash[_FIGURES] = []


@pytest.fixture(scope="session")
def report_figure(pytestconfig):
    """Return ``add(line)``: ``line`` is printed in the "figures" section of the run's summary."""
    return pytestconfig.stash[_FIGURES].append


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    lines = config.stash.get(_FIGURES, [])
    if lines:
        terminalreporter.write_sep("-", "figures")
        for line in lines:
            terminalreporter.write_line(line)
