"""Examples run by the suite's property-based tests, counted for the terminal summary.

Each property adds one per example (``COUNTS["read_idx"] += 1``);
tests/conftest.py prints the counts at the end of the run, so a run shows how
much it fuzzed, and a shortened run is visible.
"""

import collections

COUNTS = collections.Counter()
