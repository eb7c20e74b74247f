"""How close deepff.sklearn's fits are to scikit-learn's, in float64: loss curves and weights.

Usage::

    python benchmarks/sklearn_parity.py          # 5 solvers x 5 tasks, 40 epochs each (about a minute)
    python benchmarks/sklearn_parity.py --quick  # 2 epochs, for the test suite

For each solver setting (adam; sgd with a constant, invscaling and adaptive
rate; lbfgs) and task (digits multi-class, binary and multi-label; a
regression with one and with two outputs), both estimators are fitted with
the same parameters (hidden layers (30, 15), alpha 1e-3, random_state 0).
It prints the largest relative difference of the loss curve (``loss_`` for
L-BFGS) and of the weights (max |ours - theirs| / max |theirs| per array),
and the worst per setting. L-BFGS with two outputs is left out: scikit-learn
minimises the mean over outputs there while following the gradient of their
sum (docs/sklearn.md). The tests assert 1e-10 (1e-9 for L-BFGS) on their own
cases; this script reports the figures.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from sklearn import neural_network as skn
from sklearn.datasets import load_digits, make_regression
from sklearn.preprocessing import StandardScaler

import deepff.sklearn as dsk

SETTINGS = [("adam", None), ("sgd", "constant"), ("sgd", "invscaling"), ("sgd", "adaptive"), ("lbfgs", None)]


def tasks():
    """(name, X, y) of the five tasks."""
    X, y = load_digits(return_X_y=True)
    X, y = StandardScaler().fit_transform(X)[:600], y[:600]
    Xr, yr = make_regression(400, 10, n_targets=2, noise=3, random_state=0)
    yr = yr / yr.std()
    return [("multiclass", X, y), ("binary", X, y % 2), ("multilabel", X, np.stack([y % 2, y > 4], 1).astype(int)),
            ("regression", Xr, yr[:, 0]), ("two outputs", Xr, yr)]


def compare(solver, rate, name, X, y, epochs):
    """(loss-curve difference, weight difference, n_iter_) of one setting on one task."""
    regression = name in ("regression", "two outputs")
    kw = {"hidden_layer_sizes": (30, 15), "solver": solver, "random_state": 0, "alpha": 1e-3, "max_iter": epochs}
    if rate:
        kw["learning_rate"] = rate
    if solver == "sgd":
        kw["learning_rate_init"] = 0.01 if regression else 0.05
    if rate == "adaptive":
        kw.update(tol=1e-2, n_iter_no_change=2)
    kind = "MLPRegressor" if regression else "MLPClassifier"
    theirs, ours = getattr(skn, kind)(**kw).fit(X, y), getattr(dsk, kind)(**kw).fit(X, y)
    if ours.n_iter_ != theirs.n_iter_:
        raise AssertionError(f"{solver} {rate} {name}: {ours.n_iter_} epochs against {theirs.n_iter_}")
    a = np.asarray(getattr(theirs, "loss_curve_", [theirs.loss_]))
    b = np.asarray(getattr(ours, "loss_curve_", [ours.loss_]))
    curve = float(np.max(np.abs(a - b) / np.abs(a)))
    weights = max(float(np.max(np.abs(p - q)) / np.max(np.abs(p)))
                  for p, q in zip(theirs.coefs_ + theirs.intercepts_, ours.coefs_ + ours.intercepts_))
    return curve, weights, theirs.n_iter_


def main(argv=None):
    """Print one line per setting and task, then the worst difference per setting; return the worst."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 epochs (for the test suite)")
    args = ap.parse_args(argv)
    epochs = 2 if args.quick else 40
    worst = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # ConvergenceWarnings, on both sides alike
        for solver, rate in SETTINGS:
            key = solver if rate is None else f"{solver}/{rate}"
            for name, X, y in tasks():
                if solver == "lbfgs" and name == "two outputs":
                    continue
                curve, weights, n_iter = compare(solver, rate, name, X, y, epochs)
                worst[key] = max(worst.get(key, 0.0), curve, weights)
                print(f"{key:16s} {name:12s} epochs {n_iter:3d}  loss curve {curve:.1e}  weights {weights:.1e}")
    print("worst relative difference per setting: " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    return worst


if __name__ == "__main__":
    main()
