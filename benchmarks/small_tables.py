"""deepff train's defaults against scikit-learn's MLP defaults on the small tables scikit-learn ships.

Each table (iris, wine, breast cancer, digits: classification; diabetes:
regression) is written to a CSV with its target as the last column and
trained with ``deepff train --dataset T.csv --target -1`` and no other flag.
scikit-learn's MLPClassifier / MLPRegressor, with every default, is fitted
on the same training rows (deepff's own split: seed 0, 20% held out),
standardised by StandardScaler as scikit-learn's user guide asks for MLPs,
and scored on the same test rows. Scores: test accuracy (%) for
classification, R^2 x 100 for regression. Times are wall-clock seconds of
the fit (deepff: the whole command, reading the CSV included).

Run: ``python benchmarks/small_tables.py [--seeds N]`` (seeds of both
libraries' initialisation; the split stays deepff's seed 0).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
import warnings

import numpy as np


def tables():
    from sklearn import datasets

    return {
        "iris": (datasets.load_iris(return_X_y=True), "classification"),
        "wine": (datasets.load_wine(return_X_y=True), "classification"),
        "breast_cancer": (datasets.load_breast_cancer(return_X_y=True), "classification"),
        "diabetes": (datasets.load_diabetes(return_X_y=True), "regression"),
        "digits": (datasets.load_digits(return_X_y=True), "classification"),
    }


def deepff_run(csv, folder, seed):
    """``deepff train`` with its defaults; returns (score, seconds, epochs)."""
    from deepff import cli, load

    out, history = os.path.join(folder, "m.npz"), os.path.join(folder, "h.json")
    argv = ["train", "--dataset", csv, "--target", "-1", "--quiet", "--output", out, "--seed", str(seed),
            "--history", history]
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rc = cli.main(argv)
    seconds = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"deepff train failed on {csv} (exit {rc})")
    model = load(out)
    results = model.metadata["results"]
    score = results["test_accuracy"] if "test_accuracy" in results else results["test_r2"]
    with open(history) as fh:
        epochs = len(json.load(fh))
    return 100 * score, seconds, epochs


def split_of(csv, seed=0):
    """The rows deepff trains and tests on (its own loader and split)."""
    from deepff.data import load_dataset

    data = load_dataset(csv, target=-1, seed=seed, test_fraction=0.2)
    return data.X_train, np.asarray(data.y_train), data.X_test, np.asarray(data.y_test)


def sklearn_run(X_train, y_train, X_test, y_test, task, seed):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    mlp = MLPClassifier(random_state=seed) if task == "classification" else MLPRegressor(random_state=seed)
    model = make_pipeline(StandardScaler(), mlp)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    seconds = time.perf_counter() - t0
    return 100 * model.score(X_test, y_test), seconds, mlp.n_iter_


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="initialisation seeds per library (default 3)")
    parser.add_argument("--tables", default=None, help="comma-separated subset, e.g. iris,diabetes (default all)")
    args = parser.parse_args(argv)
    chosen = tables()
    if args.tables:
        chosen = {name: chosen[name] for name in args.tables.split(",")}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, ((X, y), task) in chosen.items():
            csv = os.path.join(folder, f"{name}.csv")
            header = ",".join([f"x{i}" for i in range(X.shape[1])] + ["target"])
            fmt = ["%.10g"] * X.shape[1] + (["%d"] if task == "classification" else ["%.10g"])
            np.savetxt(csv, np.c_[X, y], delimiter=",", header=header, comments="", fmt=fmt)
            split = split_of(csv)
            d_scores, d_times, d_epochs, s_scores, s_times, s_iters = [], [], [], [], [], []
            for seed in range(args.seeds):
                score, seconds, epochs = deepff_run(csv, folder, seed)
                d_scores.append(score)
                d_times.append(seconds)
                d_epochs.append(epochs)
                score, seconds, n_iter = sklearn_run(*split, task, seed)
                s_scores.append(score)
                s_times.append(seconds)
                s_iters.append(n_iter)
            rows.append((name, task, split[0].shape[0], split[2].shape[0], np.mean(d_scores), np.mean(d_times),
                         d_epochs, np.mean(s_scores), np.mean(s_times), s_iters))
    metric = "accuracy % (R^2 x 100 for diabetes)"
    print(f"mean over {args.seeds} seeds; score: test {metric}")
    print("| table | task | train/test rows | deepff score | deepff s | deepff epochs | sklearn score | sklearn s "
          "| sklearn epochs | deepff - sklearn |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, task, n_tr, n_te, ds, dt, de, ss, st, si in rows:
        print(f"| {name} | {task} | {n_tr}/{n_te} | {ds:.1f} | {dt:.2f} | {','.join(map(str, de))} | {ss:.1f} | "
              f"{st:.2f} | {','.join(map(str, si))} | {ds - ss:+.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
