"""Where one training epoch's time goes: matrix products against everything else.

Usage::

    python benchmarks/profile_step.py                        # MNIST 784-256-128-10, SGD, batch 128
    python benchmarks/profile_step.py --optimizer adam --batch 32 --epochs 5
    python benchmarks/profile_step.py --quick                # tiny sizes: proves the script works

It trains with the real ``Trainer.fit`` loop and times, around each call,
the network's forward sweep, loss and backward sweep, the optimizer's step,
and inside the sweeps every matrix product (``np.matmul`` as the dense
layers call it). What is left of the epoch is the loop itself: the
mini-batch gather, the accuracy count, the denormal-flush switch and
Python. Each epoch prints one row, in seconds, so the machine's drift from
one epoch to the next stays visible. The timers add about a microsecond per
call, a few percent at batch 32.

``bench.py`` says how fast deepff is; this says why, and what a change
could still gain: the time outside the products is all an engine on this
BLAS can remove.
"""

from __future__ import annotations

import argparse
import time
import types

import bench  # the same data loading as the suite
import numpy as np


class _Timers:
    """Accumulated seconds by name, and wrappers that add to them."""

    def __init__(self):
        self.seconds = {}

    def wrap(self, name, func):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
        return timed


def instrument(runner, timers):
    """Time the sweeps, the step and the layers' matrix products of a ``bench.DeepffRunner``."""
    import deepff.layers

    net, opt = runner.net, runner.trainer.optimizer
    for name in ("forward", "loss_value", "backward"):
        setattr(net, name, timers.wrap(name, getattr(net, name)))
    opt.step = timers.wrap("step", opt.step)
    # the dense layers reach numpy through their module's ``np``: give them one whose
    # matmul is timed (and leave numpy itself alone)
    timed_np = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    timed_np.matmul = timers.wrap("matmul", np.matmul)
    deepff.layers.np = timed_np
    return lambda: setattr(deepff.layers, "np", np)


def profile(sizes, optimizer, lr, batch, epochs, data):
    """Train ``epochs`` epochs after one warm-up; return one dict of seconds per epoch."""
    runner = bench.DeepffRunner(sizes, optimizer, lr, batch, *data)
    runner.epoch()                                       # warm-up: workspaces, kernels, threads
    timers = _Timers()
    restore = instrument(runner, timers)
    rows = []
    try:
        for _ in range(epochs):
            timers.seconds.clear()
            t0 = time.perf_counter()
            runner.epoch()
            total = time.perf_counter() - t0
            s = dict(timers.seconds)
            gemm = s.get("matmul", 0.0)
            sweeps = s.get("forward", 0.0) + s.get("loss_value", 0.0) + s.get("backward", 0.0)
            rows.append({"epoch": total, "matmul": gemm, "sweeps without matmul": sweeps - gemm,
                         "optimizer step": s.get("step", 0.0),
                         "rest of the loop": total - sweeps - s.get("step", 0.0)})
    finally:
        restore()
    return rows


def main(argv=None):
    """Print one row per epoch and the medians."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one epoch (for tests)")
    args = ap.parse_args(argv)
    Xtr, ytr, _, _ = bench.load_data(args.quick)
    lr = 0.1 if args.optimizer == "sgd" else 1e-3
    epochs = 1 if args.quick else args.epochs
    rows = profile([784, 256, 128, 10], args.optimizer, lr, args.batch, epochs, (Xtr, ytr))
    steps = -(-Xtr.shape[0] // args.batch)
    keys = list(rows[0])
    print(f"{args.optimizer} batch {args.batch}, {steps} steps an epoch; seconds per epoch")
    print("| " + " | ".join(keys) + " | outside matmul, us/step |")
    print("|" + "---|" * (len(keys) + 1))
    for r in rows + [{k: float(np.median([r[k] for r in rows])) for k in keys}]:
        per_step = (r["epoch"] - r["matmul"]) / steps * 1e6
        print("| " + " | ".join(f"{r[k]:.3f}" for k in keys) + f" | {per_step:.0f} |")
    print("(last row: medians)")
    return rows


if __name__ == "__main__":
    main()
