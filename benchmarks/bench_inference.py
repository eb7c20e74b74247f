"""Inference speed: deepff against its ONNX export in onnxruntime, PyTorch and scikit-learn, interleaved.

Usage::

    python benchmarks/bench_inference.py                  # full run, Markdown table on stdout
    python benchmarks/bench_inference.py --json out.json  # also write every round as JSON
    python benchmarks/bench_inference.py --quick          # tiny run: proves the script works

One network, 784-256-128-10 (relu, relu, softmax; float32), with the same
weights in every engine: a deepff :class:`~deepff.Network`; its ONNX export
(``deepff.to_onnx``, opset 17) in onnxruntime; ``deepff.to_torch`` of it
(eager PyTorch under ``torch.no_grad``); and scikit-learn's
``MLPClassifier`` holding the same ``coefs_`` next to its deepff.sklearn
twin (``deepff.from_sklearn``). Every engine's probabilities are checked
against deepff's before anything is timed.

Two workloads, on the 10,000 MNIST test images (random pixels with
``--quick`` or without the MNIST files):

* **one row**: ``predict_proba`` of a single (1, 784) row, the way a server
  answers one request: the mean over ``--calls`` calls, cycling through the
  images, in microseconds;
* **throughput**: one call on all 10,000 rows, in rows per second.

Each round runs every engine once on each workload, in turn; after one
warm-up round, ``--rounds`` rounds are timed. Reported: the median over
rounds, and each engine's ratio to deepff's ``Network`` as the median of
the per-round ratios (pairs measured moments apart, so the machine's ups
and downs cancel). Times are process CPU time (wall time is in the JSON):
BLAS, onnxruntime and PyTorch all run on ``--threads`` threads (default 1),
so CPU time is the cost of the call and hardly moves when other programs
share the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
MNIST = ROOT.parent / "shared" / "datasets" / "mnist"
HIDDEN = (256, 128)


def load_images(quick):
    """The 10,000 MNIST test images as float32 in [0, 1] (random pixels when quick or absent), and their source."""
    if quick or not MNIST.exists():
        return np.random.default_rng(0).random((500 if quick else 10000, 784), dtype=np.float32), "random pixels"
    from deepff.datasets import load_mnist

    X = load_mnist(str(MNIST))[2].astype(np.float32)
    X /= 255
    return X, "MNIST test images"


def build_engines(threads):
    """Return {name: predict_proba callable} sharing one set of weights, and the deepff Network."""
    import deepff

    net = deepff.Network([deepff.Dense(HIDDEN[0], "relu"), deepff.Dense(HIDDEN[1], "relu"),
                          deepff.Dense(10, "softmax")], loss="neg_log_likelihood", n_features=784, seed=0)
    engines = {"deepff Network": net.predict_proba}
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(deepff.onnx.to_onnx(net).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    engines["onnxruntime"] = lambda X: session.run(["probabilities"], {"X": X})[0]
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: its column is left out", file=sys.stderr)
    else:
        torch.set_num_threads(threads)
        seq = deepff.to_torch(net)

        def torch_proba(X):
            with torch.no_grad():
                return seq(torch.from_numpy(X)).numpy()

        engines["PyTorch"] = torch_proba
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(0)
    sk = MLPClassifier(HIDDEN, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # one epoch on random rows: only the shapes matter
        sk.fit(rng.random((50, 784), dtype=np.float32), np.arange(50) % 10)
    sk.coefs_ = [layer.W.copy() for layer in net.layers]            # the same weights as the others
    sk.intercepts_ = [layer.b.reshape(-1).copy() for layer in net.layers]
    engines["scikit-learn"] = sk.predict_proba
    engines["deepff.sklearn"] = deepff.from_sklearn(sk).predict_proba
    return engines, net


def check_same(engines, X):
    """Every engine's probabilities equal deepff's (float32 rounding aside)."""
    ref = engines["deepff Network"](X)
    for name, f in engines.items():
        diff = float(np.max(np.abs(np.asarray(f(X), dtype=np.float64) - ref)))
        if diff > 1e-5:
            raise SystemExit(f"{name} disagrees with deepff by {diff:.2e}: the timings would compare different models")


def time_round(engines, X, calls):
    """One round: every engine's one-row latency (us/call) and throughput (rows/s), CPU and wall."""
    rows = [X[i % len(X):i % len(X) + 1] for i in range(calls)]
    out = {}
    for name, f in engines.items():
        c0, w0 = time.process_time(), time.perf_counter()
        for r in rows:
            f(r)
        c1, w1 = time.process_time(), time.perf_counter()
        f(X)
        c2, w2 = time.process_time(), time.perf_counter()
        out[name] = {"one_row_us": (c1 - c0) / calls * 1e6, "one_row_us_wall": (w1 - w0) / calls * 1e6,
                     "rows_per_s": len(X) / max(c2 - c1, 1e-9), "rows_per_s_wall": len(X) / max(w2 - w1, 1e-9)}
    return out


def summarise(rounds, names):
    """Medians and per-round ratios to deepff's Network."""
    base = "deepff Network"
    result = {}
    for name in names:
        one = [r[name]["one_row_us"] for r in rounds]
        thr = [r[name]["rows_per_s"] for r in rounds]
        result[name] = {
            "one_row_us": statistics.median(one),
            "rows_per_s": statistics.median(thr),
            "one_row_vs_deepff": statistics.median(r[name]["one_row_us"] / r[base]["one_row_us"] for r in rounds),
            "throughput_vs_deepff": statistics.median(r[name]["rows_per_s"] / r[base]["rows_per_s"] for r in rounds),
        }
    if "scikit-learn" in names and "deepff.sklearn" in names:
        result["deepff.sklearn"]["one_row_vs_scikit_learn"] = statistics.median(
            r["deepff.sklearn"]["one_row_us"] / r["scikit-learn"]["one_row_us"] for r in rounds)
    return result


def table(summary, source, n_rows, calls, rounds, threads):
    lines = [f"{source}, {n_rows} rows; network 784-{HIDDEN[0]}-{HIDDEN[1]}-10 float32; {threads} thread(s); "
             f"median of {rounds} rounds (process CPU time); one row = mean of {calls} calls", "",
             "| engine | one row (us) | x deepff | rows/s (all rows in one call) | x deepff |",
             "|---|---:|---:|---:|---:|"]
    for name, s in summary.items():
        lines.append(f"| {name} | {s['one_row_us']:.1f} | {s['one_row_vs_deepff']:.2f} | {s['rows_per_s']:,.0f} "
                     f"| {s['throughput_vs_deepff']:.2f} |")
    if "one_row_vs_scikit_learn" in summary.get("deepff.sklearn", {}):
        lines += ["", "one row, deepff.sklearn / scikit-learn: "
                  f"{summary['deepff.sklearn']['one_row_vs_scikit_learn']:.2f} (below 1: deepff's drop-in is faster)"]
    return "\n".join(lines)


def main(argv=None):
    """Run the benchmark; return the summary dict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run: proves the script works")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 15; 2 with --quick)")
    parser.add_argument("--calls", type=int, default=None, help="one-row calls per round (default 500; 20 quick)")
    parser.add_argument("--threads", type=int, default=1, help="threads for BLAS, onnxruntime and PyTorch")
    parser.add_argument("--json", help="write the summary and every round to this file")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 15)
    calls = args.calls or (20 if args.quick else 500)
    from threadpoolctl import threadpool_limits

    X, source = load_images(args.quick)
    with threadpool_limits(args.threads):
        engines, _ = build_engines(args.threads)
        check_same(engines, X[:256])
        time_round(engines, X, calls)                                    # warm-up
        records = [time_round(engines, X, calls) for _ in range(rounds)]
    summary = summarise(records, list(engines))
    print(table(summary, source, len(X), calls, rounds, args.threads))
    if args.json:
        import onnxruntime

        machine = {"python": platform.python_version(), "numpy": np.__version__,
                   "onnxruntime": onnxruntime.__version__, "processor": platform.processor() or platform.machine()}
        Path(args.json).write_text(json.dumps({"summary": summary, "rounds": records, "machine": machine,
                                               "data": source, "calls": calls, "threads": args.threads}, indent=1))
    return summary


if __name__ == "__main__":
    main()
