"""What Adam's pass costs right after the first layer's products, with the cores on one L3 and on two dies.

Usage::

    python benchmarks/pass_after_products.py                 # 120 s of rounds
    python benchmarks/pass_after_products.py --seconds 600   # longer, to meet both placements
    python benchmarks/pass_after_products.py --quick         # tiny sizes, one round (for tests)

At batch 32 on split cores (``benchmarks/cores.py``) an Adam epoch of the
MNIST network took 2.3 x the gemm floor, against 1.25-1.35 x with the two
cores on one L3 (docs/performance.md). This script takes the step apart
where that time goes. It builds the bench network's 235,146 float32
parameters and Adam's state as the engine does (page-staggered buffers,
``deepff.params.staggered_zeros``), with the first layer's 784 x 256
weights and their gradient at the start of the flat buffers, and times,
microseconds an iteration (100 iterations after 10 unmeasured):

* ``products``: the first layer's forward product ``a = x W`` (x: 32 x 784,
  read from ``theta``) and its weight gradient ``dW = x^T g`` (written into
  ``grad``), through numpy's OpenBLAS on its threads, as in a step;
* ``+ shared pass``: the same, then the engine's own update
  (``deepff._kernel_source._update``) with OpenBLAS's worker running half
  of the pass (the step's way, ``SHARE_MIN``);
* ``+ one-thread pass``: the same, the whole pass on this thread;
* ``forward``, ``backward``: one product alone, and each followed by the
  shared pass;
* ``shared pass alone``, ``one-thread pass alone``: no product before it.

Each round probes the placement before and after it
(:func:`cores.cross_core_read`); a round with both probes above
``SPLIT_AT`` counts as split, one with both at or below it as shared, the rest are
left out. The table gives each column's median over the rounds of each
kind. Needs numba and numpy's OpenBLAS with its pool
(``deepff._blas.gemms``), and two cores to probe.

On the benchmark machine the shared pass took about 50 us alone on either
placement, 56 us after the products on one L3 and 294 us after them split,
most of it after the forward product: OpenBLAS splits that product by W's
columns and the pass by W's rows, so each core writes lines the other
has just read (docs/performance.md, "Why Adam at batch 32 slows down on
split cores").
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

COLUMNS = ("products", "+ shared pass", "+ one-thread pass", "forward", "forward + shared pass", "backward",
           "backward + shared pass", "shared pass alone", "one-thread pass alone")


def _setup(quick):
    """``({column: function running one iteration}, whether numpy's OpenBLAS lends its pool)``."""
    import shared_pass

    from deepff import _blas
    from deepff.params import staggered_zeros

    fn = shared_pass.update()
    shared = _blas.gemms()
    one = shared[:3].copy()                         # the gemm addresses without the pool's
    d, k, batch, n = (64, 64, 8, 40000) if quick else (784, 256, 32, 235146)
    arrays, code, hyper = shared_pass._problem("adam", n)
    staggered = [staggered_zeros(a.shape[0], a.dtype, i) for i, a in enumerate(arrays)]   # as the engine's
    for into, a in zip(staggered, arrays):
        into[:] = a
    arrays = staggered
    theta, grad = arrays[0], arrays[1]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((batch, d)).astype(np.float32)
    g = (rng.standard_normal((batch, k)) * 0.01).astype(np.float32)
    a = np.empty((batch, k), np.float32)
    W, dW = theta[:d * k].reshape(d, k), grad[:d * k].reshape(d, k)

    def forward():
        np.matmul(x, W, out=a)

    def backward():
        np.matmul(x.T, g, out=dW)

    def shared_pass_():
        fn(shared, *arrays, code, hyper)

    def one_pass():
        fn(one, *arrays, code, hyper)

    parts = {"products": (forward, backward), "+ shared pass": (forward, backward, shared_pass_),
             "+ one-thread pass": (forward, backward, one_pass), "forward": (forward,),
             "forward + shared pass": (forward, shared_pass_), "backward": (backward,),
             "backward + shared pass": (backward, shared_pass_), "shared pass alone": (shared_pass_,),
             "one-thread pass alone": (one_pass,)}
    return {name: _chain(fs) for name, fs in parts.items()}, shared[3] != 0


def _chain(fs):
    def run():
        for f in fs:
            f()
    return run


def _time(run, reps):
    for _ in range(10):
        run()
    t = time.perf_counter()
    for _ in range(reps):
        run()
    return (time.perf_counter() - t) / reps * 1e6


def main(argv=None):
    """Print each round and the table; return ``{"shared": {column: us}, "split": {...}, "rounds": [...]}``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one round (for tests)")
    args = ap.parse_args(argv)
    import cores

    from deepff import _kernels

    if not _kernels.enabled():
        print("the engine's update is compiled by numba, which is not installed (or DEEPFF_NUMBA=0)")
        return None
    runs, pool = _setup(args.quick)
    if not pool:
        print("numpy's OpenBLAS pool was NOT found: the 'shared' columns run on one thread")
    reps = 5 if args.quick else 100
    rounds = []
    end = time.monotonic() + args.seconds
    while True:
        before = cores.cross_core_read()
        row = {name: _time(run, reps) for name, run in runs.items()}
        after = cores.cross_core_read()
        row["probes"] = (before, after)
        rounds.append(row)
        print(f"{time.strftime('%H:%M:%S')} probes {_fmt(before)} {_fmt(after)} | "
              + " | ".join(f"{name} {row[name]:.0f}" for name in COLUMNS), flush=True)
        if args.quick or time.monotonic() >= end:
            break
    summary = {"rounds": rounds}
    print("| cores | rounds | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for kind in ("shared", "split"):
        mine = [r for r in rounds if _kind(r["probes"]) == kind]
        if not mine:
            continue
        summary[kind] = {name: statistics.median(r[name] for r in mine) for name in COLUMNS}
        print(f"| {kind} | {len(mine)} | " + " | ".join(f"{summary[kind][name]:.0f}" for name in COLUMNS) + " |")
    return summary


def _kind(probes):
    import cores

    if None in probes:
        return None
    if min(probes) > cores.SPLIT_AT:
        return "split"
    if max(probes) <= cores.SPLIT_AT:
        return "shared"
    return None


def _fmt(ratio):
    return "-" if ratio is None else f"{ratio:.2f}"


if __name__ == "__main__":
    main()
