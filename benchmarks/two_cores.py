"""An experiment, not the engine: the training step on two cores outside the matrix products too.

Usage::

    python benchmarks/two_cores.py                      # MNIST, every workload, 3 rounds
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
   the forward pass and the engine's loss kernel on them (mean negative
   log-likelihood, so each half's part is scaled by its share of the
   batch), and the input gradients ``g^{l-1} = (g^l W^{l T}) o f'(a^{l-1})``
   down to the first layer, all into shared buffers. Rows do not interact,
   so there is no barrier between the layers. Then the first barrier.
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
negative log-likelihood, plain SGD or Adam, float32 or float64.

Two ways of calling it are timed: one call a thread for a whole epoch, and
"a call a step" from Python, as the trainer calls its step, with a second
thread that lives across the calls, spins between them, and goes back to
Python to sleep on an event after ``SPIN`` idle checks. A thread that
fails sets an abort word that lets the other out of the barriers.

Every thread flushes denormals, as the engine's step does
(``deepff._fpenv``). That mode is per thread, and a thread takes it from
the thread that creates it when it is created. A second thread started
outside the flush runs Adam many times slower, once its moments fall
into the denormal range.

Why it is not in the engine, and what it measured: "Two cores outside the
products" in ``docs/performance.md``. It prints each workload's epoch time
against the gemm floor (``bench.GemmFloor``), beside the engine's, in
interleaved rounds, with the ratios paired within each round.
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
SPIN = 1 << 18
"""Idle checks the follower makes before it goes back to Python to sleep (about a millisecond here)."""
LR = {"sgd": 0.1, "adam": 1e-3}   # as bench.py's workloads
_K = {}


def kernels():
    """The experiment's compiled functions (imports numba; built once): ``{"epoch": ..., "barrier": ...}``."""
    if _K:
        return _K
    from numba import njit, types
    from numba.core import cgutils
    from numba.extending import intrinsic

    from deepff import _kernel_source as K
    from deepff import _kernels

    _kernels.step_function()    # compiles the engine's callees: the products, passes and Adam used below
    product, bias_act, act_backward, output_loss = K._nb_product, K._nb_bias_act, K._nb_act_backward, K._nb_output_loss
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

    @intrinsic
    def compare_swap(typingctx, arr, idx, expected, val):
        # if arr[idx] == expected: arr[idx] = val, atomically; returns the old value either way
        def codegen(context, builder, signature, args):
            pair = builder.cmpxchg(pointer(context, builder, signature, args), args[2], args[3], "seq_cst", "seq_cst")
            return builder.extract_value(pair, 0)
        return types.int64(arr, idx, expected, val), codegen

    @njit(nogil=True)
    def barrier(c):
        # two threads: c[0] counts arrivals, c[1] the generation the last to arrive advances; c[4] != 0 (a thread
        # failed) lets the other through, so that it returns instead of spinning for ever
        generation = atomic_load(c, 1)
        if atomic_add(c, 0, 1) == 1:
            atomic_add(c, 0, -2)
            atomic_add(c, 1, 1)
        else:
            while atomic_load(c, 1) == generation and atomic_load(c, 4) == 0:
                pass

    @njit(nogil=True, error_model="numpy")
    def share(t, c, rows, blas, X, Y, theta, grad, dims, woff, boff, hs, gs, zs, J, m, v, hyper, adam_code):
        # Thread t's share of one step on the rows ``rows``; hyper: the optimizer's scalars (Adam's nine, as
        # the engine's kernel takes them; SGD: the rate in hyper[4]). hs[l] holds h^l (hs[0]: x), gs[l] holds
        # g^l (gs[0]: the targets y), gs[L] also the row maxima, zs the logits. J[t]: its rows' part of the
        # loss; J[2 + t]: its rows classified correctly; J[6 + 8 t:14 + 8 t]: its loss kernel's arguments.
        L, size = dims.shape[0] - 1, theta.itemsize
        n = rows.shape[0]
        r0, r1 = (0, n // 2) if t == 0 else (n // 2, n)
        # 1. my rows: gather, forward, g^L = (softmax - y) / n, input gradients
        x = hs[0][:n * dims[0]].reshape(n, dims[0])
        y = gs[0][:n * dims[L]].reshape(n, dims[L])
        for r in range(r0, r1):
            x[r] = X[rows[r]]
            y[r] = Y[rows[r]]
        h = x[r0:r1]
        for l in range(1, L + 1):
            W = theta[woff[l - 1]:woff[l - 1] + dims[l - 1] * dims[l]].reshape(dims[l - 1], dims[l])
            a = hs[l][:n * dims[l]].reshape(n, dims[l])[r0:r1]
            product(blas, h, False, W, False, a, 1.0, 0.0)
            bias_act(a, theta[boff[l - 1]:boff[l - 1] + dims[l]].reshape(1, dims[l]), 3 if l < L else 0)
            h = a
        z = zs[:n * dims[L]].reshape(n, dims[L])[r0:r1]
        z[:, :] = h                                     # the logits, as the engine keeps them for the loss
        shift_by_row_max(h, h, gs[L][n * dims[L]:n * dims[L] + n][r0:r1])
        np.exp(h, h)
        divide_by_row_sum(h)
        # the engine's loss kernel on my rows: mean NLL over them, so scaled by my share of the batch (k / n),
        # which also makes g = (softmax - y) / n
        k = r1 - r0
        g = gs[L][:n * dims[L]].reshape(n, dims[L])[r0:r1]
        lossargs = J[6 + 8 * t:14 + 8 * t]              # the loss kernel's arguments, this thread's own
        lossargs[:] = 0.0
        lossargs[0], lossargs[1], lossargs[2] = 1.0, k / n, 1.0
        J[t] = output_loss(z, h, y[r0:r1], theta, False, rows[r0:r1], g, 0, lossargs)[0] * k / n if k else 0.0
        J[2 + t] = lossargs[6]
        for l in range(L, 1, -1):
            W = theta[woff[l - 1]:woff[l - 1] + dims[l - 1] * dims[l]].reshape(dims[l - 1], dims[l])
            g_in = gs[l - 1][:n * dims[l - 1]].reshape(n, dims[l - 1])[r0:r1]
            product(blas, gs[l][:n * dims[l]].reshape(n, dims[l])[r0:r1], False, W, True, g_in, 1.0, 0.0)
            act_backward(g_in, hs[l - 1][:n * dims[l - 1]].reshape(n, dims[l - 1])[r0:r1], 3)
        barrier(c)
        # 2. my rows k0:k1 of every dW^l (and W^l), my entries c0:c1 of every db^l (and b^l)
        lr = hyper[4]
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
                    adam(theta[p0:p1], grad[p0:p1], m[p0:p1], v[p0:p1], v[p0:p1], hyper[0],
                         hyper[1], hyper[2], hyper[3], hyper[4], hyper[5],
                         hyper[6], hyper[7], hyper[8], False, False)
            else:
                b = theta[b0:b1]
                for j in range(b1 - b0):
                    b[j] = b[j] - lr * db[j]
        barrier(c)

    @njit(nogil=True, error_model="numpy")
    def epoch(t, c, order, batch, blas, X, Y, theta, grad, dims, woff, boff, hs, gs, zs, J, m, v, hyper,
              adam_code):
        # thread t's shares of the steps on order[s:s + batch], s = 0, batch, ...; hyper[k] for step k; the
        # epoch's loss sum in J[4 + t]
        J[4 + t] = 0.0
        for k, s in enumerate(range(0, order.shape[0], batch)):
            share(t, c, order[s:s + batch], blas, X, Y, theta, grad, dims, woff, boff, hs, gs, zs, J, m, v,
                  hyper[k], adam_code)
            J[4 + t] += J[t]
        return 0

    # One step a call, as the trainer makes them. c[2] is the follower's state: 0 waiting (spinning), 1 a step
    # is posted, 2 asleep (it spun SPIN times and went back to Python to wait on an Event), 3 stop.
    # c[3] is the posted step's number of rows, in the shared rows_buf; the posted hyper is in hyper_buf.
    @njit(nogil=True, error_model="numpy")
    def lead(c, rows, rows_buf, hyper, hyper_buf, posted, blas, X, Y, theta, grad, dims, woff, boff, hs, gs, zs, J,
             m, v, adam_code):
        # the calling thread's share of a step on ``rows``; returns 2 without doing anything when the follower is
        # asleep (the caller wakes it and calls again with posted=True), else 0
        n = rows.shape[0]
        if not posted:
            rows_buf[:n] = rows
            hyper_buf[:] = hyper
            c[3] = n
            if compare_swap(c, 2, 0, 1) == 2:
                return 2
        share(0, c, rows_buf[:n], blas, X, Y, theta, grad, dims, woff, boff, hs, gs, zs, J, m, v, hyper_buf,
              adam_code)
        return 0

    @njit(nogil=True, error_model="numpy")
    def follow(c, spin, rows_buf, hyper_buf, blas, X, Y, theta, grad, dims, woff, boff, hs, gs, zs, J, m, v,
               adam_code):
        # the second thread: take each posted step's share; return 2 to sleep after ``spin`` idle checks, 3 to stop
        while True:
            idle = 0
            while True:
                state = atomic_load(c, 2)
                if state == 1 or state == 3:
                    break
                idle += 1
                if idle > spin and compare_swap(c, 2, 0, 2) == 0:
                    return 2
            if state == 3:
                return 3
            compare_swap(c, 2, 1, 0)                        # taken: the next post finds 0
            n = atomic_load(c, 3)
            share(1, c, rows_buf[:n], blas, X, Y, theta, grad, dims, woff, boff, hs, gs, zs, J, m, v, hyper_buf,
                  adam_code)

    @njit(nogil=True)
    def stop(c):
        # ask the follower to return: 0 if it was spinning, 2 if it is asleep (the caller wakes it)
        while True:
            state = atomic_load(c, 2)
            if compare_swap(c, 2, state, 3) == state:
                return state

    _K.update(epoch=epoch, barrier=barrier, share=share, lead=lead, follow=follow, stop=stop)
    return _K


class TwoCoreRunner:
    """The experiment's step on a deepff network (``bench._network``): one epoch a call, as bench's runners."""

    name = "two-cores"

    def __init__(self, sizes, optimizer, lr, batch, X, y, seed=0, per_step=False):
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
        if not self.blas[2]:
            raise RuntimeError("numpy's BLAS exports no 64-bit CBLAS gemm here: the experiment calls it directly")
        self.zs = np.zeros(batch * sizes[-1], dt)
        self.J = np.zeros(22)   # each thread's loss and hits of a step, loss of an epoch, loss kernel arguments
        # the barrier's two counters, the follower's state, the posted rows, and 1 once a thread has failed
        self.barrier = np.zeros(5, np.int64)
        self.loss = 0.0                             # the last epoch's mean batch loss
        self.per_step = per_step
        if per_step:
            self.name = "two-cores, a call a step"
        self.rows_buf, self.hyper_buf = np.zeros(batch, np.int64), np.zeros(9, dt)
        self.follower, self.wake, self.sleeps = None, threading.Event(), 0

    def steps(self, order, pause=0.0):
        """Train on the rows ``order`` (int64), ``batch`` at a time, on two threads (``pause``: s between calls)."""
        if self.per_step:
            return self._steps_a_call_each(order, pause)
        from threadpoolctl import threadpool_limits

        from deepff._fpenv import FlushDenormals

        n_steps = -(-order.shape[0] // self.batch)
        hyper = np.zeros((n_steps, 9), self.theta.dtype)
        for k in range(n_steps):
            hyper[k] = self._scalars(self.t + k + 1)
        self.t += n_steps
        self.barrier[:] = 0
        args = (self.barrier, order, self.batch, self.blas, self.X, self.Y, self.theta, self.grad, self.dims,
                self.woff, self.boff, self.hs, self.gs, self.zs, self.J, self.m, self.v, hyper, self.adam)
        epoch = kernels()["epoch"]

        def run(t):
            try:
                with FlushDenormals():      # in each thread: the mode is per thread
                    epoch(t, *args)
            except BaseException:
                self.barrier[4] = 1         # the other thread's barriers let it through
                raise

        with threadpool_limits(1, user_api="blas"):
            worker = threading.Thread(target=run, args=(1,))
            worker.start()
            try:
                run(0)
            finally:
                worker.join()
        self.loss = (self.J[4] + self.J[5]) / n_steps

    def _scalars(self, t):
        """The optimizer's nine scalars at step t, as the engine's Adam kernel takes them (SGD: the rate 5th)."""
        if self.adam:   # PyTorch's rule: step size lr / bc1, sqrt(bc2) divides sqrt(v)
            return (0.9, 0.1, 0.999, 0.001, self.lr / (1 - 0.9**t), (1 - 0.999**t) ** 0.5, 1e-8, 0.0, 1.0)
        return (0.0,) * 4 + (self.lr,) + (0.0,) * 4

    def _arrays(self):
        return (self.blas, self.X, self.Y, self.theta, self.grad, self.dims, self.woff, self.boff, self.hs, self.gs,
                self.zs, self.J, self.m, self.v, self.adam)

    def _follow(self):
        from deepff._fpenv import FlushDenormals

        follow = kernels()["follow"]
        try:
            with FlushDenormals():
                while follow(self.barrier, SPIN, self.rows_buf, self.hyper_buf, *self._arrays()) == 2:
                    self.sleeps += 1
                    self.wake.wait()                    # asleep until lead finds state 2 and wakes it
                    self.wake.clear()
        except BaseException:
            self.barrier[4] = 1                         # lead's barriers let it through
            raise

    def _steps_a_call_each(self, order, pause=0.0):
        # as the trainer would: one call a step from Python, the follower thread kept across calls
        from threadpoolctl import threadpool_limits

        from deepff._fpenv import FlushDenormals

        lead = kernels()["lead"]
        if self.follower is None:
            self.follower = threading.Thread(target=self._follow, daemon=True)
            self.follower.start()
        hyper = np.zeros(9, self.theta.dtype)
        arrays = self._arrays()
        total, n_steps = 0.0, 0
        with threadpool_limits(1, user_api="blas"), FlushDenormals():
            try:
                for s in range(0, order.shape[0], self.batch):
                    self.t += 1
                    hyper[:] = self._scalars(self.t)
                    rows = order[s:s + self.batch]
                    if pause:
                        time.sleep(pause)               # long enough for the follower to go to sleep
                    if lead(self.barrier, rows, self.rows_buf, hyper, self.hyper_buf, False, *arrays) == 2:
                        self.barrier[2] = 1             # posted, for the follower that wakes up
                        self.wake.set()
                        lead(self.barrier, rows, self.rows_buf, hyper, self.hyper_buf, True, *arrays)
                    total += float(self.J[0] + self.J[1])   # the step's loss, as the trainer sums it
                    n_steps += 1
            except BaseException:
                self.barrier[4] = 1                     # the follower's barriers let it through
                raise
        self.loss = total / max(n_steps, 1)

    def close(self):
        """Stop the follower thread of ``per_step`` (if any)."""
        if self.follower is not None:
            if kernels()["stop"](self.barrier) == 2:
                self.wake.set()
            self.follower.join()
            self.follower = None

    def epoch(self):
        self.steps(self.rng.permutation(self.X.shape[0]).astype(np.int64))

    def infer(self, X):
        return self.net.predict_output(X)


def check(sizes, batch, X, y):
    """How far this step's weights and loss are from the engine's after three steps, the last one short.

    Both start from the same network (``bench._network``'s seed) and take
    the same 3 * batch - 7 rows, in one call a thread, and in a call a step
    with pauses that send the follower to sleep. Returns ``{label: (max
    |theta - theta_engine|, max |theta - theta_start|, |mean loss - the
    engine's|, sleeps)}``: the disagreement, how far the steps moved the
    weights, the loss's disagreement, and how often the follower slept.
    """
    from deepff import _fused_step
    from deepff._fpenv import FlushDenormals

    order = np.random.default_rng(1).permutation(X.shape[0])[:3 * batch - 7].astype(np.int64)
    result = {}
    for optimizer in ("sgd", "adam"):
        engine = bench.DeepffRunner(sizes, optimizer, LR[optimizer], batch, X, y)
        start = engine.net.params.theta.copy()
        step = _fused_step.plan(engine.trainer, engine.X, engine.Y, None, batch)
        with FlushDenormals():
            losses = [step.steps(order, s, 1)[0, 0] for s in range(0, order.shape[0], batch)]
        # the whole run in one call a thread; a call a step, with pauses that send the follower to sleep
        for per_step, pause, label in ((False, 0.0, optimizer), (True, 0.01, optimizer + ", a call a step")):
            ours = TwoCoreRunner(sizes, optimizer, LR[optimizer], batch, X, y, per_step=per_step)
            assert np.array_equal(start, ours.theta)
            ours.steps(order, pause)
            ours.close()
            result[label] = (float(np.abs(ours.theta - engine.net.params.theta).max()),
                             float(np.abs(ours.theta - start).max()), abs(ours.loss - float(np.mean(losses))),
                             ours.sleeps)
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
        sizes, rows = [13, 17, 9, 3], 200             # odd widths: the halves differ
        rng = np.random.default_rng(0)
        X = rng.random((rows, sizes[0]), dtype=np.float32)
        y = (X @ rng.standard_normal((sizes[0], sizes[-1])).astype(np.float32)).argmax(1)
        workloads = [("sgd", 32), ("adam", 32)]
    else:
        sizes = [784, 256, 128, 10]
        X, y, _, _ = bench.load_data(quick=False)
        workloads = WORKLOADS
        print("data: " + ("MNIST" if bench.MNIST.exists() else "random (MNIST not found at " + str(bench.MNIST) + ")"))
    if args.check:
        result = check(sizes, 31 if args.quick else 128, X, y)
        for label, (diff, moved, loss, sleeps) in result.items():
            print(f"{label}: max |theta - engine's| = {diff:.3g} after 3 steps that moved theta by up to "
                  f"{moved:.3g}; |loss - engine's| = {loss:.3g}"
                  + (f"; the follower slept {sleeps} times" if sleeps else ""))
        return result
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        workloads = [(o, b) for o, b in workloads if f"{o} b{b}" in wanted]
    rows = []
    names = ("deepff", "two-cores", "two-cores, a call a step")
    for optimizer, batch in workloads:
        runners = [bench.DeepffRunner(sizes, optimizer, LR[optimizer], batch, X, y),
                   TwoCoreRunner(sizes, optimizer, LR[optimizer], batch, X, y),
                   TwoCoreRunner(sizes, optimizer, LR[optimizer], batch, X, y, per_step=True),
                   bench.GemmFloor(sizes, optimizer, LR[optimizer], batch, X, y)]
        times = {r.name: [] for r in runners}
        for rnd in range(args.rounds + 1):
            for r in runners:
                time.sleep(bench.QUIET_GAP)
                t0 = time.perf_counter()
                r.epoch()
                if rnd:
                    times[r.name].append(time.perf_counter() - t0)
        runners[2].close()
        row = {"workload": f"{optimizer} b{batch}"}
        for name in names:
            row[name + "/floor"] = statistics.median(a / f for a, f in zip(times[name], times["floor"]))
        for name in names[1:]:
            row[name + "/deepff"] = statistics.median(a / d for a, d in zip(times[name], times["deepff"]))
        row.update({name: statistics.median(v) for name, v in times.items()})
        rows.append(row)
    print(f"medians of {args.rounds} interleaved rounds, seconds per epoch; ratios paired within rounds")
    ratios = [n + "/floor" for n in names] + [n + "/deepff" for n in names[1:]]
    print("| workload | " + " | ".join(names) + " | floor | " + " | ".join(ratios) + " |")
    print("|---|" + "---|" * (len(names) + 1 + len(ratios)))
    for r in rows:
        print(f"| {r['workload']} | " + " | ".join(f"{r[n]:.3f}" for n in names) + f" | {r['floor']:.3f} | "
              + " | ".join(f"{r[k]:.2f}" for k in ratios) + " |")
    return rows


if __name__ == "__main__":
    main()
