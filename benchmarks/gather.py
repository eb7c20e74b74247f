"""What the compiled step's gather of a batch's rows costs, with and without asking for the rows ahead.

Usage::

    python benchmarks/gather.py                 # MNIST's training set, batches 32, 128 and 512
    python benchmarks/gather.py --rounds 7
    python benchmarks/gather.py --quick         # tiny sizes: proves the script works

Each step of the compiled step (``deepff._kernels.dense_step_kernel``) first
copies its batch's rows of X and Y into a buffer, ``x = X[idx]``. In a
shuffled epoch the rows come from anywhere in X (188 MB for MNIST in
float32), so mostly from main memory, and a plain loop copies them one
after the other: each row's first loads wait for memory before the next
row is asked for. The engine's gather asks for each row's cache lines
``GATHER_AHEAD`` rows before it copies it (a prefetch), so that several rows
are on their way at once.

Five gathers of every batch of one shuffled epoch are timed, each in one
compiled loop (no Python between batches), in microseconds a batch:

* **engine**: the engine's own compiled gather;
* **plain copy**: the same copy without the prefetches (the engine's gather
  before them);
* **from cache**: the engine's gather of the same rows every step, which
  are then in the caches: what the copy itself costs;
* **plain copy from cache**: the same for the plain copy, so that what the
  prefetches cost where the rows are in cache already (a small training
  set) shows beside what they save;
* **shared**: what the step runs, the engine's gather with half of each
  batch's rows copied by the worker thread of numpy's OpenBLAS
  (``deepff._kernel_source._gather``; on one thread where that pool is not
  found, or the batch is under ``SHARE_MIN`` values).

The five take turns in each round; the table gives medians of the rounds.
Needs numba (the engine's gather is compiled just in time here; the step
built ahead of time has the same code).
"""

from __future__ import annotations

import argparse
import statistics
import time

import bench  # the training set as the benchmarks load it
import numpy as np

_LOOPS = {}


def loops():
    """The compiled loops over an epoch's batches, ``{"engine": f, "plain copy": f}`` (imports numba).

    Each ``f(X, Y, order, bs, x, y)`` gathers ``X[order[s:s + bs]]`` and the
    same rows of Y into x and y for every batch start s of ``order``.
    """
    if _LOOPS:
        return _LOOPS
    from numba import njit

    from deepff import _kernel_source, _kernels

    _kernels.step_function()                # compiles the engine's callees, its gather among them
    gather, gather_shared = _kernel_source._nb_gather_rows, _kernel_source._nb_gather

    @njit(nogil=True)
    def plain(X, Y, idx, x, y):
        for r in range(idx.shape[0]):
            src = idx[r]
            for c in range(X.shape[1]):
                x[r, c] = X[src, c]
            for c in range(Y.shape[1]):
                y[r, c] = Y[src, c]

    @njit(nogil=True)
    def engine_epoch(X, Y, order, bs, x, y):
        for s in range(0, order.shape[0] - bs + 1, bs):
            gather(X, Y, order[s:s + bs], x, y)

    @njit(nogil=True)
    def plain_epoch(X, Y, order, bs, x, y):
        for s in range(0, order.shape[0] - bs + 1, bs):
            plain(X, Y, order[s:s + bs], x, y)

    @njit(nogil=True)
    def shared_epoch(blas, X, Y, order, bs, x, y):
        for s in range(0, order.shape[0] - bs + 1, bs):
            gather_shared(blas, X, Y, order[s:s + bs], x, y)

    _LOOPS.update({"engine": engine_epoch, "plain copy": plain_epoch, "shared": shared_epoch})
    return _LOOPS


def measure(X, Y, batch, rounds, seed=0):
    """Microseconds a batch of the five gathers (medians of ``rounds``), and whether their rows were right.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
    Y : ndarray of shape (n_rows, n_outputs)
        C-contiguous, of one dtype.
    batch : int
    rounds : int
    seed : int, default 0

    Returns
    -------
    dict
        ``{"batch", "engine us", "plain copy us", "from cache us", "plain copy from cache us", "shared us",
        "engine / plain copy", "shared / engine", "rows right"}``.
    """
    f = loops()
    rng = np.random.default_rng(seed)
    steps = X.shape[0] // batch
    x = np.empty((batch, X.shape[1]), X.dtype)
    y = np.empty((batch, Y.shape[1]), Y.dtype)
    same = np.tile(rng.permutation(X.shape[0])[:batch], steps)
    from deepff import _blas

    blas = _blas.gemms()
    runs = {"engine": [], "plain copy": [], "from cache": [], "plain copy from cache": [], "shared": []}
    for name in ("engine", "plain copy"):
        f[name](X, Y, same[:batch], batch, x, y)                 # compiled before the clock starts
    f["shared"](blas, X, Y, same[:batch], batch, x, y)
    right = True
    for _ in range(rounds):
        for name in runs:
            order = same if name.endswith("from cache") else rng.permutation(X.shape[0])[:steps * batch]
            fn = f["plain copy" if name.startswith("plain copy") else "engine"]
            t = time.perf_counter()
            if name == "shared":
                f["shared"](blas, X, Y, order, batch, x, y)
            else:
                fn(X, Y, order, batch, x, y)
            runs[name].append((time.perf_counter() - t) / steps * 1e6)
            last = order[(steps - 1) * batch:]                   # the buffer holds the last batch's rows
            right = right and np.array_equal(x, X[last]) and np.array_equal(y, Y[last])
    row = {"batch": batch, **{name + " us": statistics.median(t) for name, t in runs.items()}}
    row["engine / plain copy"] = statistics.median(a / b for a, b in zip(runs["engine"], runs["plain copy"]))
    row["shared / engine"] = statistics.median(a / b for a, b in zip(runs["shared"], runs["engine"]))
    row["rows right"] = right
    return row


def main(argv=None):
    """Print the table; return its rows (None without numba)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, two rounds (for tests)")
    args = parser.parse_args(argv)
    from deepff import _kernels

    if not _kernels.enabled():
        print("the engine's gather is compiled by numba, which is not installed (or DEEPFF_NUMBA=0)")
        return None
    X, y, _, _ = bench.load_data(args.quick)
    Y = np.eye(10, dtype=X.dtype)[y]                               # one-hot targets, as the engine's step gets
    batches, rounds = ((32, 128), 2) if args.quick else ((32, 128, 512), args.rounds)
    print(f"data: {'random ' if args.quick else ''}{X.shape[0]} x {X.shape[1]} {X.dtype}, "
          f"{_kernels.GATHER_AHEAD} rows ahead; medians of {rounds} rounds, microseconds a batch")
    rows = [measure(X, Y, b, rounds) for b in batches]
    print("| batch | engine | plain copy | from cache | plain copy from cache | engine / plain copy | shared "
          "| shared / engine |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['batch']} | {r['engine us']:.1f} | {r['plain copy us']:.1f} | {r['from cache us']:.1f} "
              f"| {r['plain copy from cache us']:.1f} | {r['engine / plain copy']:.2f} | {r['shared us']:.1f} "
              f"| {r['shared / engine']:.2f} |")
        if not r["rows right"]:
            print(f"error: batch {r['batch']}: the gathered rows are not X[idx]")
    return rows


if __name__ == "__main__":
    main()
