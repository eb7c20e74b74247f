"""Shared pieces of the property-based tests: example counts and a per-example time limit.

Each property adds one per example (``COUNTS["read_idx"] += 1``);
tests/conftest.py prints the counts at the end of the run, so a run shows how
much it fuzzed, and a shortened run is visible.
"""

import collections
import contextlib
import signal

COUNTS = collections.Counter()
PER_EXAMPLE_SECONDS = 10


class Hang(Exception):
    """An example ran longer than its time limit."""


@contextlib.contextmanager
def time_limit(seconds=PER_EXAMPLE_SECONDS):
    """Fail an example that takes too long (a hang) instead of blocking the suite."""
    if not hasattr(signal, "setitimer"):  # pragma: no cover - Windows
        yield
        return

    def on_alarm(signum, frame):
        raise Hang(f"example still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
