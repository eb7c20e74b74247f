"""Optional fused kernels (optimizer steps, softmax, the whole step), compiled with numba when installed.

The numpy code elsewhere is the readable reference: Adam's update in
:mod:`deepff.optimizers` is about a dozen whole-buffer passes, and softmax
reduces along a short last axis, which numpy does slowly. This module does
the same arithmetic in ONE loop each, which matters when the matrix products
are small. It is used only when numba can be imported (``pip install
"deepff[fast]"``) and ``DEEPFF_NUMBA`` is not ``0`` (:mod:`deepff._switch`,
whose names this module offers too). :mod:`deepff._piece_kernels` holds the
numpy step's other kernels (ReLU's bias and activation, the derivatives, the loss sum).

The optimizer kernels perform the numpy path's operations in the same order
and in the parameters' dtype, so their results are the same bits (LLVM does
not contract a * b + c into a fused multiply-add unless told to). One is
formed otherwise to the same bits: in float32, Adam's sqrt(v) / sqrt(bc2) as a
float64 product by the reciprocal (``_kernel_source._adam`` says why). Softmax compiles only
its row passes and leaves ``exp`` to numpy's vector code; its row sums run in
another order than numpy's, so it agrees with numpy to float rounding.
tests/test_kernels.py checks both claims.

:func:`dense_step_kernel` goes further: a whole mini-batch step of a plain
dense network (forward, loss, backward, update) in one compiled call
(:func:`dense_steps_kernel`: many in one call), built from the kernels above
and a matrix product through numpy's BLAS. The functions compiled are in
:mod:`deepff._kernel_source`, all in one file (it says why); this module
compiles them and says what they compute. tests/test_dense_step.py checks
the step against the engine and against finite differences;
tests/test_compiled_runs.py, many steps a call against one.
"""

from __future__ import annotations

import functools

from . import _blas
from . import _kernel_source as _src
from ._kernel_source import (
    GATHER_AHEAD,
    SHARE_MIN,
    STEP_HIDDEN,
    STEP_HYPER,
    STEP_OPTIMIZERS,
    STEP_OUTPUTS,
    step_scratch_size,
)
from ._switch import SETTINGS, enabled, refresh, setting

__all__ = [
    "enabled", "setting", "SETTINGS", "refresh", "compiled", "adam_kernel", "sgd_kernel", "softmax_kernels",
    "dense_step_kernel", "dense_steps_kernel", "step_function", "step_scratch_size", "STEP_HIDDEN",
    "STEP_OUTPUTS", "STEP_OPTIMIZERS", "STEP_HYPER", "GATHER_AHEAD", "SHARE_MIN"]

_CACHE = {}


def compiled(name, func):
    """``func`` compiled by numba (cached on disk, no GIL, numpy's error model), once per process.

    Parameters
    ----------
    name : str
        The key it is kept under in this process.
    func : function
        The plain Python function.

    Returns
    -------
    numba dispatcher
    """
    if name not in _CACHE:
        import numba

        _CACHE[name] = numba.njit(cache=True, nogil=True, error_model="numpy")(func)
    return _CACHE[name]


def adam_kernel():
    """Return the compiled one-pass Adam kernel, or None without numba.

    Returns
    -------
    callable or None
        ``kernel(theta, grad, m, v, vmax, b1, c1, b2, c2, step_size,
        sqrt_bc2, eps, weight_decay, decay_factor, amsgrad, decoupled)``
        updating the 1-D arrays theta, m, v (and vmax when amsgrad) of shape
        (n_params,) in place; every float scalar must have theta's dtype.
    """
    if not enabled():
        return None
    if "adam" not in _CACHE:
        _src._nb_adam_pass = compiled("adam_pass", _src._adam_pass)   # what it calls
    return compiled("adam", _src._adam)


def sgd_kernel():
    """Return the compiled one-pass SGD kernel, or None without numba.

    Returns
    -------
    callable or None
        ``kernel(theta, grad, buf, lr, mu, damp, weight_decay, first,
        nesterov, lr_in_velocity)`` updating theta (and the momentum buffer
        ``buf``) of shape (n_params,) in place; every float scalar must have
        theta's dtype.
    """
    return compiled("sgd", _src._sgd) if enabled() else None


def softmax_kernels():
    """Return the compiled halves of a row-wise softmax, or None without numba.

    Returns
    -------
    tuple of callable, or None
        ``(shift, normalize)``: ``shift(a, out, m)`` writes the row maxima of
        a (n_samples, n_units) into m (n_samples,) and a - m into out;
        ``normalize(e)`` divides each row of e by its sum, in place. Between
        the two the caller applies ``np.exp``.
    """
    return (compiled("shift_by_row_max", _src._shift_by_row_max),
            compiled("divide_by_row_sum", _src._divide_by_row_sum)) if enabled() else None


def dense_step_kernel():
    """Return the compiled whole training step of a plain dense network, or None without numba.

    The step does on one batch, in a single call, what the numpy engine does
    in :meth:`deepff.training.Trainer` for a plain dense network:

    1. gather the batch rows x = X[idx], y = Y[idx]
    2. forward: for l = 1..L, a^l = h^{l-1} W^l + b^l (numpy's BLAS, see
       :mod:`deepff._blas`), h^l = f(a^l)
    3. the batch loss J = c sum_i w_i sum_j l_ij / N from the output's logits,
       as the losses' ``value_from_logits`` compute it (softmax + negative
       log-likelihood, sigmoid + binary cross-entropy, linear + squared
       error), plus the L2 penalty (l2 / 2) sum ||W||^2 (divided by sum(w) for
       a per-sample penalty); if J is not finite the step stops here and
       returns it, the weights untouched (unless told to go on)
    4. backward: g^L = w o (h^L - y) (gc / N) (the canonical link), then for
       l = L..1 dW^l = (h^{l-1})^T g^l, db^l = column sums of g^l,
       g^{l-1} = (g^l (W^l)^T) o f'(a^{l-1})
    5. grad += l2 W, then the update of :func:`adam_kernel` or :func:`sgd_kernel`;
       with ``opt_code`` 2, plain SGD (no momentum, weight decay or penalty)
       with numpy's gemm instead updates W^l inside its weight-gradient product,
       W^l <- W^l - lr (h^{l-1})^T g^l (BLAS's beta = 1), once g^l (W^l)^T has
       read W^l, and b^l <- b^l - lr db^l: no pass over theta follows, and W's
       part of ``grad`` is not written. An Adam pass of ``SHARE_MIN`` parameters
       or more (SGD's: twice as many) runs half on this thread and half on the
       worker thread of numpy's OpenBLAS (through its ``gotoblas_pthread``, where
       :func:`deepff._blas.gemms` finds it and OpenBLAS runs two threads or
       more), which has just run its share of the products and waits for the
       next: element-wise, so the same bits as on one thread
       (``benchmarks/shared_pass.py``); so does the gather of step 1, for
       batches of ``SHARE_MIN`` values or more

    The element-wise formulas are the numpy path's; the bias gradients and the
    loss are summed in another order than numpy's pairwise sums (the loss in
    float64), so a fit agrees with the engine's to float rounding, not to the bit.

    Returns
    -------
    callable or None
        The compiled step with numpy's ``gemm`` bound (:func:`deepff._blas.gemms`):
        ``kernel(X, Y, W, weighted, idx, theta, grad, mask, dims, woff, boff,
        acts, out_code, scratch, lossargs, opt_code, s1, s2, s3, hyper) -> J``:

        * X (n_rows, n_0), Y (n_rows, n_L): the whole training set and targets
          (C-contiguous, theta's dtype); W (n_rows,) the sample weights, read
          only when ``weighted``; ``idx`` the batch's rows (int64)
        * theta, grad, mask (n_params,): the flat parameters, gradient and
          weight mask; ``dims`` (L + 1,) the layer widths; ``woff``, ``boff``
          (L,) the offsets of every W^l and b^l in theta
        * ``acts`` (L,; the last unused) hidden activation codes of
          :data:`STEP_HIDDEN`; ``out_code`` of :data:`STEP_OUTPUTS`;
          ``scratch`` of :func:`step_scratch_size` entries
        * ``lossargs`` (8,) float64: c, gc, the code of N (0: n k, 1: n,
          2: sum(w)), l2, 1 for a per-sample penalty, two slots the kernel
          sets (the penalty's value; the rows classified correctly, 0 for a
          linear output), and 1 to stop before the update when J is not
          finite (0: update all the same)
        * ``opt_code`` of :data:`STEP_OPTIMIZERS`, its state arrays ``s1``,
          ``s2``, ``s3`` (Adam's m, v, vmax; SGD's buffer three times) and
          ``hyper`` (:data:`STEP_HYPER`,) in theta's dtype: the optimizer
          kernel's scalars, zero-padded to 9, then its flags as 1 or 0,
          padded to 3 (:meth:`deepff.optimizers.Optimizer.kernel_args`)

        (:mod:`deepff._aot` compiles the same step ahead of time.)
    """
    if not enabled():
        return None
    step_function()
    return functools.partial(_CACHE["dense_step"], _blas.gemms())


def dense_steps_kernel():
    """Return K of :func:`dense_step_kernel`'s steps in one compiled call (the same bits), or None without numba.

    Returns
    -------
    callable or None
        ``kernel(X, Y, W, weighted, rows, bs, theta, grad, mask, dims, woff, boff, acts, out_code, scratch,
        lossargs, opt_code, last_code, s1, s2, s3, hypers, results) -> int``: step k < K = ``hypers.shape[0]``
        runs :func:`dense_step_kernel`'s kernel on ``rows[k bs:(k + 1) bs]`` (int64) with ``hypers[k]``,
        ``opt_code`` (``last_code`` for the step reaching the end of ``rows``), into ``results[k]`` ((K, 3)
        float64: J, penalty, rows right); returns K, or fewer after a J not finite when ``lossargs[7]`` says.
    """
    if not enabled():
        return None
    step_function()
    return functools.partial(_CACHE["dense_steps"], _blas.gemms())


def step_function():
    """The plain function of a run of whole steps, with numba's versions of its callees in place (imports numba).

    :func:`dense_steps_kernel` compiles it just in time, :mod:`deepff._aot` ahead of time; either way
    the callees it calls by global name (the single step of :func:`dense_step_kernel` among them) must
    be compiled first, which this does (once per process).

    Returns
    -------
    function
        ``_dense_steps(blas, X, Y, ...)``: :func:`dense_steps_kernel`'s kernel
        with numpy's ``gemm`` addresses (:func:`deepff._blas.gemms`) first.
    """
    if "dense_step" not in _CACHE:
        _src._compile_caller()
        callees = ("shift_by_row_max", "divide_by_row_sum", "adam_pass", "sgd", "add_l2", "bias_act", "act_backward",
                   "gather_rows", "product")
        callees += ("pool_ready", "output_loss", "forward", "adam", "pass", "update", "gather", "dense_step")
        # (the last eight call those before them)
        for name in callees:
            setattr(_src, "_nb_" + name, compiled(name, getattr(_src, "_" + name)))
        compiled("dense_steps", _src._dense_steps)
    return _src._dense_steps
