"""What the second core gives the training step, and what stands in the way.

Usage::

    python benchmarks/bench_threads.py                 # MNIST 784-256-128-10, batches 32, 128, 512
    python benchmarks/bench_threads.py --json out.json
    python benchmarks/bench_threads.py --quick         # tiny sizes: proves the script works

On a 2-core machine the compiled step runs its matrix products on both
cores (numpy's OpenBLAS with 2 threads) and everything else on one: the
bias and activation passes, the loss, the bias sums and the optimizer's
pass over every parameter. The first three measurements say how much of
that the second core could take, each the best of several repetitions, in
microseconds; the fourth, what two fits in two threads make of the cores:

1. **Each product of the step at 1 and 2 BLAS threads**, for every layer
   and batch size: the forward product ``h W`` (n, n_in) x (n_in, n_out),
   the weight gradient ``h^T g`` and the input gradient ``g W^T``. Where 2
   threads gain little (small batches), a step that gave each core its own
   half of the batch, with one BLAS thread each, would use the cores better.
2. **Two single-threaded products at once**: the forward product of the
   first layer on half the batch, called from two threads together, against
   one call alone. If numpy's BLAS ran the two calls side by side, the pair
   would take about as long as one call (a ratio near 1); near 2 means the
   calls wait for each other, and a step split across the cores this way
   cannot gain.
3. **Adam's pass over the parameters** (numba's kernel, PyTorch's rule:
   two divisions and a square root an entry) against the same seven
   streams of memory with the arithmetic left out: how far the pass is from
   the traffic it cannot avoid on one core. The four arrays (3.8 MB for
   MNIST's network) stay in the last-level cache when timed back to back,
   so that traffic runs at the cache's bandwidth. Needs numba.
4. **Two fits in two threads of one process**: ``Network.fit`` of two
   networks of one shape (seeds 1 and 2) on random data, one epoch each, one
   after the other and then from two Python threads at once, at 1 and 2
   BLAS threads, with whichever step the engine runs (printed below the
   table), in milliseconds (medians of 3; the ratio is the median of the 3
   paired ratios, the two orders taken in turn). The compiled step
   releases the GIL, both numba's and the one built ahead of time, so the
   two fits' steps can run side by side: a ratio near 0.5 means they did,
   near 1 that they took turns, and above 1 that their BLAS threads
   oversubscribed the cores. Each fit's setup (the network, checking the
   data) holds the GIL, so the ratio understates how far the steps overlap.

Threads are limited with threadpoolctl (in the ``test`` extra).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import threading
import time

import bench  # the workloads' network, and deepff's kernels said as bench.py says them
import numpy as np


def best_seconds(func, reps, repeats=5):
    """The best of ``repeats`` timings of ``reps`` calls of ``func``, per call."""
    func()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(reps):
            func()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def product_rows(sizes, batches, reps, dtype=np.float32):
    """Rows of (batch, layer, product, us at 1 thread, us at 2 threads) for every product of the step."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    rows = []
    for n in batches:
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            h = rng.standard_normal((n, n_in), dtype=dtype)
            W = rng.standard_normal((n_in, n_out), dtype=dtype)
            g = rng.standard_normal((n, n_out), dtype=dtype)
            calls = {"h W": functools.partial(np.matmul, h, W, out=np.empty((n, n_out), dtype)),
                     "h^T g": functools.partial(np.matmul, h.T, g, out=np.empty((n_in, n_out), dtype)),
                     "g W^T": functools.partial(np.matmul, g, W.T, out=np.empty((n, n_in), dtype))}
            for name, call in calls.items():
                us = []
                for threads in (1, 2):
                    with threadpool_limits(threads, user_api="blas"):
                        us.append(1e6 * best_seconds(call, reps))
                rows.append({"batch": n, "layer": f"{n_in}-{n_out}", "product": name,
                             "1 thread us": us[0], "2 threads us": us[1], "speedup": us[0] / us[1]})
    return rows


def concurrent_row(n, n_in, n_out, reps, dtype=np.float32):
    """One single-threaded product (n, n_in) x (n_in, n_out) alone, and two of them from two threads at once.

    Returns
    -------
    dict
        The shape, ``alone us`` (a call by itself), ``pair us`` (wall time
        from the first thread's start to the last one's end, per call of
        one thread) and their ratio (about 1: the calls ran side by side;
        about 2: one after the other). Best of 5 of each, interleaved.
    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(1)
    jobs = []
    for _ in range(2):
        h = rng.standard_normal((n, n_in), dtype=dtype)
        W = rng.standard_normal((n_in, n_out), dtype=dtype)
        jobs.append((h, W, np.empty((n, n_out), dtype)))

    def run(job, start, spans):
        h, W, out = job
        np.matmul(h, W, out=out)
        start.wait()
        t0 = time.perf_counter()
        for _ in range(reps):
            np.matmul(h, W, out=out)
        spans.append((t0, time.perf_counter()))

    def one_alone():
        t0 = time.perf_counter()
        for _ in range(reps):
            np.matmul(jobs[0][0], jobs[0][1], out=jobs[0][2])
        return (time.perf_counter() - t0) / reps

    def a_pair():
        start, spans = threading.Barrier(2), []
        threads = [threading.Thread(target=run, args=(job, start, spans)) for job in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # from the first thread's start to the last one's end: the pair's wall time, per call of one thread
        return (max(end for _, end in spans) - min(begin for begin, _ in spans)) / reps

    with threadpool_limits(1, user_api="blas"):
        one_alone()
        alone = pair = float("inf")
        for _ in range(5):                              # interleaved, so both see the same machine
            alone = min(alone, one_alone())
            pair = min(pair, a_pair())
    return {"shape": f"({n}, {n_in}) x ({n_in}, {n_out})", "alone us": 1e6 * alone, "pair us": 1e6 * pair,
            "pair / alone": pair / alone}


def adam_row(n_params, reps, dtype=np.float32):
    """Adam's pass (numba's kernel) against the same memory streams without the arithmetic, or None without numba."""
    from deepff import _kernels

    if _kernels.adam_kernel() is None:
        return None
    import numba

    @numba.njit(nogil=True, error_model="numpy")
    def streams(theta, grad, m, v, b1, c1, b2, c2, step_size):
        # reads theta, grad, m, v and writes theta, m, v as Adam does, with no square root or division
        for i in range(theta.shape[0]):
            g = grad[i]
            mi = b1 * m[i] + c1 * g
            vi = b2 * v[i] + c2 * (g * g)
            m[i] = mi
            v[i] = vi
            theta[i] = theta[i] - step_size * (mi * vi)

    rng = np.random.default_rng(2)
    theta, grad = (rng.standard_normal(n_params).astype(dtype) for _ in range(2))
    m, v = np.zeros(n_params, dtype), np.zeros(n_params, dtype)
    s = [dtype(x) for x in (0.9, 0.1, 0.999, 0.001, 1e-3, np.sqrt(0.001), 1e-8, 0.0, 1.0)]
    adam = _kernels.adam_kernel()
    kernel = best_seconds(lambda: adam(theta, grad, m, v, v, *s, False, False), reps)
    bound = best_seconds(lambda: streams(theta, grad, m, v, *s[:5]), reps)
    return {"parameters": n_params, "adam us": 1e6 * kernel, "memory streams us": 1e6 * bound,
            "adam / streams": kernel / bound}


def fits_rows(sizes, n_rows, runs, repeats=3):
    """Two fits one after the other against two at once in two threads, at 1 and 2 BLAS threads (ms)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(3)
    X = rng.random((n_rows, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], n_rows)

    def fit(seed, optimizer, batch, kernels):
        net = bench._network(sizes, seed)
        net.fit(X, y, epochs=1, batch_size=batch, optimizer={"name": optimizer, "lr": 1e-3}, shuffle=True)
        kernels.append(net.trainer_.compiled_kernels)

    rows = []
    for optimizer, batch in runs:
        for blas_threads in (1, 2):
            kernels, alone, together = [], [], []
            with threadpool_limits(blas_threads):
                fit(0, optimizer, batch, kernels)               # warm-up: kernels loaded, pools started
                for repeat in range(repeats):
                    for way in (("alone", "together") if repeat % 2 == 0 else ("together", "alone")):
                        t0 = time.perf_counter()
                        if way == "alone":
                            fit(1, optimizer, batch, kernels)
                            fit(2, optimizer, batch, kernels)
                            alone.append(time.perf_counter() - t0)
                            continue
                        threads = [threading.Thread(target=fit, args=(seed, optimizer, batch, kernels))
                                   for seed in (1, 2)]
                        for t in threads:
                            t.start()
                        for t in threads:
                            t.join()
                        together.append(time.perf_counter() - t0)
            ratios = sorted(b / a for a, b in zip(alone, together))
            rows.append({"fit": f"{optimizer} b{batch}", "BLAS threads": blas_threads,
                         "one after the other ms": 1e3 * float(np.median(alone)),
                         "two threads ms": 1e3 * float(np.median(together)),
                         "two threads / one after the other": ratios[len(ratios) // 2], "ratios": ratios,
                         "compiled step": all(k is True for k in kernels)})
    return rows


def _table(rows, keys):
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join(f"{row[k]:.2f}" if isinstance(row[k], float) else str(row[k])
                                       for k in keys) + " |")
    return "\n".join(lines)


def main(argv=None):
    """Run the three measurements, print their tables and return them as a dict."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few repetitions (for tests)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-': stdout)")
    args = parser.parse_args(argv)
    if args.quick:
        sizes, batches, reps, n_rows = (20, 16, 3), (8,), 3, 400
    else:
        sizes, batches, reps, n_rows = (784, 256, 128, 10), (32, 128, 512), 200, 20000
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    result = {
        "products": product_rows(sizes, batches, reps),
        "concurrent": [concurrent_row(n // 2, sizes[0], sizes[1], reps) for n in batches],
        "adam": adam_row(n_params, reps if args.quick else 500),
        "fits": fits_rows(sizes, n_rows, (("sgd", 128), ("adam", 32), ("adam", 128))),
    }
    print("Products of the step at 1 and 2 BLAS threads (us a call)")
    print(_table(result["products"], ["batch", "layer", "product", "1 thread us", "2 threads us", "speedup"]))
    print("\nThe first layer's forward product on half a batch, one BLAS thread: alone, and two threads at once")
    print(_table(result["concurrent"], ["shape", "alone us", "pair us", "pair / alone"]))
    if result["adam"] is None:
        print("\nAdam's pass: numba is not installed, skipped")
    else:
        print("\nAdam's pass over the parameters (one core)")
        print(_table([result["adam"]], ["parameters", "adam us", "memory streams us", "adam / streams"]))
    result["kernels"] = bench.kernel_info()
    print(f"\nTwo fits of {n_rows} rows, one after the other and in two threads at once "
          "(medians of 3, ms; the ratio: the median of the 3 paired ratios)")
    print(_table(result["fits"], ["fit", "BLAS threads", "one after the other ms", "two threads ms",
                                  "two threads / one after the other", "compiled step"]))
    print(f"deepff's kernels: {result['kernels']}")
    if args.json:
        text = json.dumps(result, indent=1)
        if args.json == "-":
            sys.stdout.write(text + "\n")
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
    return result


if __name__ == "__main__":
    main()
