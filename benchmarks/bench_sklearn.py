"""deepff.sklearn against scikit-learn's own MLPs, same hyperparameters on both sides.

Usage::

    python benchmarks/bench_sklearn.py                 # full run, Markdown table on stdout
    python benchmarks/bench_sklearn.py --json out.json # also write the results as JSON
    python benchmarks/bench_sklearn.py --json -        # JSON on stdout instead of the table
    python benchmarks/bench_sklearn.py --quick         # tiny run: proves the script works

Data: scikit-learn's bundled digits, iris, breast cancer and wine
(classification, accuracy) and diabetes (regression, R^2). For every seed
the data are split 75/25 (stratified for classification) with that seed,
X is standardised with a StandardScaler fit on the training split (and so
is y for diabetes: R^2 does not change, the default learning rate then
suits the target), and both estimators are built with scikit-learn's
default hyperparameters (``hidden_layer_sizes=(100,)``, relu, adam with
``learning_rate_init=1e-3``, ``batch_size="auto"``, ``max_iter=200``,
``tol=1e-4``) and ``random_state=seed``.

Timing: one warm-up fit per implementation first (imports, numba's cached
kernels); then, for every seed, the two fits alternate ``--repeats`` times
and the fastest of each is kept. Both the process CPU time and the wall
time are recorded; the speed-up reported is the CPU-time ratio
(scikit-learn / deepff, summed over the seeds), which is what the fit costs
and is far less sensitive than wall time to other programs sharing the
machine. BLAS runs on ``--threads`` threads (default 1) on both sides.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DATASETS = {  # name: (loader, task)
    "digits": ("load_digits", "classification"),
    "iris": ("load_iris", "classification"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "wine": ("load_wine", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}
TARGET_POINTS = {"classification": 1.5, "regression": 0.03}  # allowed score deficit
TARGET_SPEEDUP = 3.0


def load(name, seed, quick):
    """Return standardised (X_train, X_test, y_train, y_test) for one seed."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    loader, task = DATASETS[name]
    X, y = getattr(datasets, loader)(return_X_y=True)
    if quick:
        X, y = X[:150], y[:150]
    stratify = y if task == "classification" else None
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=stratify)
    scaler = StandardScaler().fit(Xtr)
    Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
    if task == "regression":
        mu, sd = ytr.mean(), ytr.std()
        ytr, yte = (ytr - mu) / sd, (yte - mu) / sd
    return Xtr, Xte, ytr, yte


def make(impl, task, seed, quick):
    """An unfitted estimator of one implementation ("sklearn" or "deepff")."""
    if impl == "sklearn":
        from sklearn.neural_network import MLPClassifier, MLPRegressor
    else:
        from deepff.sklearn import MLPClassifier, MLPRegressor
    cls = MLPClassifier if task == "classification" else MLPRegressor
    params = {"random_state": seed}
    if quick:
        params.update(hidden_layer_sizes=(16,), max_iter=5)
    return cls(**params)


def timed_fit(est, X, y):
    """Fit; return (cpu seconds, wall seconds)."""
    c0, w0 = time.process_time(), time.perf_counter()
    est.fit(X, y)
    return time.process_time() - c0, time.perf_counter() - w0


def run_dataset(name, seeds, repeats, quick):
    """Scores and times of both implementations on one data set, over the seeds."""
    task = DATASETS[name][1]
    out = {"dataset": name, "task": task, "metric": "accuracy" if task == "classification" else "r2",
           "seeds": list(seeds), "sklearn": {"score": [], "cpu": [], "wall": [], "n_iter": []},
           "deepff": {"score": [], "cpu": [], "wall": [], "n_iter": []}}
    for seed in seeds:
        Xtr, Xte, ytr, yte = load(name, seed, quick)
        out["shape"] = list(Xtr.shape)
        best = {"sklearn": None, "deepff": None}
        for _ in range(repeats):
            for impl in ("sklearn", "deepff"):
                est = make(impl, task, seed, quick)
                cpu, wall = timed_fit(est, Xtr, ytr)
                if best[impl] is None or cpu < best[impl][0]:
                    best[impl] = (cpu, wall, est)
        for impl, (cpu, wall, est) in best.items():
            rec = out[impl]
            rec["score"].append(float(est.score(Xte, yte)))
            rec["cpu"].append(cpu)
            rec["wall"].append(wall)
            rec["n_iter"].append(int(est.n_iter_))
    for impl in ("sklearn", "deepff"):
        rec = out[impl]
        rec["mean_score"] = statistics.fmean(rec["score"])
        rec["cpu_total"] = sum(rec["cpu"])
        rec["wall_total"] = sum(rec["wall"])
    out["speedup_cpu"] = out["sklearn"]["cpu_total"] / out["deepff"]["cpu_total"]
    out["speedup_wall"] = out["sklearn"]["wall_total"] / out["deepff"]["wall_total"]
    scale = 100.0 if task == "classification" else 1.0
    out["score_delta"] = (out["deepff"]["mean_score"] - out["sklearn"]["mean_score"]) * scale
    out["score_ok"] = out["score_delta"] >= -TARGET_POINTS[task]
    return out


def geomean(values):
    """Geometric mean of positive numbers."""
    return math.exp(statistics.fmean(math.log(v) for v in values))


def markdown(results, summary):
    """The results as a Markdown table plus a summary line."""
    lines = [
        "| data set | train shape | metric | scikit-learn | deepff | delta | sklearn fit CPU s | deepff fit CPU s "
        "| speed-up (CPU) | speed-up (wall) | epochs (sk / deepff) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        pct = r["task"] == "classification"
        fmt = (lambda v: f"{100 * v:.2f}%") if pct else (lambda v: f"{v:.4f}")
        delta = f"{r['score_delta']:+.2f} pt" if pct else f"{r['score_delta']:+.4f}"
        sk, df = r["sklearn"], r["deepff"]
        lines.append(
            f"| {r['dataset']} | {r['shape'][0]} x {r['shape'][1]} | {r['metric']} | {fmt(sk['mean_score'])} "
            f"| {fmt(df['mean_score'])} | {delta} | {sk['cpu_total']:.3f} | {df['cpu_total']:.3f} "
            f"| {r['speedup_cpu']:.2f}x | {r['speedup_wall']:.2f}x "
            f"| {statistics.fmean(sk['n_iter']):.0f} / {statistics.fmean(df['n_iter']):.0f} |"
        )
    lines.append("")
    lines.append(
        f"Geometric mean speed-up: **{summary['geomean_speedup_cpu']:.2f}x** CPU time "
        f"({summary['geomean_speedup_wall']:.2f}x wall time) over {len(results)} data sets, "
        f"{summary['n_seeds']} seeds each; scores within target on every data set: "
        f"{'yes' if summary['scores_ok'] else 'NO'}; speed-up target {TARGET_SPEEDUP:g}x: "
        f"{'met' if summary['speedup_ok'] else 'not met'}."
    )
    return "\n".join(lines)


def main(argv=None):
    """Run the benchmark; print a Markdown table (or JSON) and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one seed: proves the script works")
    parser.add_argument("--json", nargs="?", const="-", metavar="PATH",
                        help="write the results as JSON to PATH ('-' or no PATH: stdout, instead of the table)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3, quick 1)")
    parser.add_argument("--repeats", type=int, default=None, help="timed fits per seed and side (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads on both sides (default 1)")
    parser.add_argument("--datasets", nargs="*", choices=sorted(DATASETS), default=list(DATASETS))
    args = parser.parse_args(argv)
    n_seeds = args.seeds or (1 if args.quick else 3)
    repeats = args.repeats or (1 if args.quick else 2)

    from threadpoolctl import threadpool_info, threadpool_limits

    warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter is expected on both sides
    for impl in ("sklearn", "deepff"):  # warm-up: imports, numba kernels, and every BLAS library loaded
        Xtr, _, ytr, _ = load("iris", 0, True)
        make(impl, "classification", 0, True).fit(Xtr, ytr)
    # the limit reaches only the libraries loaded by now: numpy's BLAS, and scipy's, which
    # deepff's compiled step calls through numba
    with threadpool_limits(args.threads):
        blas = [{k: info[k] for k in ("internal_api", "filepath", "num_threads")}
                for info in threadpool_info() if info["user_api"] == "blas"]
        results = [run_dataset(name, range(n_seeds), repeats, args.quick) for name in args.datasets]

    import sklearn

    import deepff

    summary = {
        "geomean_speedup_cpu": geomean([r["speedup_cpu"] for r in results]),
        "geomean_speedup_wall": geomean([r["speedup_wall"] for r in results]),
        "scores_ok": all(r["score_ok"] for r in results),
        "n_seeds": n_seeds,
        "repeats": repeats,
        "threads": args.threads,
        "blas": blas,
        "quick": args.quick,
        "versions": {"deepff": deepff.__version__, "sklearn": sklearn.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
    }
    summary["speedup_ok"] = summary["geomean_speedup_cpu"] >= TARGET_SPEEDUP
    payload = {"results": results, "summary": summary}
    if args.json == "-":
        json.dump(payload, sys.stdout, indent=2)
        print()
    else:
        print(markdown(results, summary))
        if args.json:
            Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    return payload


if __name__ == "__main__":
    main()
