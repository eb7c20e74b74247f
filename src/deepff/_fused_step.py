"""The engine's compiled fast path: a whole mini-batch step in one call, and the one place that chooses it.

The numpy step in :meth:`deepff.training.Trainer` is the reference::

    h = net.forward(x, training=True); J = loss(h, y) + penalty(W)
    net.backward(y); penalty.add_grad(...); opt.step(theta, grad)

For a plain dense network (Dense layers without dropout or batch norm,
linear/sigmoid/ReLU hidden units, softmax + negative log-likelihood, sigmoid
+ binary cross-entropy or linear + squared error at the output, no penalty or
an L2 one, SGD or Adam) the same step runs as one compiled call,
:func:`deepff._kernels.dense_step_kernel` (or the same function built ahead
of time, :func:`deepff._aot.step`): Python is entered once per step
instead of a few dozen times. Where nothing needs Python between steps
(no callback that must run between them, ``Callback.between_steps``; no
max-norm constraint), the trainer runs many steps in one call
(:meth:`FusedStep.steps`, :func:`deepff._kernels.dense_steps_kernel`), up to
:data:`ROWS_PER_CALL` rows or :data:`FLOPS_PER_CALL` operations a call.
:func:`plan` decides, once per fit, whether a
run is such a case, as ``torch.optim`` picks its single-tensor, multi-tensor
or fused implementation in one spot. Everything else takes the numpy step,
and so does everything with ``DEEPFF_NUMBA=0`` or without numba.

The compiled step's results equal the numpy step's to float rounding
(tests/test_dense_step.py); :data:`ENABLED` = False turns the fast path off
(benchmarks/bench.py measures both).
"""

from __future__ import annotations

import contextlib
import math
import sys

import numpy as np

from . import _aot, _kernels
from . import activations as _activations
from . import losses as _losses
from ._twins import numpy_only
from .callbacks import Callback
from .layers import Dense

__all__ = ["ENABLED", "ROWS_PER_CALL", "FLOPS_PER_CALL", "LOAD_AFTER_S", "takes", "plan", "kernels_for",
           "numpy_seconds", "between_steps", "FusedStep"]

ENABLED = True
"""Whether :func:`plan` may choose the compiled step (False: always the numpy step)."""

ROWS_PER_CALL = 4096
"""The most rows a compiled call trains on when nothing needs Python between its steps (the trainer takes
:attr:`FusedStep.max_steps` steps a call): Python is entered once for many steps."""

FLOPS_PER_CALL = 4e9
"""The most floating-point operations of matrix products (6 per weight and row) a call of several steps
takes: about a tenth of a second here, so that a Ctrl-C, seen between calls, still stops a run at once."""

LOAD_AFTER_S = 1.0
"""Seconds of numpy steps (:func:`numpy_seconds`' guess, summed over the runs of a process) after which
a process imports numba and loads the compiled kernels: about 0.3-0.6 s once, which shorter runs would
not win back. Once numba is imported, every new run takes the kernels."""

_DEFERRED_S = [0.0]     # the guessed seconds of the runs this process ran without kernels so far


def numpy_seconds(network, n_rows, batch_size, epochs):
    """A rough guess of how long ``epochs`` epochs of the numpy step take (seconds).

    Six floating-point operations per weight and row (one product forward,
    two backward) at 10 GFLOP/s, plus 30 microseconds of Python per layer
    and step.

    Parameters
    ----------
    network : FeedForward
    n_rows, batch_size, epochs : int

    Returns
    -------
    float
    """
    steps = epochs * -(-n_rows // max(batch_size, 1))
    return epochs * n_rows * 6.0 * network.params.theta.size / 1e10 + steps * 30e-6 * len(network.layers)


def kernels_for(trainer, n_rows, batch_size):
    """The context a fit runs in: the compiled kernels, or the numpy code when the run is too short to load them.

    A run decides at its first fit and keeps its choice in
    ``trainer.compiled_kernels`` (and in its :meth:`~deepff.training.Trainer.state_dict`):
    a ``warm_start`` fit and a run resumed from a checkpoint take the code
    the run took, so they continue it to the bit in any process where the
    kernels can run (the compiled step rounds differently from the numpy
    code). The one change a run makes: once its epochs, counted from its
    first (``trainer.epochs``), add up to :data:`LOAD_AFTER_S` of numpy
    steps by :func:`numpy_seconds`' guess, a run on the numpy code takes
    the kernels from its next fit on (``fit(epochs=1, warm_start=True)`` in
    a loop); that depends on the run alone, so it too happens at the same
    fit in every process.

    At its first fit a run takes the numpy code, and does not import numba,
    when this process has not imported numba yet and its deferred fits so
    far, this one included, add up to less than :data:`LOAD_AFTER_S`: a
    short first fit (a worker of a parallel grid search, a small data set)
    costs what it costs without numba instead of numba's import and the
    kernels' load, and a process that runs many (a grid search, a
    ``partial_fit`` loop: the scikit-learn estimators start a run at every
    call) loads the kernels once they add up. ``DEEPFF_NUMBA=always`` takes
    the kernels for every run from the first, so that the same short fit
    gives the same bits however early in a process it runs; with
    ``DEEPFF_NUMBA=0`` (or without numba) the choice is the numpy code.
    Where the whole step has been built ahead of time (``deepff kernels
    --build``, :mod:`deepff._aot`) a run that it computes takes it from its
    first fit, however short: loading it costs no numba and next to no time.

    Parameters
    ----------
    trainer : Trainer
    n_rows, batch_size : int

    Returns
    -------
    context manager
    """
    choice = getattr(trainer, "compiled_kernels", None)     # (a Trainer pickled before it had one: None)
    if choice is None:
        choice = _first_choice(trainer, n_rows, batch_size)
    elif not choice and _kernels.setting() != "0" and \
            numpy_seconds(trainer.network, n_rows, batch_size, trainer.epochs) >= LOAD_AFTER_S:
        choice = _kernels.enabled()                         # the run has grown long enough
    trainer.compiled_kernels = choice
    return contextlib.nullcontext() if choice else numpy_only()


def _first_choice(trainer, n_rows, batch_size):
    """Whether a run takes the compiled kernels at its first fit (see :func:`kernels_for`)."""
    setting = _kernels.setting()
    if setting == "0":
        return False
    if takes(trainer) and _aot.step(trainer.network.params.theta.dtype) is not None:
        return True                                 # built ahead of time: no numba to load
    net, epochs = trainer.network, trainer.epochs
    this_fit = numpy_seconds(net, n_rows, batch_size, max(epochs - trainer.epoch, 0))
    if "numba" in sys.modules or setting == "always" or \
            numpy_seconds(net, n_rows, batch_size, epochs) >= LOAD_AFTER_S or \
            _DEFERRED_S[0] + this_fit >= LOAD_AFTER_S:
        return _kernels.enabled()                   # (imports numba; False where it cannot)
    _DEFERRED_S[0] += this_fit
    return False

_HIDDEN = {_activations.Linear: "linear", _activations.Sigmoid: "sigmoid", _activations.ReLU: "relu"}
# the output pairs the step computes, with their code in _kernels.STEP_OUTPUTS
_OUTPUTS = {(_losses.NegLogLikelihood, _activations.Softmax): "softmax",
            (_losses.BinaryCrossEntropy, _activations.Sigmoid): "sigmoid",
            (_losses.MeanSquaredError, _activations.Linear): "linear"}


def _loss_args(loss):
    """(c, gc, code of N) of :func:`deepff._kernels.dense_step_kernel` for a loss (see its docstring)."""
    sample_mean = getattr(loss, "reduction", "mean") == "sample_mean"
    code = 2 if sample_mean else (1 if loss.mean_over_rows else 0)
    if isinstance(loss, _losses.MeanSquaredError):
        c = 0.5 if loss.half else 1.0
        return c, 2.0 * c, code
    return 1.0, 1.0, code


def takes(trainer):
    """Whether the compiled step can run this trainer's steps (its network, optimizer, penalty and options).

    Parameters
    ----------
    trainer : Trainer

    Returns
    -------
    bool
        False also when :data:`ENABLED` is False. Whether the kernels can run
        here at all (numba, ``DEEPFF_NUMBA``), and whether the data's arrays
        suit them, :func:`plan` decides.
    """
    if not ENABLED:
        return False
    net, opt, penalty = trainer.network, trainer.optimizer, trainer.penalty
    if trainer.reducer is not None or trainer.transform is not None or trainer.clip_norm is not None:
        return False
    if penalty is not None and penalty.l1:
        return False
    if (getattr(opt, "kernel", None) not in ("adam_kernel", "sgd_kernel") or not opt.use_kernel
            or getattr(opt, "amsgrad", False)):
        return False
    layers = net.layers
    return not (any(type(layer) is not Dense or layer.dropout or layer.batch_norm for layer in layers)
                or any(type(layer.activation) not in _HIDDEN for layer in layers[:-1])
                or (type(net.loss), type(layers[-1].activation)) not in _OUTPUTS)


def plan(trainer, X, Y, w, batch_size):
    """The compiled step for this fit, or None when the numpy step must run.

    The step compiled ahead of time (:func:`deepff._aot.step`) where it is
    built, else numba's (:func:`deepff._kernels.dense_steps_kernel`).

    Parameters
    ----------
    trainer : Trainer
        Its network, optimizer, penalty and options decide (:func:`takes`).
    X : ndarray of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_outputs)
    w : ndarray of shape (n_samples,) or None
    batch_size : int
        The largest batch.

    Returns
    -------
    FusedStep or None
    """
    if not takes(trainer):
        return None
    arrays = (X, Y) if w is None else (X, Y, w)
    theta = trainer.network.params.theta
    if not all(type(a) in (np.ndarray, np.memmap) and a.dtype == theta.dtype and a.flags.c_contiguous
               for a in arrays) or X.ndim != 2 or Y.ndim != 2 or (w is not None and w.ndim != 1):
        return None
    # the step built ahead of time takes aligned arrays only (numba's compiles a version for others)
    kernel = _aot.step(theta.dtype) if all(a.flags.aligned for a in arrays) else None
    unchecked = kernel is not None
    if kernel is None:
        kernel = _kernels.dense_steps_kernel()
    if kernel is None:
        return None
    return FusedStep(trainer, X, Y, w, batch_size, kernel, unchecked)


def _batch_hook(cb):
    """Whether ``cb`` has its own on_batch_end (its class's or its own attribute; any for a duck-typed one)."""
    return getattr(getattr(cb, "on_batch_end", None), "__func__", None) is not Callback.on_batch_end


def _gradients_read(callbacks):
    """Whether a callback reads each step's gradients (says so, or has its own on_batch_end without saying)."""
    for cb in callbacks:
        reads = getattr(cb, "reads_gradients", None)
        if reads if reads is not None else _batch_hook(cb):
            return True
    return False


def between_steps(callbacks):
    """Whether a callback's on_batch_end must run right after each step (:attr:`Callback.between_steps`).

    Then the trainer takes one compiled step a call. A hook that reads the
    step's gradients (``reads_gradients`` True) must, whatever it says.

    Parameters
    ----------
    callbacks : list of Callback

    Returns
    -------
    bool
    """
    return any(_batch_hook(cb) and (getattr(cb, "between_steps", True) or getattr(cb, "reads_gradients", None))
               for cb in callbacks)


class FusedStep:
    """Compiled training steps, one or several to a call (see :func:`plan`, which builds it).

    Parameters
    ----------
    trainer : Trainer
    X, Y, w, batch_size
        As :func:`plan` takes them.
    kernel : callable
        :func:`deepff._kernels.dense_steps_kernel`'s kernel, or the same
        built ahead of time (:func:`deepff._aot.step`).
    unchecked : bool, default False
        Whether ``kernel`` reads its arguments without checking their types
        (the one built ahead of time): then each call checks them first.

    Attributes
    ----------
    max_steps : int
        The most steps a call of :meth:`steps` takes: :data:`ROWS_PER_CALL`
        rows' or :data:`FLOPS_PER_CALL` operations' worth, at least one.
    """

    def __init__(self, trainer, X, Y, w, batch_size, kernel, unchecked=False):
        net, opt, penalty = trainer.network, trainer.optimizer, trainer.penalty
        layers = net.layers
        theta = net.params.theta
        self._opt, self._theta, self._grad = opt, theta, net.params.grad
        self._X, self._Y = np.asarray(X), np.asarray(Y)
        self._w = np.ones(1, dtype=theta.dtype) if w is None else np.asarray(w)
        self._weighted = w is not None
        self._sample_mean = getattr(net.loss, "reduction", "mean") == "sample_mean"

        def offset(view):
            return (view.ctypes.data - theta.ctypes.data) // theta.itemsize

        self._dims = np.array([layers[0].n_in] + [layer.units for layer in layers], dtype=np.int64)
        self._woff = np.array([offset(layer.W) for layer in layers], dtype=np.int64)
        self._boff = np.array([offset(layer.b) for layer in layers], dtype=np.int64)
        self._acts = np.array([_kernels.STEP_HIDDEN[_HIDDEN[type(layer.activation)]] for layer in layers[:-1]]
                              + [0], dtype=np.int64)
        self._out = _kernels.STEP_OUTPUTS[_OUTPUTS[type(net.loss), type(layers[-1].activation)]]
        l2 = 0.0 if penalty is None else penalty.l2
        per_sample = penalty is not None and penalty.per_sample
        self._lossargs = np.array(_loss_args(net.loss) + (l2, float(per_sample), 0.0, 0.0,
                                                           float(trainer.halt_on_divergence)), dtype=np.float64)
        self._mask = net.params.weight_mask() if l2 else np.zeros(1, dtype=theta.dtype)
        self._opt_code = 0 if opt.kernel == "adam_kernel" else 1
        # plain SGD may move W inside the products (code 2) unless a callback reads each step's gradients
        self._fold = self._opt_code == 1 and not _gradients_read(trainer.callbacks)
        self._scratch = np.empty(_kernels.step_scratch_size(batch_size, self._dims.tolist()), dtype=theta.dtype)
        self._batch_size = batch_size
        flops = 6 * theta.size * batch_size               # a step's matrix products, about
        self.max_steps = max(1, min(ROWS_PER_CALL // batch_size, int(FLOPS_PER_CALL // flops)))
        self._hypers = np.zeros((self.max_steps, _kernels.STEP_HYPER), dtype=theta.dtype)
        self._results = np.zeros((self.max_steps, 3))
        self._kernel = kernel
        self._unchecked = unchecked       # the kernel does not check its arguments' types: steps() does
        self._states_ok = self._state_ids = ()   # the optimizer states _check has checked, and their ids

    def steps(self, order, start, count, lr_at=None):
        """Up to ``count`` steps in one compiled call, step k on the rows ``order[start + k bs:][:bs]``.

        The steps are those the trainer would take one at a time: an
        epoch's last step (the one that reaches the end of ``order``) leaves
        its gradient in ``params.grad``; plain SGD (no momentum, weight decay
        or penalty) moves the weights inside the matrix products and leaves
        their part of ``params.grad`` unwritten at the other steps, unless a
        callback reads each step's gradients
        (:attr:`deepff.callbacks.Callback.reads_gradients`).

        A step whose J is not finite leaves the weights and the optimizer's
        moments as they were and ends the call (the step not counted, the
        learning rate left at that step's), as the numpy step does when the
        trainer reports the divergence; with the trainer's
        ``halt_on_divergence`` False the update takes place, as in numpy.

        Parameters
        ----------
        order : ndarray of shape (n,) or deepff._order.LazyPermutation
            The epoch's row order.
        start : int
            Where the first step's rows begin in ``order``.
        count : int
            At most this many (and at most :attr:`max_steps`).
        lr_at : callable, optional
            ``lr_at(k)``: the learning rate of step k (a schedule's),
            set on the optimizer before its step begins.

        Returns
        -------
        ndarray of shape (k, 3)
            Each step's (J with the penalty, penalty, rows classified
            correctly; 0 for a regression), k <= ``count``: fewer after a J
            that is not finite, or before the first batch whose weights sum
            to 0 under the ``"sample_mean"`` reduction. A view, valid until
            the next call.

        Raises
        ------
        ZeroDivisionError
            When the loss's reduction is ``"sample_mean"`` and the first
            batch's weights sum to 0 (the loss's own error).
        TypeError
            With a kernel compiled ahead of time, when an array it would
            misread reaches it (no step is counted then).
        """
        bs, n = self._batch_size, order.shape[0]
        count = min(count, self.max_steps, -(-(n - start) // bs))
        rows = np.asarray(order[start:start + count * bs])
        opt, theta = self._opt, self._theta
        if lr_at is not None:
            opt.lr = lr_at(0)                           # (the first step's, even when it raises below)
        if self._weighted and self._sample_mean:
            for k in range(count):
                try:
                    _losses.weight_total(self._w[rows[k * bs:(k + 1) * bs]])   # the loss's own error for a batch
                except ZeroDivisionError:                                   # weighing 0: at its step
                    if k == 0:
                        raise
                    count = k
                    rows = rows[:count * bs]
                    break
        t, lrs, hypers = opt.t, [], self._hypers[:count]
        for k in range(count):
            if lr_at is not None:
                opt.lr = lr_at(k)
                lrs.append(opt.lr)
            states, scalars, flags = opt.kernel_args(theta)   # counts the step, as opt.step does
            hypers[k] = scalars + (0.0,) * (9 - len(scalars)) + flags + (False,) * (3 - len(flags))   # cast here
        states = states * 3 if len(states) == 1 else states
        if self._unchecked:
            try:
                rows = self._check(rows, states)
            except TypeError:
                opt.t = t                               # no step took place
                if lrs:
                    opt.lr = lrs[0]
                raise
        elif rows.dtype != np.int64 or not rows.flags.c_contiguous:
            rows = np.ascontiguousarray(rows, dtype=np.int64)
        code = 2 if self._fold else self._opt_code
        done = self._kernel(self._X, self._Y, self._w, self._weighted, rows, bs, theta, self._grad, self._mask,
                            self._dims, self._woff, self._boff, self._acts, self._out, self._scratch, self._lossargs,
                            code, self._opt_code if start + count * bs >= n else code, *states, hypers,
                            self._results[:count])
        if self._lossargs[7] and not math.isfinite(self._results[done - 1, 0]):   # that step's update not made
            opt.t = t + done - 1
            if lrs:
                opt.lr = lrs[done - 1]
        return self._results[:done]

    def _check(self, idx, states):
        """``idx`` as int64 in C order, once the arrays a kernel compiled ahead of time would misread are refused.

        Such a kernel (:func:`deepff._aot.step`) reads its arguments as the
        types it was compiled for, unchecked: an array of another dtype or
        layout would crash the process instead of raising. The fit's own
        arrays are checked at its first step, the optimizer's states when
        they are other arrays than the last step's (a few tenths of a
        microsecond a step otherwise).
        """
        ids = tuple(map(id, states))            # (the arrays checked last are held: their ids stay theirs)
        if ids != self._state_ids:
            theta = self._theta
            fixed = () if self._state_ids else (
                ("X", self._X, 2), ("Y", self._Y, 2), ("sample weights", self._w, 1), ("parameters", theta, 1),
                ("gradient", self._grad, 1), ("mask", self._mask, 1), ("scratch", self._scratch, 1),
                ("hyperparameters", self._hypers, 2))
            for name, a, ndim in (*fixed, *(("optimizer state", s, 1) for s in states)):
                if not (isinstance(a, np.ndarray) and a.dtype == theta.dtype and a.ndim == ndim
                        and a.flags.c_contiguous and a.flags.aligned):
                    raise TypeError(f"compiled step: {name} must be a C-ordered {ndim}-D {theta.dtype} array, got "
                                    f"{type(a).__name__} {getattr(a, 'dtype', '')} {getattr(a, 'shape', '')}")
                if name not in ("X", "Y", "sample weights", "mask") and not a.flags.writeable:
                    raise TypeError(f"compiled step: {name} must be writeable (the step writes it)")
            if any(s.shape != theta.shape for s in states) or self._grad.shape != theta.shape:
                raise TypeError("compiled step: the gradient and optimizer states must have the parameters' shape")
            self._states_ok, self._state_ids = states, ids
        if type(idx) is not np.ndarray or idx.dtype != np.int64 or idx.ndim != 1 or not idx.flags.c_contiguous:
            idx = np.ascontiguousarray(idx, dtype=np.int64).reshape(-1)
        return idx
