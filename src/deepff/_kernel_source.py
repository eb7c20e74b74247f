"""The plain Python source of deepff's compiled kernels, all in this one file.

:mod:`deepff._kernels` compiles these functions with numba (and
:mod:`deepff._aot` ahead of time) and says what each computes; see its
docstring and its getters' (:func:`deepff._kernels.adam_kernel`,
:func:`deepff._kernels.dense_step_kernel`, ...). They live in one file of
their own because numba's on-disk cache of a compiled function is
invalidated by changes to the function's own file only, and the whole step
compiles its callees into itself: were a callee in another file, a change
to it would leave the step's cached code stale. The callees are named
``_nb_*`` here and are set to their compiled versions by
:func:`deepff._kernels.step_function` before the step that calls them is
compiled; the numba intrinsics (calls of BLAS's ``gemm`` and of OpenBLAS's
pool at run-time addresses, a prefetch, an array at an address, the SSE
control register, and the C function the pool's thread runs) are defined by
:func:`_compile_caller` the same way. Nothing here imports numba at import time.
"""

from __future__ import annotations

import numpy as np


def _adam_pass(theta, grad, m, v, vmax, b1, c1, b2, c2, step_size, sqrt_bc2, eps, weight_decay,
               decay_factor, amsgrad, decoupled, root_by):
    # One pass of Adam/AdamW over the flat buffer (see optimizers.Adam).
    # Every scalar arrives already cast to theta's dtype (c1 = 1 - b1, c2 = 1 - b2),
    # so float32 buffers are updated in float32 arithmetic, as the numpy path and
    # PyTorch do, and the loop vectorises at full SIMD width. ``root_by`` says how
    # sqrt(v) / sqrt(bc2) is formed, all three to the same bits where _adam uses them:
    # 0 skips the division (sqrt_bc2 = 1: the bias corrections folded into the rate),
    # 1 divides, 2 multiplies in float64 by the float64 reciprocal of sqrt_bc2 and
    # rounds to float32 (float32 only: see _adam). Callers pass it as a constant, and
    # numba compiles a version for each (a literal argument), without the branch: a
    # flag read in the loop would stop it vectorising. 0 and 2 take one of the
    # divider's three operations per entry off it (sqrt, two divisions; a sixth faster).
    recip = 1.0 / np.float64(sqrt_bc2)
    for i in range(theta.shape[0]):
        g = grad[i]
        if decoupled:
            theta[i] = theta[i] * decay_factor              # theta *= 1 - lr * wd
        elif weight_decay != 0:
            g = g + weight_decay * theta[i]                 # d = g + wd * theta
        mi = b1 * m[i] + c1 * g                             # m = b1 m + (1 - b1) d
        vi = b2 * v[i] + c2 * (g * g)                       # v = b2 v + (1 - b2) d^2
        m[i] = mi
        v[i] = vi
        if amsgrad:
            if vi > vmax[i] or vi != vi:
                vmax[i] = vi                                # vmax = max(vmax, v), NaN kept
            vi = vmax[i]
        root = np.sqrt(vi)
        if root_by == 0:
            den = root + eps
        elif root_by == 1:
            den = root / sqrt_bc2 + eps                     # sqrt(v) / sqrt(bc2) + eps
        else:
            den = np.float32(root * recip) + eps            # the same, in float32
        theta[i] = theta[i] - step_size * (mi / den)        # theta -= lr / bc1 * m / den


def _adam(theta, grad, m, v, vmax, b1, c1, b2, c2, step_size, sqrt_bc2, eps, weight_decay, decay_factor,
          amsgrad, decoupled):
    # adam_kernel() and the whole step's update: the pass without a division where that
    # gives the same bits. sqrt_bc2 = 1: x / 1 = x. float32, with c = sqrt_bc2 normal in
    # (0, 1] (Adam's, for any beta2 in [0, 1)): the float64 product q' = fl64(r fl64(1 / c))
    # of r = sqrt(v) (never subnormal) is within 2^-52 (1 + 2^-54) |q| of q = r / c, which
    # is normal (c <= 1). No rounding boundary of float32 (a midpoint M = K 2^d of two
    # neighbours, K < 2^25) lies that near such a quotient: r - c M is a non-zero multiple
    # of the product of c's and M's last places, so |q - M| > 2^-49 M. Rounding q' to
    # float32 then gives fl32(q) (tests/test_optimizers.py checks every float32 r in [1, 2)
    # against many c). Any other c takes the division.
    if sqrt_bc2 == 1:
        _nb_adam_pass(theta, grad, m, v, vmax, b1, c1, b2, c2, step_size, sqrt_bc2, eps, weight_decay,
                      decay_factor, amsgrad, decoupled, 0)
    elif theta.itemsize == 4 and 1.1754944e-38 <= sqrt_bc2 <= 1:     # float32, c normal
        _nb_adam_pass(theta, grad, m, v, vmax, b1, c1, b2, c2, step_size, sqrt_bc2, eps, weight_decay,
                      decay_factor, amsgrad, decoupled, 2)
    else:
        _nb_adam_pass(theta, grad, m, v, vmax, b1, c1, b2, c2, step_size, sqrt_bc2, eps, weight_decay,
                      decay_factor, amsgrad, decoupled, 1)


def _sgd(theta, grad, buf, lr, mu, damp, weight_decay, first, nesterov, lr_in_velocity):
    # One pass of SGD over the flat buffer (see optimizers.SGD); the scalars
    # arrive cast to theta's dtype (damp = 1 - dampening). Without momentum
    # (and the rate outside the velocity) ``buf`` is unused.
    for i in range(theta.shape[0]):
        d = grad[i]
        if weight_decay != 0:
            d = d + weight_decay * theta[i]                 # d = g + wd * theta
        if lr_in_velocity:
            lg = d * lr
            b = buf[i] * mu - lg                            # v = mu v - lr d
            buf[i] = b
            if nesterov:
                theta[i] += b * mu - lg                     # theta += mu v - lr d
            else:
                theta[i] += b                               # theta += v
            continue
        if mu != 0:
            if first:
                b = d                                       # b_1 = d_1
            else:
                b = mu * buf[i] + damp * d                  # b = mu b + (1 - dampening) d
            buf[i] = b
            if nesterov:
                d = d + mu * b                              # d = d + mu b
            else:
                d = b
        theta[i] = theta[i] - lr * d                        # theta -= lr d


def _shift_by_row_max(a, out, m):
    # m_i = max_j a_ij and out_ij = a_ij - m_i: the stable start of softmax and
    # log-sum-exp (numpy's own SIMD exp then runs on ``out``, faster than a
    # compiled loop calling exp one value at a time)
    for i in range(a.shape[0]):
        mi = a[i, 0]
        for j in range(1, a.shape[1]):
            if a[i, j] > mi:
                mi = a[i, j]
        m[i] = mi
        for j in range(a.shape[1]):
            out[i, j] = a[i, j] - mi


def _divide_by_row_sum(e):
    # e_ij <- e_ij / sum_j e_ij (softmax's normalisation, in place)
    for i in range(e.shape[0]):
        s = e.dtype.type(0)
        for j in range(e.shape[1]):
            s += e[i, j]
        for j in range(e.shape[1]):
            e[i, j] = e[i, j] / s


def _add_l2(theta, grad, mask, l2):
    # grad += l2 theta on the masked entries (the weights): an L2 penalty's gradient,
    # the same product as regularizers.Penalty.add_grad's l2 * W
    for i in range(theta.shape[0]):
        grad[i] = grad[i] + theta[i] * l2 * mask[i]


# ---------------------------------------------------------------------------
# A whole training step of a plain dense network in one call
# ---------------------------------------------------------------------------

STEP_HIDDEN = {"linear": 0, "sigmoid": 1, "relu": 3}
"""Hidden activations the whole step takes (by the engine's name), and their codes.

Not tanh: numba calls ``tanh`` one value at a time, 5 to 20 times slower than
numpy's vector ``tanh`` (no SVML), which cost more than the whole step saves."""
STEP_OUTPUTS = {"softmax": 0, "sigmoid": 1, "linear": 2}
"""Output activations the whole step takes (with their canonical loss: negative log-likelihood for softmax,
binary cross-entropy for sigmoid, squared error for linear), and their codes."""
STEP_OPTIMIZERS = {"adam": 0, "sgd": 1, "sgd, plain update inside the products": 2}
"""Optimizers the whole step takes (their kernels :func:`adam_kernel`, :func:`sgd_kernel`), and their codes.
With code 2 a plain SGD step (no momentum, weight decay or penalty) moves W inside its weight-gradient
product and leaves W's gradient unwritten; other SGD settings run as code 1."""
STEP_HYPER = 12
"""Length of the whole step's ``hyper`` array: the optimizer kernel's scalars, zero-padded to 9, then its flags,
zero-padded to 3."""
GATHER_AHEAD = 8
"""Rows the step's gather asks memory for ahead of the row it copies (``benchmarks/gather.py``: 4 to 16 do alike)."""
SHARE_MIN = 32768
"""Fewest values (parameters of Adam's pass, entries of the batch's rows; SGD's pass: twice as many) whose work
the step shares with OpenBLAS's worker thread (``_pool_ready``): a hand-off costs 2-4 us (docs/performance.md)."""
SHARE_INTS = 16
"""int64 slots of one thread's share of the work (see ``_share``)."""

# The compiled kernels the step calls: numba resolves a global name when it compiles its user (step_function).
_nb_shift_by_row_max = _nb_divide_by_row_sum = None
_nb_adam_pass = _nb_adam = _nb_sgd = _nb_add_l2 = _nb_bias_act = _nb_act_backward = None
_nb_gather_rows = _nb_output_loss = _nb_forward = _nb_product = _nb_pass = _nb_pool_ready = _nb_update = None
_nb_gather = _nb_dense_step = None


_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112     # CBLAS's enums
_call_gemm = _prefetch = _call_pool = _view = _mxcsr = _set_mxcsr = _share_routine = None
# (set by _compile_caller(): numba resolves them when it compiles their users)


def _compile_caller():
    """Define the numba intrinsics: calls at run-time addresses (``cblas_?gemm``, OpenBLAS's pool), a prefetch,
    an array at an address, x86-64's SSE control register, and the C function a pool thread runs (imports numba)."""
    global _call_gemm, _prefetch, _call_pool, _view, _mxcsr, _set_mxcsr, _share_routine
    if _call_gemm is not None:
        return
    import platform

    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    x86 = platform.machine().lower() in ("x86_64", "amd64")
    i8p, i32, i64 = ir.IntType(8).as_pointer(), ir.IntType(32), ir.IntType(64)

    def call_at(builder, context, signature, llargs, ret):
        # call the function at the address llargs[0] with the other arguments: enums and counts as int32,
        # sizes and pointers as int64 (one register either way in x86-64's and AArch64's conventions)
        fnty = ir.FunctionType(ret, [context.get_value_type(t) for t in signature.args[1:]])
        builder.call(builder.inttoptr(llargs[0], fnty.as_pointer()), llargs[1:])
        return context.get_dummy_value()

    @intrinsic
    def call_gemm(typingctx, address, order, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        # cblas_?gemm(order, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), alpha and beta
        # of the dtype
        def codegen(context, builder, signature, llargs):
            return call_at(builder, context, signature, llargs, ir.VoidType())
        return types.void(address, order, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), codegen

    @intrinsic
    def call_pool(typingctx, address, nthreads, routine, args, stride):
        # OpenBLAS's gotoblas_pthread(nthreads, routine, args, stride): routine(args + i stride) for
        # i < nthreads, i = 0 on this thread, the others on its pool's threads; returns when all are done
        def codegen(context, builder, signature, llargs):
            return call_at(builder, context, signature, llargs, i32)
        return types.void(address, nthreads, routine, args, stride), codegen

    @intrinsic
    def prefetch(typingctx, a, i, j):
        # ask memory for a[i, j]'s cache line (LLVM's read, locality 2 of 3: not L1, data), not waiting for it
        def codegen(context, builder, signature, llargs):
            ary = context.make_array(signature.args[0])(context, builder, llargs[0])
            item = cgutils.get_item_pointer(context, builder, signature.args[0], ary, llargs[1:])
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                                "llvm.prefetch.p0")
            builder.call(fn, [builder.bitcast(item, i8p), i32(0), i32(2), i32(1)])
            return context.get_dummy_value()
        return types.void(a, i, j), codegen

    @intrinsic
    def view(typingctx, address, length, like):
        # the ``length`` values of like's type at the int64 address as a 1-D array (no owner: nothing frees it)
        arr = types.Array(like, 1, "C")

        def codegen(context, builder, signature, llargs):
            from numba.np.arrayobj import populate_array

            ary = context.make_array(arr)(context, builder)
            size = context.get_constant(types.intp, context.get_abi_sizeof(context.get_data_type(like)))
            populate_array(ary, data=builder.inttoptr(llargs[0], ary.data.type),
                           shape=[context.cast(builder, llargs[1], signature.args[1], types.intp)],
                           strides=[size], itemsize=size, meminfo=None)
            return ary._getvalue()
        return arr(address, length, like), codegen

    def sse_control(builder, name, slot):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p]), name)
        builder.call(fn, [builder.bitcast(slot, i8p)])

    @intrinsic
    def mxcsr(typingctx):
        # this thread's SSE control and status register (its flush-to-zero and denormals-are-zero bits
        # among them: deepff._fpenv); 0 off x86-64
        def codegen(context, builder, signature, llargs):
            if not x86:
                return i32(0)
            slot = cgutils.alloca_once(builder, i32)
            sse_control(builder, "llvm.x86.sse.stmxcsr", slot)
            return builder.load(slot)
        return types.int32(), codegen

    @intrinsic
    def set_mxcsr(typingctx, value):
        # load the register (nothing off x86-64)
        def codegen(context, builder, signature, llargs):
            if x86:
                value = context.cast(builder, llargs[0], signature.args[0], types.int32)
                slot = cgutils.alloca_once_value(builder, value)
                sse_control(builder, "llvm.x86.sse.ldmxcsr", slot)
            return context.get_dummy_value()
        return types.void(value), codegen

    @intrinsic
    def share_routine(typingctx, like):
        # the address of a C function void f(char *share) in the module being compiled that runs
        # _share(share, 0 of like's type): what OpenBLAS's pool threads call (_update, _gather)
        def codegen(context, builder, signature, llargs):
            name = "deepff_share_" + str(signature.args[0])
            fn = builder.module.globals.get(name)
            if fn is None:
                fn = ir.Function(builder.module, ir.FunctionType(ir.VoidType(), [i8p]), name)
                fn.linkage = "internal"
                inner = ir.IRBuilder(fn.append_basic_block())
                sig = types.void(types.int64, signature.args[0])
                cres = context.compile_subroutine(inner, _share, sig)
                context.call_internal_no_propagate(inner, cres.fndesc, sig, [inner.ptrtoint(fn.args[0], i64),
                                                   context.get_constant(signature.args[0], 0)])
                inner.ret_void()
            return builder.ptrtoint(fn, i64)
        return types.int64(like), codegen

    _call_gemm, _prefetch, _call_pool, _view = call_gemm, prefetch, call_pool, view
    _mxcsr, _set_mxcsr, _share_routine = mxcsr, set_mxcsr, share_routine


def _product(blas, a, trans_a, b, trans_b, c, alpha, beta):
    # c <- alpha op(a) op(b) + beta c for C-contiguous 2-D arrays of one dtype, at most one of a, b
    # transposed (blas is deepff._blas.gemms()). Through numpy's BLAS when found, else np.dot.
    if blas[2] == 0:
        if trans_a:
            ab = np.dot(a.T, b)
        elif trans_b:
            ab = np.dot(a, b.T)
        else:
            ab = np.dot(a, b)
        if alpha == 1 and beta == 0:
            c[:, :] = ab
        else:
            c[:, :] = alpha * ab + beta * c
        return
    m, n = c.shape
    k = a.shape[0] if trans_a else a.shape[1]
    ta = np.int32(_TRANS if trans_a else _NO_TRANS)
    tb = np.int32(_TRANS if trans_b else _NO_TRANS)
    lda, ldb, ldc = max(1, a.shape[1]), max(1, b.shape[1]), max(1, n)
    pa, pb, pc = np.int64(a.ctypes.data), np.int64(b.ctypes.data), np.int64(c.ctypes.data)
    al, be = c.dtype.type(alpha), c.dtype.type(beta)
    _call_gemm(blas[0] if c.itemsize == 4 else blas[1], np.int32(_ROW_MAJOR), ta, tb, np.int64(m), np.int64(n),
               np.int64(k), al, pa, np.int64(lda), pb, np.int64(ldb), be, pc, np.int64(ldc))


def step_scratch_size(n, dims):
    """Number of scratch entries :func:`dense_step_kernel`'s kernel needs for batches of up to ``n`` rows.

    Parameters
    ----------
    n : int
        Largest batch size.
    dims : sequence of int
        Layer widths n_0 (features), n_1, ..., n_L (outputs).

    Returns
    -------
    int
        n (n_0 + n_1 + ... + n_L) for x and every h^l, n n_L for y and as
        much for the output's logits, 2 n max(n_1..n_L) for the two alternating g
        buffers, n for the softmax row maxima.
    """
    return n * (sum(dims) + 2 * dims[-1] + 2 * max(dims[1:]) + 1)


def _bias_act(z, b, code):
    # a = z + b, then h = f(a), in place (in hidden layers only h is kept: the
    # derivatives below need only h). The formulas are those of the kernels above
    # and of the activations' numpy code; each activation has its own loop so that
    # LLVM vectorises it (one array, no aliasing to rule out).
    zero, one = z.dtype.type(0), z.dtype.type(1)
    n, m = z.shape
    for i in range(n):
        row = z[i]
        bias = b[0]
        if code == 3:                                   # relu: +0.0 for -0.0, NaN stays
            for j in range(m):
                a = row[j] + bias[j]
                row[j] = zero if a <= zero else a
        elif code == 1:                                 # logistic, in scipy's expit's overflow-free form
            for j in range(m):
                a = row[j] + bias[j]
                if a >= zero:
                    row[j] = one / (one + np.exp(-a))
                else:
                    e = np.exp(a)
                    row[j] = e / (one + e)
        else:                                           # identity
            for j in range(m):
                row[j] = row[j] + bias[j]


def _act_backward(g, h, code):
    # g <- dJ/da = g o f'(a), from h = f(a), in place
    if code == 0:
        return
    zero, one = g.dtype.type(0), g.dtype.type(1)
    n, m = g.shape
    for i in range(n):
        gr = g[i]
        hr = h[i]
        if code == 3:                                   # relu: g o [h > 0]
            for j in range(m):
                gr[j] = gr[j] * (one if hr[j] > zero else zero)
        else:                                           # logistic: (g o h) o (1 - h)
            for j in range(m):
                gr[j] = (gr[j] * hr[j]) * (one - hr[j])


def _gather_rows(X, Y, idx, x, y):
    # x = X[idx], y = Y[idx] into preallocated rows. Rows come from all over X, mostly from main memory: each
    # row's cache lines are asked for GATHER_AHEAD rows before it is copied, so that several rows are on their way
    # at once (at batch 128 on MNIST, 29 us a batch instead of 48: benchmarks/gather.py)
    n, d = idx.shape[0], X.shape[1]
    step = max(1, 64 // X.itemsize)                     # entries in a 64-byte cache line
    for r in range(-GATHER_AHEAD, n):
        ahead = r + GATHER_AHEAD
        if ahead < n:
            for c in range(0, d, step):
                _prefetch(X, idx[ahead], c)
            _prefetch(X, idx[ahead], d - 1)             # (a row that does not start a line ends in one more)
            _prefetch(Y, idx[ahead], 0)
            _prefetch(Y, idx[ahead], Y.shape[1] - 1)
        if r < 0:
            continue
        src = idx[r]
        for c in range(X.shape[1]):
            x[r, c] = X[src, c]
        for c in range(Y.shape[1]):
            y[r, c] = Y[src, c]


def _output_loss(z, h, y, W, weighted, idx, g, out_code, lossargs):
    # The batch loss J = c sum_i w_i sum_j l_ij / N from the logits z (as the
    # losses' value_from_logits: log-sum-exp for softmax, the stable form for
    # sigmoid; (h - y)^2 for linear), summed in float64, and in g the gradient
    # dJ/da^L = w_i (h - y) (gc / N). lossargs = (c, gc, reduction code, ...):
    # N = n k (code 0), n (code 1) or sum(w) (code 2). Returns (J, sum(w)); lossargs[6] = the rows classified
    # correctly (argmax h = argmax y for softmax; each h >= 0.5 iff y >= 0.5 for sigmoid), as the trainer counts.
    n, n_out = h.shape
    total, sw_sum, hits = 0.0, 0.0, 0.0
    for i in range(n):
        if out_code == 0:                               # first maxima, as numpy's argmax
            bh, by = 0, 0
            for j in range(1, n_out):
                if h[i, j] > h[i, bh]:
                    bh = j
                if y[i, j] > y[i, by]:
                    by = j
            hits += 1.0 if bh == by else 0.0
        elif out_code == 1:
            ok = True
            for j in range(n_out):
                if (h[i, j] >= 0.5) != (y[i, j] >= 0.5):
                    ok = False
            hits += 1.0 if ok else 0.0
        wi = np.float64(W[idx[i]]) if weighted else 1.0
        sw_sum += wi
        row = 0.0
        if out_code == 0:                               # softmax + NLL: sum_j y_ij (lse_i - z_ij)
            zmax = np.float64(z[i, 0])
            for j in range(1, n_out):
                zmax = max(zmax, np.float64(z[i, j]))
            s = 0.0
            for j in range(n_out):
                s += np.exp(np.float64(z[i, j]) - zmax)
            lse = zmax + np.log(s)
            for j in range(n_out):
                row += np.float64(y[i, j]) * (lse - np.float64(z[i, j]))
        elif out_code == 1:                             # sigmoid + BCE: max(z, 0) - z y + log(1 + e^-|z|)
            for j in range(n_out):
                zij = np.float64(z[i, j])
                row += max(zij, 0.0) - zij * np.float64(y[i, j]) + np.log1p(np.exp(-abs(zij)))
        else:                                           # linear + squared error
            for j in range(n_out):
                r = np.float64(h[i, j]) - np.float64(y[i, j])
                row += r * r
        total += wi * row
    code = lossargs[2]
    denom = sw_sum if code == 2 else (np.float64(n) if code == 1 else np.float64(n * n_out))
    loss = lossargs[0] * total / denom
    lossargs[6] = hits
    scale = lossargs[1] / denom
    for i in range(n):
        f = g.dtype.type(scale * W[idx[i]]) if weighted else g.dtype.type(scale)
        for j in range(n_out):
            g[i, j] = (h[i, j] - y[i, j]) * f
    return loss, sw_sum


def _forward(blas, x, theta, dims, woff, boff, hoff, acts, out_code, scratch, rowmax, z):
    # a^l = h^{l-1} W^l + b^l, h^l = f(a^l) for l = 1..L, each h^l in scratch (a^L in z); returns h^L
    n, L = x.shape[0], dims.shape[0] - 1
    h = x
    for l in range(1, L + 1):
        Wl = theta[woff[l - 1]:woff[l - 1] + dims[l - 1] * dims[l]].reshape(dims[l - 1], dims[l])
        bl = theta[boff[l - 1]:boff[l - 1] + dims[l]].reshape(1, dims[l])
        a = scratch[hoff[l]:hoff[l] + n * dims[l]].reshape(n, dims[l])
        _nb_product(blas, h, False, Wl, False, a, 1.0, 0.0)
        if l < L:
            _nb_bias_act(a, bl, acts[l - 1])
        else:
            _nb_bias_act(a, bl, 0)                      # a^L
            if out_code != 2:                           # (a linear output's loss reads h = a)
                z[:, :] = a
            if out_code == 0:                           # softmax
                _nb_shift_by_row_max(a, a, rowmax)
                np.exp(a, a)
                _nb_divide_by_row_sum(a)
            elif out_code == 1:                         # logistic, in expit's overflow-free form
                one = a.dtype.type(1)
                for i in range(n):
                    for j in range(dims[L]):
                        v = a[i, j]
                        if v >= 0:
                            a[i, j] = one / (one + np.exp(-v))
                        else:
                            e = np.exp(v)
                            a[i, j] = e / (one + e)
        h = a
    return h


def _pass(theta, grad, s1, s2, s3, opt_code, hyper):
    # The optimizer's pass over theta (or a slice of it) and its states: Adam (opt_code 0; s1, s2, s3 its m, v,
    # vmax) or SGD (its buffer), with hyper's scalars and flags (STEP_HYPER)
    if opt_code == 0:
        _nb_adam(theta, grad, s1, s2, s3, hyper[0], hyper[1], hyper[2], hyper[3], hyper[4], hyper[5], hyper[6],
                 hyper[7], hyper[8], hyper[9] != 0, hyper[10] != 0)
    else:
        _nb_sgd(theta, grad, s1, hyper[0], hyper[1], hyper[2], hyper[3], hyper[9] != 0, hyper[10] != 0,
                hyper[11] != 0)


def _share(share, like):
    # One thread's share of _update's or _gather's work, as the SHARE_INTS int64 at ``share`` say: entries (rows)
    # lo, hi; by the code in slot 13, 0: the addresses of theta, grad, of s1, s2, s3 each with its length, of
    # hyper, the optimizer's code; 1: the address of X, its rows and columns, of Y, its columns, of idx, x and y.
    # Slot 12: the SSE control register of the thread that handed the work out, which this thread takes for its
    # share (a pool thread does not flush denormals as the step's does: deepff._fpenv), so that the shares come
    # out as one thread's work would.
    sh = _view(share, SHARE_INTS, np.int64(0))
    lo, hi = sh[0], sh[1]
    own = _mxcsr()
    _set_mxcsr(sh[12])
    if sh[13] == 0:
        theta = _view(sh[2], hi, like)[lo:]
        grad = _view(sh[3], hi, like)[lo:]
        # (state buffers may be shorter than theta, none past its end: Adam's vmax without amsgrad, SGD's
        # buffer without momentum, which the pass then does not read)
        s1 = _view(sh[4], sh[5], like)[min(lo, sh[5]):min(hi, sh[5])]
        s2 = _view(sh[6], sh[7], like)[min(lo, sh[7]):min(hi, sh[7])]
        s3 = _view(sh[8], sh[9], like)[min(lo, sh[9]):min(hi, sh[9])]
        _nb_pass(theta, grad, s1, s2, s3, sh[11], _view(sh[10], STEP_HYPER, like))
    else:
        rows, d, k = sh[3], sh[4], sh[6]
        X = _view(sh[2], rows * d, like).reshape(rows, d)
        Y = _view(sh[5], rows * k, like).reshape(rows, k)
        x = _view(sh[8], hi * d, like).reshape(hi, d)[lo:]
        y = _view(sh[9], hi * k, like).reshape(hi, k)[lo:]
        _nb_gather_rows(X, Y, _view(sh[7], hi, np.int64(0))[lo:], x, y)
    _set_mxcsr(own)


def _pool_ready(blas, entries):
    # Whether to share work of ``entries`` values with OpenBLAS's worker: numpy's OpenBLAS lends its pool
    # (blas[3:6], see deepff._blas.gemms: found, and set to two threads or more now: a pool of one thread would
    # never run its share) and the work is long enough (SHARE_MIN)
    return (entries >= SHARE_MIN and blas.shape[0] >= 6 and blas[3] != 0
            and _view(blas[4], 1, np.int32(0))[0] >= 2 and _view(blas[5], 1, np.int32(0))[0] >= 2)


def _update(blas, theta, grad, s1, s2, s3, opt_code, hyper):
    # The optimizer's pass, after the step's products. Where _pool_ready, the pool's worker, which has just run
    # its half of the products and waits for the next, runs the second half of the entries while this thread
    # runs the first. The pass is element-wise: the same bits as one thread's.
    n = theta.shape[0]
    if _nb_pool_ready(blas, n if opt_code == 0 else n // 2):     # (SGD's entry costs a third of Adam's)
        half = n // 2 // 16 * 16                        # (16 entries: a whole number of 64-byte lines)
        shares = np.empty((2, SHARE_INTS), np.int64)
        for k in range(2):
            sh = shares[k]
            sh[0] = 0 if k == 0 else half
            sh[1] = half if k == 0 else n
            sh[2], sh[3] = theta.ctypes.data, grad.ctypes.data
            sh[4], sh[5] = s1.ctypes.data, s1.shape[0]
            sh[6], sh[7] = s2.ctypes.data, s2.shape[0]
            sh[8], sh[9] = s3.ctypes.data, s3.shape[0]
            sh[10], sh[11], sh[12], sh[13] = hyper.ctypes.data, opt_code, _mxcsr(), 0
        _call_pool(blas[3], np.int32(2), _share_routine(theta[0]), np.int64(shares.ctypes.data),
                   np.int32(SHARE_INTS * 8))
    else:
        _nb_pass(theta, grad, s1, s2, s3, opt_code, hyper)


def _gather(blas, X, Y, idx, x, y):
    # x = X[idx], y = Y[idx]. Where _pool_ready, the pool's worker copies the second half of the rows while this
    # thread copies the first: a shuffled batch's rows come mostly from main memory, two cores wait side by side.
    n = idx.shape[0]
    if _nb_pool_ready(blas, n * (X.shape[1] + Y.shape[1])):
        half = n // 2
        shares = np.empty((2, SHARE_INTS), np.int64)
        for k in range(2):
            sh = shares[k]
            sh[0] = 0 if k == 0 else half
            sh[1] = half if k == 0 else n
            sh[2], sh[3], sh[4] = X.ctypes.data, X.shape[0], X.shape[1]
            sh[5], sh[6] = Y.ctypes.data, Y.shape[1]
            sh[7], sh[8], sh[9] = idx.ctypes.data, x.ctypes.data, y.ctypes.data
            sh[12], sh[13] = _mxcsr(), 1
        _call_pool(blas[3], np.int32(2), _share_routine(x[0, 0]), np.int64(shares.ctypes.data),
                   np.int32(SHARE_INTS * 8))
    else:
        _nb_gather_rows(X, Y, idx, x, y)


def _dense_step(blas, X, Y, W, weighted, idx, theta, grad, mask, dims, woff, boff, acts, out_code,
                scratch, lossargs, opt_code, s1, s2, s3, hyper):
    # One training step on the rows idx of X, Y; the arguments and the five
    # stages are described in dense_step_kernel's docstring.
    n = idx.shape[0]
    L = dims.shape[0] - 1
    n_out = dims[L]
    dt = theta.dtype.type
    gmax = dims[1:].max()

    # scratch: x, y, h^1..h^L, the logits z, two g buffers, row maxima
    yoff = n * dims[0]
    hoff = np.empty(L + 1, np.int64)
    pos = yoff + n * n_out
    for l in range(1, L + 1):
        hoff[l] = pos
        pos += n * dims[l]
    toff = pos
    pos += n * n_out
    if scratch.shape[0] < pos + 2 * n * gmax + n:      # the layout's end: step_scratch_size(n, dims)
        raise ValueError("dense step: scratch buffer too small for this batch")
    x = scratch[:yoff].reshape(n, dims[0])
    y = scratch[yoff:yoff + n * n_out].reshape(n, n_out)
    z = scratch[toff:toff + n * n_out].reshape(n, n_out)
    gbuf0 = scratch[pos:pos + n * gmax]
    gbuf1 = scratch[pos + n * gmax:pos + 2 * n * gmax]
    rowmax = scratch[pos + 2 * n * gmax:pos + 2 * n * gmax + n]
    _nb_gather(blas, X, Y, idx, x, y)                   # x = X[idx], y = Y[idx]

    h = _nb_forward(blas, x, theta, dims, woff, boff, hoff, acts, out_code, scratch, rowmax, z)
    # the loss and g^L = dJ/da^L
    g = gbuf0[:n * n_out].reshape(n, n_out)
    loss, sw_sum = _nb_output_loss(z, h, y, W, weighted, idx, g, out_code, lossargs)
    l2 = lossargs[3]
    if l2 != 0:
        if lossargs[4] != 0:                            # a per-sample penalty: divided by the batch weight
            l2 = l2 / sw_sum
        sq = 0.0                                        # the penalty (l2 / 2) sum ||W^l||^2, in float64
        for l in range(L):
            part = 0.0
            for k in range(woff[l], woff[l] + dims[l] * dims[l + 1]):
                part += np.float64(theta[k]) * np.float64(theta[k])
            sq += part
        lossargs[5] = 0.5 * l2 * sq
        loss += lossargs[5]
    if not np.isfinite(loss) and lossargs[7] != 0:      # the caller reports it; the weights stay as they are
        return loss

    # backward: dW = h^T g, db = sum of g's rows, g <- (g W^T) o f'(a). Plain SGD (no momentum, decay or
    # penalty; numpy's gemm at hand) moves the weights inside the product, W <- W - lr h^T g, after g W^T
    # has read them, and b <- b - lr db: no pass over theta afterwards (W's part of grad is not written).
    plain = (opt_code == 2 and hyper[1] == 0 and hyper[3] == 0 and hyper[11] == 0 and l2 == 0
             and blas[2] != 0)
    lr = hyper[0]
    spare_is_1 = True                                   # which g buffer does not hold g
    for l in range(L, 0, -1):
        h_in = x if l == 1 else scratch[hoff[l - 1]:hoff[l - 1] + n * dims[l - 1]].reshape(n, dims[l - 1])
        Wl = theta[woff[l - 1]:woff[l - 1] + dims[l - 1] * dims[l]].reshape(dims[l - 1], dims[l])
        db = grad[boff[l - 1]:boff[l - 1] + dims[l]]
        db[:] = 0
        for i in range(n):
            gr = g[i]
            for j in range(dims[l]):
                db[j] += gr[j]
        if l > 1:
            spare = gbuf1 if spare_is_1 else gbuf0
            g_in = spare[:n * dims[l - 1]].reshape(n, dims[l - 1])
            _nb_product(blas, g, False, Wl, True, g_in, 1.0, 0.0)
        if plain:
            _nb_product(blas, h_in, True, g, False, Wl, -lr, 1.0)
            b = theta[boff[l - 1]:boff[l - 1] + dims[l]]
            for j in range(dims[l]):
                b[j] = b[j] - lr * db[j]
        else:
            dW = grad[woff[l - 1]:woff[l - 1] + dims[l - 1] * dims[l]].reshape(dims[l - 1], dims[l])
            _nb_product(blas, h_in, True, g, False, dW, 1.0, 0.0)
        if l > 1:
            _nb_act_backward(g_in, h_in, acts[l - 2])
            spare_is_1 = not spare_is_1
            g = g_in
    if plain:
        return loss

    # grad += l2 W (the penalty's gradient), then the optimizer's own kernel
    if l2 != 0:
        _nb_add_l2(theta, grad, mask, dt(l2))
    _nb_update(blas, theta, grad, s1, s2, s3, opt_code, hyper)
    return loss


def _dense_steps(blas, X, Y, W, weighted, rows, bs, theta, grad, mask, dims, woff, boff, acts, out_code, scratch,
                 lossargs, opt_code, last_code, s1, s2, s3, hypers, results):
    # hypers.shape[0] steps of _dense_step in one call (see dense_steps_kernel); returns the steps run
    n = rows.shape[0]
    for k in range(hypers.shape[0]):
        s = k * bs
        J = _nb_dense_step(blas, X, Y, W, weighted, rows[s:min(s + bs, n)], theta, grad, mask, dims, woff, boff,
                           acts, out_code, scratch, lossargs, last_code if s + bs >= n else opt_code, s1, s2, s3,
                           hypers[k])
        results[k, 0], results[k, 1], results[k, 2] = J, lossargs[5], lossargs[6]
        if not np.isfinite(J) and lossargs[7] != 0:
            return k + 1
    return hypers.shape[0]
