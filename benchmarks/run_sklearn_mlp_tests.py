"""Run scikit-learn's own MLP tests against deepff.sklearn.

scikit-learn ships ``sklearn/neural_network/tests/test_mlp.py`` with the
library. This script copies the installed file into a scratch directory
(nothing of it is kept in this repository), points its import of
``MLPClassifier`` / ``MLPRegressor`` at ``deepff.sklearn``, adds the
``global_random_seed`` fixture that scikit-learn's conftest provides (the
seeds of ``SKLEARN_TESTS_GLOBAL_RANDOM_SEED``, default 42) and runs pytest on
it. The pass count and the failures are printed by pytest; the reasons for
the tests that cannot pass are listed in docs/sklearn.md.

Usage::

    python benchmarks/run_sklearn_mlp_tests.py [--keep DIR] [pytest args...]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"
CONFTEST = '''import os

import pytest


def _seeds():
    spec = os.environ.get("SKLEARN_TESTS_GLOBAL_RANDOM_SEED", "42")
    if "-" in spec:
        low, high = (int(v) for v in spec.split("-"))
        return list(range(low, high + 1))
    return [int(v) for v in spec.split(",")]


@pytest.fixture(params=_seeds())
def global_random_seed(request):
    return request.param
'''


def installed_test_file():
    """Path of the installed scikit-learn's test_mlp.py."""
    import sklearn

    path = Path(sklearn.__file__).parent / "neural_network" / "tests" / "test_mlp.py"
    if not path.is_file():
        raise SystemExit(f"{path} not found: this scikit-learn was installed without its tests")
    return path


def prepare(directory):
    """Write the rewritten test file and the seed fixture into ``directory``; return the test file's path."""
    source = installed_test_file().read_text()
    if IMPORT not in source:
        raise SystemExit(f"the installed test_mlp.py no longer contains {IMPORT!r}; update this script")
    source = source.replace(IMPORT, "from deepff.sklearn import MLPClassifier, MLPRegressor")
    target = Path(directory) / "test_mlp_deepff.py"
    target.write_text(source)
    (Path(directory) / "conftest.py").write_text(CONFTEST)
    return target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", metavar="DIR", help="write the files into DIR and keep them")
    args, pytest_args = parser.parse_known_args(argv)
    directory = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="deepff-sklearn-tests-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        target = prepare(directory)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", str(target), *pytest_args]
        return subprocess.run(cmd, cwd=directory).returncode
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
