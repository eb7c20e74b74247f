"""An experiment, not the engine: the training step on two cores outside the matrix products too.

Usage::

    python benchmarks/two_cores.py                      # MNIST-sized data, every workload, 3 rounds
    python benchmarks/two_cores.py --only "adam b128" --rounds 5
    python benchmarks/two_cores.py --check              # its steps against the engine's, then exit
    python benchmarks/two_cores.py --quick --check      # tiny sizes (for tests)

The engine's compiled step runs its matrix products on both cores
(OpenBLAS's own 2 threads) and everything else on one. This is where the
time the speed targets still miss goes (``bench_threads.py``, and "Two
cores outside the products" in ``docs/performance.md``). This script tries
another split of the same step, with OpenBLAS on one thread and two
threads of our own, each running a compiled function (numba, no GIL). They
meet at a spin barrier twice a step:

1. **By batch rows.** Thread t gathers its half of the batch's rows, runs
   the forward pass and the loss gradient on them, and the input gradients
   ``g^{l-1} = (g^l W^{l T}) o f'(a^{l-1})`` down to the first layer, all
   into shared buffers. Rows do not interact, so there is no barrier
   between the layers. Then the first barrier.
2. **By the weight matrices' rows.** Thread t computes rows k0:k1 of every
   ``dW^l = h^{l-1 T} g^l``: its inputs' share, one product over the whole
   batch, so no partial sums to add. It also sums columns c0:c1 of every
   ``g^l`` into ``db^l``. It then updates those rows of W^l and those
   entries of b^l: Adam (PyTorch's rule, the engine's own compiled kernel)
   on its contiguous part of theta, or plain SGD inside the product
   (``W <- W - lr h^T g``, as the engine does). Then the second barrier:
   no thread reads W before both have written it.

The arithmetic is the engine's. Only the products' blocking differs, so
its weights after a step differ from the engine's by float rounding
(``--check``). It covers ReLU hidden layers, a softmax output with the mean
negative log-likelihood, plain SGD or Adam, float32 or float64. Every
thread flushes denormals as the engine's step does (``deepff._fpenv``). A
new thread starts without the flush, and Adam's moments then run many times
slower.

It is not in the engine for three reasons:

* The step built ahead of time (``deepff kernels --build``) holds the GIL,
  so this needs numba's JIT.
* A worker thread would have to live across the trainer's per-step calls.
* Its weights are not the numpy step's bits.

It prints each workload's epoch time against the gemm floor
(``bench.GemmFloor``), beside the engine's, in interleaved rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time

import bench
import numpy as np

WORKLOADS = [("sgd", 32), ("adam", 32), ("sgd", 128), ("adam", 128), ("sgd", 512), ("adam", 512)]
LR = {"sgd": 0.1, "adam": 1e-3}   # as bench.py's workloads
_K = {}


def kernels():
    """The experiment's compiled functions (imports numba; built once): ``{"epoch": ..., "barrier": ...}``."""
    if _K:
        return _K
    from numba import njit, types
    from numba.core import cgutils
    from numba.extending import intrinsic

    from deepff import _kernels as K

    K.step_function()           # compiles the engine's callees: the products, passes and Adam used below
    product, bias_act, act_backward = K._nb_product, K._nb_bias_act, K._nb_act_backward
    shift_by_row_max, divide_by_row_sum, adam, call_gemm = (K._nb_shift_by_row_max, K._nb_divide_by_row_sum,
                                                            K._nb_adam, K._call_gemm)

    def pointer(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        return cgutils.get_item_pointer(context, builder, signature.args[0], ary, [args[1]])

    @intrinsic
    def atomic_add(typingctx, arr, idx, val):
        # arr[idx] += val atomically; returns the old value
        def codegen(context, builder, signature, args):
            return builder.atomic_rmw("add", pointer(context, builder, signature, args), args[2], "seq_cst")
        return types.int64(arr, idx, val), codegen

    @intrinsic
    def atomic_load(typingctx, arr, idx):
        def codegen(context, builder, signature, args):
            return builder.load_atomic(pointer(context, builder, signature, args), "seq_cst", 8)
        return types.int64(arr, idx), codegen

    @njit(nogil=True)
    def barrier(c):
        # two threads: c[0] counts arrivals, c[1] the generation the last to arrive advances
        generation = atomic_load(c, 1)
        if atomic_add(c, 0, 1) == 1:
            atomic_add(c, 0, -2)
            atomic_add(c, 1, 1)
        else:
            while atomic_load(c, 1) == generation:
                pass

    @njit(nogil=True, error_model="numpy")
    def epoch(t, c, order, batch, blas, X, Y, theta, grad, dims, woff, boff, hs, gs, m, v, hyper, adam_code):
        # Thread t's share of the steps on the rows order[s:s + batch]; hyper[step] the optimizer's scalars
        # (Adam's nine, as the engine's kernel takes them; SGD: the rate in hyper[step, 4]).
        # hs[l] holds h^l (hs[0]: x), gs[l] holds g^l (gs[0]: the targets y), gs[L] also the row maxima.
        N, L, size = order.shape[0], dims.shape[0] - 1, theta.itemsize
        step = 0
        for s in range(0, N, batch):
            n = min(batch, N - s)
            r0, r1 = (0, n // 2) if t == 0 else (n // 2, n)
            # 1. my rows: gather, forward, g^L = (softmax - y) / n, input gradients
            x = hs[0][:n * dims[0]].reshape(n, dims[0])
            y = gs[0][:n * dims[L]].reshape(n, dims[L])
            for r in range(r0, r1):
                x[r] = X[order[s + r]]
                y[r] = Y[order[s + r]]
            h = x[r0:r1]
            for l in range(1, L + 1):
                W = theta[woff[l - 1]:woff[l - 1] + dims[l - 1] * dims[l]].reshape(dims[l - 1], dims[l])
                a = hs[l][:n * dims[l]].reshape(n, dims[l])[r0:r1]
                product(blas, h, False, W, False, a, 1.0, 0.0)
                bias_act(a, theta[boff[l - 1]:boff[l - 1] + dims[l]].reshape(1, dims[l]), 3 if l < L else 0)
                h = a
            shift_by_row_max(h, h, gs[L][n * dims[L]:n * dims[L] + n][r0:r1])
            np.exp(h, h)
            divide_by_row_sum(h)
            g = gs[L][:n * dims[L]].reshape(n, dims[L])[r0:r1]
            inv_n = theta.dtype.type(1.0 / n)
            for i in range(r1 - r0):
                for j in range(dims[L]):
                    g[i, j] = (h[i, j] - y[r0 + i, j]) * inv_n
            for l in range(L, 1, -1):
                W = theta[woff[l - 1]:woff[l - 1] + dims[l - 1] * dims[l]].reshape(dims[l - 1], dims[l])
                g_in = gs[l - 1][:n * dims[l - 1]].reshape(n, dims[l - 1])[r0:r1]
                product(blas, gs[l][:n * dims[l]].reshape(n, dims[l])[r0:r1], False, W, True, g_in, 1.0, 0.0)
                act_backward(g_in, hs[l - 1][:n * dims[l - 1]].reshape(n, dims[l - 1])[r0:r1], 3)
            barrier(c)
            # 2. my rows k0:k1 of every dW^l (and W^l), my entries c0:c1 of every db^l (and b^l)
            lr = hyper[step, 4]
            for l in range(1, L + 1):
                n_in, n_out = dims[l - 1], dims[l]
                k0, k1 = (0, n_in // 2) if t == 0 else (n_in // 2, n_in)
                c0, c1 = (0, n_out // 2) if t == 0 else (n_out // 2, n_out)
                g = gs[l][:n * n_out].reshape(n, n_out)
                db = grad[boff[l - 1] + c0:boff[l - 1] + c1]
                db[:] = 0
                for i in range(n):
                    for j in range(c0, c1):
                        db[j - c0] += g[i, j]
                w0, w1 = woff[l - 1] + k0 * n_out, woff[l - 1] + k1 * n_out
                # out[k0:k1] = alpha h[:, k0:k1]^T g + beta out[k0:k1]: h's columns k0:k1 with leading dimension n_in
                h_at = np.int64(hs[l - 1].ctypes.data) + np.int64(k0 * size)
                if adam_code:
                    out, alpha, beta = np.int64(grad.ctypes.data) + np.int64(w0 * size), 1.0, 0.0
                else:
                    out, alpha, beta = np.int64(theta.ctypes.data) + np.int64(w0 * size), -lr, 1.0
                call_gemm(blas[0] if size == 4 else blas[1], np.int32(101), np.int32(112), np.int32(111),
                          np.int64(k1 - k0), np.int64(n_out), np.int64(n), theta.dtype.type(alpha), h_at,
                          np.int64(n_in), np.int64(g.ctypes.data), np.int64(n_out), theta.dtype.type(beta), out,
                          np.int64(n_out))
                b0, b1 = boff[l - 1] + c0, boff[l - 1] + c1
                if adam_code:
                    for p0, p1 in ((w0, w1), (b0, b1)):
                        adam(theta[p0:p1], grad[p0:p1], m[p0:p1], v[p0:p1], v[p0:p1], hyper[step, 0],
                             hyper[step, 1], hyper[step, 2], hyper[step, 3], hyper[step, 4], hyper[step, 5],
                             hyper[step, 6], hyper[step, 7], hyper[step, 8], False, False)
                else:
                    b = theta[b0:b1]
                    for j in range(b1 - b0):
                        b[j] = b[j] - lr * db[j]
            barrier(c)
            step += 1
        return 0

    _K.update(epoch=epoch, barrier=barrier)
    return _K


class TwoCoreRunner:
    """The experiment's step on a deepff network (``bench._network``): one epoch a call, as bench's runners."""

    name = "two-cores"

    def __init__(self, sizes, optimizer, lr, batch, X, y, seed=0):
        import numba

        from deepff import _blas

        self.net = bench._network(sizes)
        self.X, self.Y = self.net.prepare_inputs(X), self.net.prepare_targets(y, X.shape[0])
        self.batch, self.lr, self.adam = batch, lr, optimizer == "adam"
        params = self.net.params
        self.theta, self.grad = params.theta, params.grad
        dt, size = self.theta.dtype, self.theta.itemsize
        self.dims = np.array(sizes, dtype=np.int64)
        self.woff = np.array([(layer.W.ctypes.data - self.theta.ctypes.data) // size for layer in self.net.layers])
        self.boff = np.array([(layer.b.ctypes.data - self.theta.ctypes.data) // size for layer in self.net.layers])
        self.hs = numba.typed.List([np.zeros(batch * d, dt) for d in sizes])
        self.gs = numba.typed.List([np.zeros(batch * max(d, sizes[-1]) + batch, dt) for d in sizes])
        self.m, self.v = np.zeros_like(self.theta), np.zeros_like(self.theta)
        self.blas, self.t, self.rng = _blas.gemms(), 0, np.random.default_rng(seed)
        self.barrier = np.zeros(2, np.int64)

    def steps(self, order):
        """Train on the rows ``order`` (int64), ``batch`` at a time, on two threads."""
        from threadpoolctl import threadpool_limits

        from deepff._fpenv import FlushDenormals

        n_steps = -(-order.shape[0] // self.batch)
        hyper = np.zeros((n_steps, 9), self.theta.dtype)
        for k in range(n_steps):
            t = self.t + k + 1
            if self.adam:   # PyTorch's rule: step size lr / bc1, sqrt(bc2) divides sqrt(v)
                hyper[k] = (0.9, 0.1, 0.999, 0.001, self.lr / (1 - 0.9**t), (1 - 0.999**t) ** 0.5, 1e-8, 0.0, 1.0)
            else:
                hyper[k, 4] = self.lr
        self.t += n_steps
        args = (self.barrier, order, self.batch, self.blas, self.X, self.Y, self.theta, self.grad, self.dims,
                self.woff, self.boff, self.hs, self.gs, self.m, self.v, hyper, self.adam)
        epoch = kernels()["epoch"]

        def run(t):
            with FlushDenormals():
                epoch(t, *args)

        with threadpool_limits(1, user_api="blas"):
            worker = threading.Thread(target=run, args=(1,))
            worker.start()
            run(0)
            worker.join()

    def epoch(self):
        self.steps(self.rng.permutation(self.X.shape[0]).astype(np.int64))

    def infer(self, X):
        return self.net.predict_output(X)


def check(sizes, batch, X, y, n_steps=3):
    """The largest difference between this step's weights and the engine's after ``n_steps`` steps, per optimizer.

    Both start from the same network (``bench._network``'s seed) and take
    the same rows. Returns ``{optimizer: (max |theta - theta_engine|, max
    |theta - theta_start|)}``: the disagreement, and how far the steps moved
    the weights.
    """
    from deepff import _fused_step

    result = {}
    for optimizer in ("sgd", "adam"):
        ours = TwoCoreRunner(sizes, optimizer, LR[optimizer], batch, X, y)
        engine = bench.DeepffRunner(sizes, optimizer, LR[optimizer], batch, X, y)
        start = ours.theta.copy()
        assert np.array_equal(start, engine.net.params.theta)
        step = _fused_step.plan(engine.trainer, engine.X, engine.Y, None, batch)
        order = np.random.default_rng(1).permutation(X.shape[0])[:n_steps * batch].astype(np.int64)
        for k in range(n_steps):
            step(order[k * batch:(k + 1) * batch].copy())
        ours.steps(order)
        result[optimizer] = (float(np.abs(ours.theta - engine.net.params.theta).max()),
                             float(np.abs(ours.theta - start).max()))
    return result


def main(argv=None):
    """Print the epoch / gemm floor of the engine and of this experiment (or, with ``--check``, their difference)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", help='comma-separated workloads, e.g. "sgd b32,adam b128"')
    parser.add_argument("--check", action="store_true", help="compare 3 steps with the engine's and exit")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (for tests)")
    args = parser.parse_args(argv)
    from deepff import _kernels

    if _kernels.dense_step_kernel() is None:
        print("numba is not installed (or DEEPFF_NUMBA=0): the experiment needs it", file=sys.stderr)
        return None
    if args.quick:
        sizes, rows = [12, 16, 8, 3], 200
        rng = np.random.default_rng(0)
        X = rng.random((rows, sizes[0]), dtype=np.float32)
        y = (X @ rng.standard_normal((sizes[0], sizes[-1])).astype(np.float32)).argmax(1)
        workloads = [("sgd", 32), ("adam", 32)]
    else:
        sizes = [784, 256, 128, 10]
        X, y, _, _ = bench.load_data(quick=False)
        workloads = WORKLOADS
    if args.check:
        result = check(sizes, 32 if args.quick else 128, X, y)
        for optimizer, (diff, moved) in result.items():
            print(f"{optimizer}: max |theta - engine's| = {diff:.3g} after 3 steps "
                  f"that moved theta by up to {moved:.3g}")
        return result
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        workloads = [(o, b) for o, b in workloads if f"{o} b{b}" in wanted]
    rows = []
    for optimizer, batch in workloads:
        runners = [R(sizes, optimizer, LR[optimizer], batch, X, y)
                   for R in (bench.DeepffRunner, TwoCoreRunner, bench.GemmFloor)]
        times = {r.name: [] for r in runners}
        for rnd in range(args.rounds + 1):
            for r in runners:
                time.sleep(bench.QUIET_GAP)
                t0 = time.perf_counter()
                r.epoch()
                if rnd:
                    times[r.name].append(time.perf_counter() - t0)
        row = {"workload": f"{optimizer} b{batch}"}
        for name in ("deepff", "two-cores"):
            row[name + "/floor"] = statistics.median(a / f for a, f in zip(times[name], times["floor"]))
        row.update({name: statistics.median(v) for name, v in times.items()})
        rows.append(row)
    print(f"medians of {args.rounds} interleaved rounds, seconds per epoch; ratios paired within rounds")
    print("| workload | deepff | two-cores | floor | deepff/floor | two-cores/floor |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workload']} | {r['deepff']:.3f} | {r['two-cores']:.3f} | {r['floor']:.3f} "
              f"| {r['deepff/floor']:.2f} | {r['two-cores/floor']:.2f} |")
    return rows


if __name__ == "__main__":
    main()
