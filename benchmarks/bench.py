"""deepff against PyTorch (eager, CPU) and scikit-learn, interleaved in one run.

Usage::

    python benchmarks/bench.py                   # full suite, table on stdout
    python benchmarks/bench.py --json out.json   # also write the results (and every round) as JSON
    python benchmarks/bench.py --quick           # tiny sizes: proves the script works

Every workload is run by each available implementation in turn (A B C A B C
...) for ``--rounds`` rounds after one warm-up round, and the table reports
medians, and deepff/peer ratios (below 1 means deepff is faster) taken as
the median over rounds of the ratio within each round, which pairs
measurements made moments apart. The
"gemm floor" is the time numpy's BLAS needs for just the matrix products
of one epoch of the same network (3 forward, 3 weight-gradient and 2
input-gradient products per step): no engine can train faster than that.
It takes its turn in the same rounds, so the machine's ups and downs hit
it as they hit the engines. The last column, floor/sklearn, is therefore the
lowest deepff/sklearn ratio any engine on this BLAS could reach, since
scikit-learn runs the same products.

Two more deepff columns take their turns in the same rounds:
``deepff-numpy-step`` is ``Network.fit``'s engine with the compiled whole
step switched off (``deepff._fused_step.ENABLED = False``: the numpy step
with its per-piece kernels, what ``Network.fit`` ran before the step became
the engine's fast path), so deepff/deepff-numpy-step is the step's gain,
before and after in one run; ``deepff-sklearn`` is the scikit-learn drop-in
(``deepff.sklearn.MLPClassifier`` with the same network, optimizer and
batch, one epoch per ``partial_fit``). Two ratios place the drop-in:
sklearn-drop-in/deepff against the engine run on arrays checked once
(``deepff``), and sklearn-drop-in/Network.fit against ``deepff-fit``,
``Network.fit`` called for one epoch at a time with ``warm_start``, which
checks X and y on every call as each ``partial_fit`` does: the drop-in's
own cost, call for call. ``floor/torch`` is the
lowest deepff/torch any engine on this BLAS could reach.

Each timed run starts after ``--quiet-gap`` seconds (default 0.3) of idle:
BLAS and OpenMP pools keep their worker threads spinning for a while after
their last call (OpenBLAS about 0.1 s), and the implementations here use
four pools (numpy's OpenBLAS, scipy's OpenBLAS for numba's products,
PyTorch's OpenMP and its BLAS). Without the gap, whichever runs right after
another pool's spell shares the cores with its spinning threads: on the
2-core Intel machine an epoch at batch 128 ran 10-15% slower right after
the floor than after a pause, and the floor as much slower right after
deepff. ``--quiet-gap 0`` gives the earlier, order-dependent method.

Whether the machine was quiet: the gemm floor does the same products every
round, so its slowest round over its fastest ("floor spread", per workload,
in the JSON) measures how far the machine's speed swung during the
workload. On the 2-core virtual machines it can change by a third for tens
of seconds at a time, and the engines' single-threaded work between
products by far more (up to 3 x for an Adam step at batch 32, see
docs/performance.md). The report ends with the largest spread and a
warning naming every workload whose floor spread exceeds ``QUIET_SPREAD``:
the ratios pair runs made moments apart, but a swing inside a round still
moves them, so such a run does not measure "a quiet machine". The swings
have a cause that can be seen: the host running the two virtual cores on
dies with separate L3 caches. ``cores.cross_core_read`` probes that before
each round and after the last ("cross-core reads" in the JSON); a round
with a probe over ``cores.SPLIT_AT`` on either side counts as split, and the
warning names those workloads too. ``--wait-shared S`` lets each round wait
up to S seconds, probing once a second, until the cores share an L3 (a
spell that starts inside the round still counts).

Workloads: MNIST 784-256-128-10 (SGD lr 0.1 and Adam lr 1e-3) at batch 32,
128 and 512; the wide 784-2048-2048-10 at batch 256 (SGD); inference over
the 10,000 test images; ``import deepff`` time; peak RSS of one MNIST
training epoch in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from cores import SPLIT_AT, cross_core_read

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "datasets" / "mnist"


# ------------------------------------------------------------------- data
def load_data(quick):
    """Return (X_train, y_train, X_test, y_test) as float32 in [0, 1] / int64."""
    if quick or not MNIST.exists():
        rng = np.random.default_rng(0)
        n, d = (512, 784) if quick else (60000, 784)
        X = rng.random((n, d), dtype=np.float32)
        y = rng.integers(0, 10, n)
        return X, y, X[:256].copy(), y[:256].copy()
    from deepff.data import load_mnist

    Xtr, ytr, Xte, yte = load_mnist(str(MNIST))
    Xtr, Xte = Xtr.astype(np.float32), Xte.astype(np.float32)
    Xtr /= 255  # in place: no second float32 copy of the training set
    Xte /= 255
    return Xtr, ytr, Xte, yte


# -------------------------------------------------------------- runners
def _network(sizes, seed=0):
    """deepff's network of the workload: ReLU hidden layers, softmax + negative log-likelihood, float32."""
    import deepff

    layers = [deepff.Dense(n, "relu") for n in sizes[1:-1]] + [deepff.Dense(sizes[-1], "softmax")]
    return deepff.Network(layers, loss="neg_log_likelihood", n_features=sizes[0], seed=seed)


class DeepffRunner:
    """One deepff network trained epoch by epoch."""

    name = "deepff"

    def __init__(self, sizes, optimizer, lr, batch, X, y):
        from deepff import Trainer

        self.net = _network(sizes)
        self.X = self.net.prepare_inputs(X)
        self.Y = self.net.prepare_targets(y, X.shape[0])
        self.trainer = Trainer(self.net, optimizer={"name": optimizer, "lr": lr}, epochs=1, batch_size=batch)
        self.trainer.epochs = 0

    def epoch(self):
        self.trainer.epochs = self.trainer.epoch + 1
        self.trainer.fit(self.X, self.Y)

    def infer(self, X):
        return self.net.predict_output(X)


class DeepffNumpyStepRunner(DeepffRunner):
    """The same, with the compiled whole step switched off: the numpy step and its per-piece kernels."""

    name = "deepff-numpy-step"

    def epoch(self):
        from deepff import _fused_step

        _fused_step.ENABLED = False
        try:
            super().epoch()
        finally:
            _fused_step.ENABLED = True


class TorchRunner:
    """The same network in PyTorch eager mode, its fastest optimizer setting."""

    name = "torch"

    def __init__(self, sizes, optimizer, lr, batch, X, y):
        import torch

        torch.manual_seed(0)
        mods = []
        for i in range(len(sizes) - 1):
            mods.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                mods.append(torch.nn.ReLU())
        self.torch = torch
        self.model = torch.nn.Sequential(*mods)
        if optimizer == "adam":
            self.opt = torch.optim.Adam(self.model.parameters(), lr=lr, fused=True)
        else:
            self.opt = torch.optim.SGD(self.model.parameters(), lr=lr)
        self.loss = torch.nn.CrossEntropyLoss()
        self.X = torch.from_numpy(X)
        self.y = torch.from_numpy(y.astype(np.int64))
        self.batch = batch
        self.gen = torch.Generator().manual_seed(0)

    def epoch(self):
        torch = self.torch
        n = self.X.shape[0]
        order = torch.randperm(n, generator=self.gen)
        for start in range(0, n, self.batch):
            idx = order[start:start + self.batch]
            xb, yb = self.X[idx], self.y[idx]
            self.opt.zero_grad(set_to_none=True)
            out = self.model(xb)
            loss = self.loss(out, yb)
            loss.backward()
            self.opt.step()

    def infer(self, X):
        with self.torch.inference_mode():
            return self.torch.softmax(self.model(self.torch.from_numpy(X)), dim=1).numpy()


class SklearnRunner:
    """scikit-learn's MLPClassifier, one epoch per partial_fit call."""

    name = "sklearn"

    def __init__(self, sizes, optimizer, lr, batch, X, y):
        from sklearn.neural_network import MLPClassifier

        self.model = MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), solver=optimizer,
                                   learning_rate_init=lr, batch_size=batch, momentum=0.0,
                                   alpha=0.0, random_state=0)
        self.X, self.y = X, y
        self.classes = np.arange(sizes[-1])

    def epoch(self):
        self.model.partial_fit(self.X, self.y, classes=self.classes)

    def infer(self, X):
        return self.model.predict_proba(X)


class DeepffSklearnRunner(SklearnRunner):
    """deepff.sklearn.MLPClassifier with the network, optimizer and batch of DeepffRunner (one partial_fit an epoch)."""

    name = "deepff-sklearn"

    def __init__(self, sizes, optimizer, lr, batch, X, y):
        from deepff.sklearn import MLPClassifier

        super().__init__(sizes, optimizer, lr, batch, X, y)
        self.model = MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), solver={"name": optimizer, "lr": lr},
                                   batch_size=batch, alpha=0.0, random_state=0)


class DeepffFitRunner:
    """``Network.fit`` itself, one epoch a call (``warm_start`` keeps the optimizer's state).

    Unlike :class:`DeepffRunner`, which hands the trainer arrays it checked
    once, every call checks X and y (finite values, one-hot labels) as a
    user's call does, like every ``partial_fit`` of the drop-in: the two
    calls do the same work around the same engine.
    """

    name = "deepff-fit"

    def __init__(self, sizes, optimizer, lr, batch, X, y):
        self.net = _network(sizes)
        self.X, self.y, self.batch = X, y, batch
        self.optimizer = {"name": optimizer, "lr": lr}

    def epoch(self):
        if self.optimizer is None:      # the batch size is a setting of each call, not kept
            self.net.fit(self.X, self.y, epochs=1, batch_size=self.batch, warm_start=True)
        else:
            self.net.fit(self.X, self.y, epochs=1, batch_size=self.batch, optimizer=self.optimizer)
            self.optimizer = None

    def infer(self, X):
        return self.net.predict_output(X)


class GemmFloor:
    """The matrix products alone of one epoch of the same network (numpy's BLAS).

    It is run as one more "implementation" in the interleaved rounds, so it
    sees the same machine state as the engines it is compared with.
    """

    name = "floor"

    def __init__(self, sizes, optimizer, lr, batch, X, y, dtype=np.float32):
        rng = np.random.default_rng(0)
        self.Ws = [rng.standard_normal((sizes[i], sizes[i + 1]), dtype=dtype) for i in range(len(sizes) - 1)]
        self.dWs = [np.empty_like(W) for W in self.Ws]
        x = rng.standard_normal((batch, sizes[0]), dtype=dtype)
        self.hs = [x] + [np.empty((batch, s), dtype) for s in sizes[1:]]
        self.gs = [np.empty((batch, s), dtype) for s in sizes]
        self.steps = -(-X.shape[0] // batch)

    def epoch(self):
        Ws, dWs, hs, gs = self.Ws, self.dWs, self.hs, self.gs
        for _ in range(self.steps):
            for i, W in enumerate(Ws):                      # forward: a = h W
                np.matmul(hs[i], W, out=hs[i + 1])
            gs[-1][...] = hs[-1]
            for i in range(len(Ws) - 1, -1, -1):             # backward
                np.matmul(hs[i].T, gs[i + 1], out=dWs[i])   # dW = h^T g
                if i > 0:
                    np.matmul(gs[i + 1], Ws[i].T, out=gs[i])  # g W^T


def available(name):
    try:
        __import__(name)
        return True
    except Exception:
        return False


RUNNERS = [DeepffRunner, DeepffNumpyStepRunner, DeepffFitRunner, DeepffSklearnRunner, TorchRunner, SklearnRunner]


QUIET_GAP = 0.3
"""Seconds of idle before each timed run (``--quiet-gap``): other pools' spinning threads go to sleep."""


WAIT_SHARED = 0.0
"""Seconds each round may wait for the two cores to share a last-level cache (``--wait-shared``; 0: none)."""


QUIET_SPREAD = 1.25
"""The gemm floor's slowest round over its fastest above which a workload ran on a machine that was not quiet."""


def quiet_report(results):
    """Lines for the report: the largest floor spread, the rounds run on split cores, and a warning.

    Parameters
    ----------
    results : list of dict
        The table's rows; the training workloads carry ``"floor spread"``
        and, where the cores could be probed, ``"split rounds"``.

    Returns
    -------
    list of str
        Empty when no workload has a spread (no training workload ran). The
        warning names each workload whose floor spread exceeds
        :data:`QUIET_SPREAD` or that had a round on split cores.
    """
    rows = [r for r in results if "floor spread" in r]
    if not rows:
        return []
    top = max(rows, key=lambda r: r["floor spread"])
    lines = [f"the machine's swings: the gemm floor's slowest round was {top['floor spread']:.2f} x its fastest "
             f"at most ({top['workload']})"]
    probed = [r for r in rows if "split rounds" in r]
    if probed:
        waits = [r["waited for shared cores (s)"] for r in probed if "waited for shared cores (s)" in r]
        lines.append(f"the cores: split across last-level caches around {sum(r['split rounds'] for r in probed)} "
                     f"of {sum(len(r['rounds']['floor']) for r in probed)} rounds (benchmarks/cores.py)"
                     + (f"; the rounds waited {sum(waits):.0f} s in all for them to share one" if waits else ""))
    loud = []
    for r in rows:
        why = [f"spread {r['floor spread']:.2f}"] if r["floor spread"] > QUIET_SPREAD else []
        if r.get("split rounds"):
            why.append(f"{r['split rounds']} of {len(r['rounds']['floor'])} rounds split")
        if why:
            loud.append(f"{r['workload']} ({', '.join(why)})")
    if loud:
        lines.append(f"warning: the machine was not quiet: the gemm floor, the same products every round, varied by "
                     f"more than {QUIET_SPREAD}, or the cores were split, in " + ", ".join(loud) + "; a swing "
                     "inside a round moves the paired ratios too, so rerun these workloads (--only) to measure a "
                     "quiet machine")
    return lines


def probe_cores(wait):
    """Probe where the two cores are; while they are split, probe again each second, for up to ``wait`` seconds.

    Parameters
    ----------
    wait : float
        Seconds to wait at most for the cores to share a last-level cache
        (0: probe once).

    Returns
    -------
    ratio : float or None
        The last :func:`cores.cross_core_read` (None: the cores cannot be probed).
    waited : float
        Seconds spent waiting.
    """
    ratio, waited = cross_core_read(), 0.0
    while ratio is not None and ratio > SPLIT_AT and waited < wait:
        time.sleep(1.0)
        waited += 1.0
        ratio = cross_core_read()
    return ratio, waited


def run_training(label, sizes, optimizer, lr, batch, data, rounds, peers):
    """Interleave one epoch per implementation per round; return medians (s)."""
    X, y = data
    runners = [R(sizes, optimizer, lr, batch, X, y) for R in RUNNERS + [GemmFloor]
               if R.name in peers or R is GemmFloor]
    times = {r.name: [] for r in runners}
    probes = []     # cross_core_read before each timed round and after the last
    waited = 0.0
    for rnd in range(rounds + 1):
        if rnd > 0:
            ratio, w = probe_cores(WAIT_SHARED)
            probes.append(ratio)
            waited += w
        for r in runners:
            time.sleep(QUIET_GAP)
            t0 = time.perf_counter()
            r.epoch()
            dt = time.perf_counter() - t0
            if rnd > 0:  # round 0 warms up caches, workspaces and thread pools
                times[r.name].append(dt)
    probes.append(cross_core_read())
    result = {"workload": label, "rounds": times}   # every round's seconds, for the JSON
    if None not in probes:   # a round counts as split when the probe before or after it found the cores apart
        result["cross-core reads"] = probes
        result["split rounds"] = sum(max(a, b) > SPLIT_AT for a, b in zip(probes, probes[1:]))
        if WAIT_SHARED > 0:
            result["waited for shared cores (s)"] = waited
    result.update({name: statistics.median(v) for name, v in times.items()})
    result["floor spread"] = max(times["floor"]) / min(times["floor"])   # the machine's swing (quiet_report)
    # paired ratios: deepff against each peer within the same round, then the median
    result["ratios"] = {name: statistics.median(d / o for d, o in zip(times["deepff"], v))
                        for name, v in times.items() if name != "deepff" and "deepff" in times}
    if "sklearn" in times:
        # the best deepff/sklearn any engine on this BLAS could reach: one with nothing
        # but the matrix products (scikit-learn runs the same products)
        result["floor/sklearn"] = statistics.median(
            f / s for f, s in zip(times["floor"], times["sklearn"]))
    if "torch" in times:
        result["floor/torch"] = statistics.median(f / t for f, t in zip(times["floor"], times["torch"]))
    if "deepff-sklearn" in times:   # the drop-in against Network.fit's engine on the same network
        result["sklearn-drop-in/deepff"] = statistics.median(
            k / d for k, d in zip(times["deepff-sklearn"], times["deepff"]))
    if "deepff-sklearn" in times and "deepff-fit" in times:   # ... and against Network.fit, call for call
        result["sklearn-drop-in/Network.fit"] = statistics.median(
            k / d for k, d in zip(times["deepff-sklearn"], times["deepff-fit"]))
    return result


def run_inference(data, test, rounds, peers, sizes):
    X, y = data
    runners = [R(sizes, "sgd", 0.1, 128, X[:1024], y[:1024]) for R in RUNNERS if R.name in peers]
    for r in runners:
        r.epoch()
    times = {r.name: [] for r in runners}
    for rnd in range(rounds + 1):
        for r in runners:
            time.sleep(QUIET_GAP)
            t0 = time.perf_counter()
            r.infer(test)
            dt = time.perf_counter() - t0
            if rnd > 0:
                times[r.name].append(dt)
    result = {"workload": f"inference {test.shape[0]} images", "floor": None}
    result.update({name: statistics.median(v) for name, v in times.items()})
    return result


def import_time(rounds):
    """Median wall time of ``python -c 'import deepff'`` minus bare interpreter start."""
    def run(code):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - t0

    base = statistics.median(run("pass") for _ in range(rounds))
    full = statistics.median(run("import deepff") for _ in range(rounds))
    return {"workload": "import deepff (s)", "deepff": full - base, "floor": None}


_RSS_SCRIPT = r"""
import sys, numpy as np
sys.path.insert(0, {bench!r})
import bench
data = bench.load_data({quick})
r = [R for R in bench.RUNNERS if R.name == {name!r}][0]([784, 256, 128, 10], "adam", 1e-3, 128, data[0], data[1])
r.epoch()
# VmHWM, not ru_maxrss: the latter survives exec and would report the parent's peak
peak = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
print(bench.kernel_info() if r.name == "deepff" else "-")   # read after the peak: it imports deepff
print(peak)
"""


def peak_rss(peers, quick):
    """Peak resident memory (MiB) of one MNIST epoch in a fresh process.

    Returns the table's row and the compiled code deepff's process took
    (:func:`kernel_info` there): a source edited, or a module built or
    deleted, since this process started makes it differ from the timed runs'.
    """
    result = {"workload": "peak RSS, MNIST epoch (MiB)", "floor": None}
    kernels = None
    for name in peers:
        code = _RSS_SCRIPT.format(bench=str(Path(__file__).parent), quick=quick, name=name)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        *_, info, peak = out.stdout.strip().splitlines()
        result[name] = int(peak) / 1024
        if name == "deepff":
            kernels = info
    return result, kernels


def kernels_warning(timed, measured):
    """A line for the report where the peak-RSS process took other compiled code than the timed runs, else None."""
    if measured is None or measured == timed:
        return None
    return (f"warning: the peak-RSS process took {measured}, not the timed runs' code: the kernels' source, "
            "or the built module, changed during this run, so its RSS figure does not describe them")


def kernel_info():
    """Which compiled code deepff's runs take here: the step built ahead of time, numba's, or the numpy code."""
    from deepff import _aot

    s = _aot.status()
    return {"built": f"the whole step built ahead of time ({s['file']}; numba is not loaded for it)",
            "numba": f"numba {s['numba']}'s kernels (compiled, or loaded from numba's cache, in each process)",
            "numpy": "the numpy code (DEEPFF_NUMBA=0, or numba not installed)"}[s["code"]]


def blas_info():
    try:
        from threadpoolctl import threadpool_info

        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        return [{k: i.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                for i in info]
    except Exception as exc:  # threadpoolctl missing
        return [{"error": str(exc)}]


EXTRA_RATIOS = ("floor/torch", "floor/sklearn", "sklearn-drop-in/deepff", "sklearn-drop-in/Network.fit")


def format_table(results, peers):
    head = ["workload"] + peers + ["gemm floor"] + [f"deepff/{p}" for p in peers if p != "deepff"]
    head += ["deepff/floor"]
    extras = [k for k in EXTRA_RATIOS if any(k in r for r in results)]
    head += extras
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r["workload"]]
        for p in peers:
            cells.append(f"{r[p]:.3f}" if r.get(p) is not None else "-")
        cells.append(f"{r['floor']:.3f}" if r.get("floor") else "-")
        ratios = r.get("ratios", {})
        for p in peers + ["floor"]:
            if p == "deepff":
                continue
            if p in ratios:
                cells.append(f"{ratios[p]:.2f}")
            else:
                ok = r.get(p) and r.get("deepff")
                cells.append(f"{r['deepff'] / r[p]:.2f}" if ok else "-")
        cells += [f"{r[k]:.2f}" if k in r else "-" for k in extras]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    """Run the suite and print the table."""
    global QUIET_GAP, WAIT_SHARED
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one round (for tests)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", help="write results to this JSON file")
    ap.add_argument("--only", help="comma-separated workload filter (substring match)")
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--quiet-gap", type=float, default=QUIET_GAP,
                    help="seconds of idle before each timed run (0: none, the order-dependent method)")
    ap.add_argument("--wait-shared", type=float, default=WAIT_SHARED,
                    help="seconds each round may wait, probing once a second, for the two cores to share a "
                         "last-level cache (benchmarks/cores.py; default 0: probe, do not wait)")
    args = ap.parse_args(argv)
    QUIET_GAP = 0.0 if args.quick else args.quiet_gap
    WAIT_SHARED = args.wait_shared
    rounds = 1 if args.quick else args.rounds
    peers = ["deepff", "deepff-numpy-step"] + (["deepff-fit", "deepff-sklearn"] if available("sklearn") else [])
    peers += [p for p in ("torch", "sklearn") if available(p)]
    Xtr, ytr, Xte, yte = load_data(args.quick)
    data = (Xtr, ytr)
    mnist = [784, 256, 128, 10]
    wide = [784, 2048, 2048, 10] if not args.quick else [784, 64, 64, 10]
    workloads = []
    for batch in (32, 128, 512):
        workloads.append((f"epoch sgd b{batch}", mnist, "sgd", 0.1, batch))
        workloads.append((f"epoch adam b{batch}", mnist, "adam", 1e-3, batch))
    workloads.append(("epoch wide sgd b256", wide, "sgd", 0.1, 256))
    results = []
    for label, sizes, opt, lr, batch in workloads:
        if args.only and not any(s in label for s in args.only.split(",")):
            continue
        wl_peers = [p for p in peers if not (p in ("sklearn", "deepff-sklearn", "deepff-fit") and "wide" in label)]
        r = run_training(label, sizes, opt, lr, batch, data, rounds, wl_peers)
        results.append(r)
        print(format_table([r], peers).splitlines()[-1], flush=True)
    if not args.only or "infer" in args.only:
        results.append(run_inference(data, Xte, rounds * 4,
                                     [p for p in peers if p not in ("deepff-numpy-step", "deepff-fit")], mnist))
    if not args.only or "import" in args.only:
        results.append(import_time(3 if args.quick else 7))
    rss_kernels = None
    if not args.no_rss and (not args.only or "rss" in args.only):
        row, rss_kernels = peak_rss([p for p in peers if p in ("deepff", "torch", "sklearn")], args.quick)
        results.append(row)
    report = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                          "numpy": np.__version__, "blas": blas_info(), "kernels": kernel_info(),
                          "rss_kernels": rss_kernels},
              "rounds": rounds, "results": results}
    print()
    print(f"machine: {os.cpu_count()} cpus, numpy {np.__version__}, BLAS {report['machine']['blas']}")
    print(f"deepff's kernels: {report['machine']['kernels']}")
    warning = kernels_warning(report["machine"]["kernels"], rss_kernels)
    if warning:
        print(warning)
    print(f"medians of {rounds} interleaved rounds, seconds per epoch unless stated")
    print(format_table(results, peers))
    for line in quiet_report(results):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
