"""What the compiled step's optimizer pass costs on one thread, and shared with OpenBLAS's worker thread.

Usage::

    python benchmarks/shared_pass.py              # Adam and SGD with momentum, 8,192 to 235,146 parameters
    python benchmarks/shared_pass.py --rounds 9
    python benchmarks/shared_pass.py --quick      # tiny sizes: proves the script works

After a step's products, the compiled step (``deepff._kernels.dense_step_kernel``)
runs its optimizer's pass over every parameter: Adam's takes a square
root and a division an entry, about 86 us for MNIST's 235,146 float32
parameters on the 2-core benchmark machine, while the second core waits.
numpy's OpenBLAS keeps a worker thread on that core for the products; it
has just run its half of the last one and spins, waiting for the next. So
the step hands it the second half of the pass through OpenBLAS's own
``gotoblas_pthread`` and runs the first half itself
(``deepff._kernel_source._update``), where Adam's pass has ``SHARE_MIN``
entries or more (SGD's, cheaper an entry, twice as many). The pass is element-wise, so the halves give the same bits
as one thread.

Each pass timed follows the MNIST network's first product (batch 128 x 784
by 784 x 256, float32, through numpy's OpenBLAS on its threads: the worker
is awake, as in a step) and calls the engine's own update function, on one
thread (the BLAS addresses without the pool's) or shared. Microseconds a
pass, with the call from Python (about a microsecond, alike in both
columns): the median of a round's passes, then of the rounds, which take
turns. ``same bits`` says that a
few passes from the same start left the same parameters and states both
ways. Needs numba (the function is compiled just in time here; the step
built ahead of time has the same code) and numpy's OpenBLAS
(``deepff._blas.gemms``); without its pool both columns run on one thread,
and the script says so.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

SIZES = (8192, 32768, 65536, 131072, 235146)


def update():
    """The engine's compiled update, ``update(blas, theta, grad, s1, s2, s3, opt_code, hyper)`` (imports numba)."""
    from deepff import _kernel_source, _kernels

    _kernels.step_function()                # compiles the engine's callees, its update among them
    return _kernel_source._nb_update


def _problem(optimizer, n, seed=0):
    """theta, grad, the three states, opt_code and hyper for ``n`` float32 parameters."""
    from deepff import _kernels
    from deepff.optimizers import SGD, Adam

    rng = np.random.default_rng(seed)
    theta = rng.standard_normal(n).astype(np.float32)
    grad = rng.standard_normal(n).astype(np.float32) * np.float32(0.01)
    opt = Adam(lr=1e-3) if optimizer == "adam" else SGD(lr=0.01, momentum=0.9)
    states, scalars, flags = opt.kernel_args(theta)
    hyper = np.zeros(_kernels.STEP_HYPER, np.float32)
    hyper[:len(scalars)], hyper[9:9 + len(flags)] = scalars, flags
    states = [s + np.float32(0.001) * (i + 1) if s.shape == theta.shape else s for i, s in enumerate(states)]
    states += [np.zeros_like(states[0]) for _ in range(3 - len(states))]      # (slots the pass leaves alone)
    return [theta, grad, *states], _kernels.STEP_OPTIMIZERS[optimizer], hyper


def measure(optimizer, n, rounds, reps):
    """Microseconds a pass of ``n`` parameters on one thread and shared (medians of ``rounds``).

    Parameters
    ----------
    optimizer : {"adam", "sgd"}
        Adam with PyTorch's defaults, or SGD with momentum 0.9.
    n : int
        Parameters (float32).
    rounds, reps : int
        Rounds, and passes timed in each.

    Returns
    -------
    dict
        ``{"optimizer", "entries", "one thread us", "shared us", "shared / one thread", "same bits"}``.
    """
    from deepff import _blas

    fn = update()
    shared_blas = _blas.gemms()
    one_blas = shared_blas[:3].copy()               # the gemm addresses without the pool's
    rng = np.random.default_rng(1)
    a = rng.standard_normal((128, 784)).astype(np.float32)
    w = rng.standard_normal((784, 256)).astype(np.float32)
    c = np.empty((128, 256), np.float32)
    arrays, code, hyper = _problem(optimizer, n)
    twins = [x.copy() for x in arrays]
    for _ in range(3):                              # compiled, and the same start both ways
        fn(one_blas, *arrays, code, hyper)
        fn(shared_blas, *twins, code, hyper)
    same = all(np.array_equal(x, y) for x, y in zip(arrays, twins))
    times = {"one thread": [], "shared": []}
    for _ in range(rounds):
        for name, blas in (("one thread", one_blas), ("shared", shared_blas)):
            spent = []
            for _ in range(reps):
                np.matmul(a, w, out=c)              # numpy's OpenBLAS on its threads: its worker is awake
                t = time.perf_counter()
                fn(blas, *arrays, code, hyper)
                spent.append(time.perf_counter() - t)
            times[name].append(statistics.median(spent) * 1e6)
    one, shared = times["one thread"], times["shared"]
    return {"optimizer": optimizer, "entries": n, "one thread us": statistics.median(one),
            "shared us": statistics.median(shared),
            "shared / one thread": statistics.median(s / o for s, o in zip(shared, one)), "same bits": same}


def main(argv=None):
    """Print the table; return its rows (None without numba)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, two rounds (for tests)")
    args = parser.parse_args(argv)
    from deepff import _blas, _kernels

    if not _kernels.enabled():
        print("the engine's update is compiled by numba, which is not installed (or DEEPFF_NUMBA=0)")
        return None
    sizes, rounds, reps = ((4096, 40000), 2, 10) if args.quick else (SIZES, args.rounds, 200)
    pool = _blas.gemms()[3] != 0
    print(f"float32; the pool {'found' if pool else 'NOT found: both columns run on one thread'}; the step "
          f"shares Adam's passes of {_kernels.SHARE_MIN} entries or more, SGD's of {2 * _kernels.SHARE_MIN}; "
          f"medians of {rounds} rounds, microseconds a pass")
    rows = [measure(opt, n, rounds, reps) for opt in ("adam", "sgd") for n in sizes]
    print("| optimizer | parameters | one thread | shared | shared / one thread | same bits |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['optimizer']} | {r['entries']:,} | {r['one thread us']:.1f} | {r['shared us']:.1f} "
              f"| {r['shared / one thread']:.2f} | {'yes' if r['same bits'] else 'NO'} |")
    return rows


if __name__ == "__main__":
    main()
