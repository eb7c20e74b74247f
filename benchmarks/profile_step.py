"""Where one training epoch's time goes: matrix products against everything else.

Usage::

    python benchmarks/profile_step.py                        # MNIST 784-256-128-10, SGD, batch 128
    python benchmarks/profile_step.py --optimizer adam --batch 32 --epochs 5
    python benchmarks/profile_step.py --quick                # tiny sizes: proves the script works
    python benchmarks/profile_step.py --step compiled        # the engine's compiled whole step

It trains with the real ``Trainer.fit`` loop and times, around each call,
the network's forward sweep, loss and backward sweep, the optimizer's step,
and inside the sweeps every matrix product (``np.matmul`` as the dense
layers call it). What is left of the epoch is the loop itself: the
mini-batch gather, the accuracy count, the denormal-flush switch and
Python. Each epoch prints one row, in seconds, so the machine's drift from
one epoch to the next stays visible. The timers add about a microsecond per
call, a few percent at batch 32.

With ``--step compiled`` (what ``Trainer.fit`` runs for this network when
numba is installed; the default ``--step numpy`` switches it off to show the
numpy step's parts) a step is one call, timed whole, and the matrix
products inside it cannot be timed apart: the row then gives the GEMM floor
(``bench.GemmFloor``, the same products in numpy, timed right after the
epoch) in their place, and "step outside the products" is the compiled call
minus that floor.

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


def _timed_epochs(runner, epochs, timers, row):
    """Run ``epochs`` epochs; ``row(total_seconds, timers.seconds)`` makes each epoch's row."""
    rows = []
    for _ in range(epochs):
        timers.seconds.clear()
        t0 = time.perf_counter()
        runner.epoch()
        rows.append(row(time.perf_counter() - t0, dict(timers.seconds)))
    return rows


def profile_compiled(sizes, optimizer, lr, batch, epochs, data):
    """As :func:`profile`, for the compiled whole step: the call timed whole, the GEMM floor beside it."""
    from deepff import _fused_step

    runner = bench.DeepffRunner(sizes, optimizer, lr, batch, *data)
    floor = bench.GemmFloor(sizes, optimizer, lr, batch, *data)
    runner.epoch()                                       # warm-up: the kernel loaded, threads started
    floor.epoch()
    timers = _Timers()
    call = _fused_step.FusedStep.steps                   # the compiled calls (many steps each, or one)
    _fused_step.FusedStep.steps = timers.wrap("compiled step", call)

    def row(total, s):
        t0 = time.perf_counter()
        floor.epoch()                                    # the same products in numpy, right after
        gemm = time.perf_counter() - t0
        step = s.get("compiled step", 0.0)
        if not step:
            raise RuntimeError("the compiled step did not run: is numba installed and DEEPFF_NUMBA not 0?")
        return {"epoch": total, "gemm floor": gemm, "step outside the products": step - gemm,
                "rest of the loop": total - step}

    try:
        return _timed_epochs(runner, epochs, timers, row)
    finally:
        _fused_step.FusedStep.steps = call


def profile(sizes, optimizer, lr, batch, epochs, data):
    """Train ``epochs`` epochs after one warm-up; return one dict of seconds per epoch (the numpy step)."""
    from deepff import _fused_step

    _fused_step.ENABLED = False
    runner = bench.DeepffRunner(sizes, optimizer, lr, batch, *data)
    runner.epoch()                                       # warm-up: workspaces, kernels, threads
    timers = _Timers()
    restore = instrument(runner, timers)

    def row(total, s):
        gemm = s.get("matmul", 0.0)
        sweeps = s.get("forward", 0.0) + s.get("loss_value", 0.0) + s.get("backward", 0.0)
        return {"epoch": total, "matmul": gemm, "sweeps without matmul": sweeps - gemm,
                "optimizer step": s.get("step", 0.0), "rest of the loop": total - sweeps - s.get("step", 0.0)}

    try:
        return _timed_epochs(runner, epochs, timers, row)
    finally:
        restore()
        _fused_step.ENABLED = True


def main(argv=None):
    """Print one row per epoch and the medians."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one epoch (for tests)")
    ap.add_argument("--step", choices=("numpy", "compiled"), default="numpy",
                    help="the numpy step, its parts timed (default), or the compiled whole step")
    args = ap.parse_args(argv)
    Xtr, ytr, _, _ = bench.load_data(args.quick)
    lr = 0.1 if args.optimizer == "sgd" else 1e-3
    epochs = 1 if args.quick else args.epochs
    run = profile if args.step == "numpy" else profile_compiled
    rows = run([784, 256, 128, 10], args.optimizer, lr, args.batch, epochs, (Xtr, ytr))
    steps = -(-Xtr.shape[0] // args.batch)
    keys = list(rows[0])
    gemm = "matmul" if args.step == "numpy" else "gemm floor"
    print(f"{args.optimizer} batch {args.batch}, {steps} steps an epoch, the {args.step} step; seconds per epoch")
    print("| " + " | ".join(keys) + " | outside matmul, us/step |")
    print("|" + "---|" * (len(keys) + 1))
    for r in rows + [{k: float(np.median([r[k] for r in rows])) for k in keys}]:
        per_step = (r["epoch"] - r[gemm]) / steps * 1e6
        print("| " + " | ".join(f"{r[k]:.3f}" for k in keys) + f" | {per_step:.0f} |")
    print("(last row: medians)")
    return rows


if __name__ == "__main__":
    main()
