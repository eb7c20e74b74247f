"""The training loop: mini-batches, shuffling, schedules, callbacks, history.

One epoch, for a network ``net`` and an optimizer ``opt``::

    order = shuffle_rng.permutation(n)                 # a new order every epoch
    for each slice of ``batch_size`` indices (the last one may be shorter):
        x, y = X[idx], Y[idx]                          # contiguous gather
        net.forward(x, training=True)                  # a^l, h^l for every layer
        J = loss(h^L, y) + penalty(W)                  # must stay finite
        net.backward(y)                                # dJ/dtheta into net.params.grad
        penalty.add_grad(...); clip_grad_norm(...)     # optional
        opt.lr = schedule(...)                         # optional
        opt.step(theta, grad)                          # the only place weights change
        apply_max_norm(...)                            # optional

For a plain dense network (see :mod:`deepff._fused_step`) the same step,
gather to update, runs as one compiled call when numba is installed; the
lines above stay the reference it is tested against.

Each step runs with denormal floats read and written as zero, which spares
Intel CPUs a slow path (see :mod:`deepff._fpenv`; ``DEEPFF_FLUSH_DENORMALS=0``
turns it off).

The architecture (:mod:`deepff.network`) knows nothing of this loop, and
the optimizers (:mod:`deepff.optimizers`) know nothing of layers.
"""

from __future__ import annotations

import copy
import math
import numbers
import signal
import threading
import time

import numpy as np

from . import _fused_step
from . import optimizers as _optimizers
from . import schedules as _schedules
from ._fpenv import FlushDenormals
from ._order import epoch_order, gather
from .callbacks import MONITORS, Callback, EarlyStopping, History  # noqa: F401 - their public home is here too
from .errors import DivergenceError, InputError, SpecError
from .metrics import _hits, evaluate  # noqa: F401 - evaluate: its public home is here too
from .regularizers import Penalty, apply_max_norm, clip_grad_norm
from .validation import data_digest

__all__ = ["History", "Callback", "EarlyStopping", "Trainer", "class_weights", "evaluate"]


def class_weights(labels, class_weight, n_classes):
    """Per-sample weights from a class-weight setting.

    Parameters
    ----------
    labels : ndarray of shape (n_samples,)
        Integer class labels 0..n_classes-1.
    class_weight : "balanced", dict or None
        "balanced" gives class c the weight n_samples / (k * n_c), k the
        number of classes present, as scikit-learn defines it; a dict maps
        class index to a weight >= 0.
    n_classes : int

    Returns
    -------
    ndarray of shape (n_samples,) or None
    """
    if class_weight is None:
        return None
    labels = np.asarray(labels, dtype=np.int64)
    if class_weight == "balanced":
        counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
        present = int(np.count_nonzero(counts))             # classes that occur, as scikit-learn counts
        per_class = np.where(counts > 0, labels.size / (present * np.maximum(counts, 1)), 0.0)
    elif isinstance(class_weight, dict):
        per_class = np.ones(n_classes)
        for c, wt in class_weight.items():
            if isinstance(c, bool) or not (isinstance(c, (int, np.integer)) and 0 <= c < n_classes):
                raise InputError(f"class_weight names class {c!r}; valid classes are 0..{n_classes - 1}")
            if isinstance(wt, bool) or not isinstance(wt, numbers.Real) or not (0 <= wt < math.inf):
                raise InputError(f"class_weight for class {c} must be a finite number >= 0, got {wt!r}")
            per_class[int(c)] = float(wt)
    else:
        raise InputError(f"class_weight must be 'balanced', a dict or None, got {class_weight!r}")
    return per_class[labels]


def _positive_int(name, value):
    """Return ``value`` as an int after checking it is an integer >= 1 (epochs, batch_size).

    Raises
    ------
    SpecError
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise SpecError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class _InterruptFlag:
    """Turns the first Ctrl-C into a request to stop after the current step."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class _BatchBuffers:
    """What the steps of one fit share: the data, preallocated batch arrays and the compiled step, if any."""

    def __init__(self, trainer, X, Y, w, bs):
        net = trainer.network
        self.X, self.Y, self.w, self.size = X, Y, w, bs
        self.x = np.empty((bs, X.shape[1]), dtype=net.dtype)
        self.y = np.empty((bs, Y.shape[1]), dtype=Y.dtype)
        self.wb = None if w is None else np.empty(bs, dtype=w.dtype)
        self.wd = None if trainer.reducer is None else np.empty(bs, dtype=net.dtype)
        self.max_norm = trainer._has_max_norm()
        self.fused = _fused_step.plan(trainer, X, Y, w, bs)   # (it counts the correct rows itself)
        # the class of every row, once per fit: a numpy step then compares one argmax with a gather
        classification = net.task == "classification" and self.fused is None
        self.labels = Y.argmax(axis=1) if classification and not net.multi_label and Y.shape[1] > 1 else None
        self.lb = None if self.labels is None else np.empty(bs, dtype=self.labels.dtype)


class Trainer:
    """Mini-batch training of a :class:`~deepff.network.FeedForward`.

    Parameters
    ----------
    network : FeedForward
        A built network (its dtype decides the dtype of the data).
    optimizer : str, dict or Optimizer, default "sgd"
        See :mod:`deepff.optimizers`; ``"lbfgs"`` trains full-batch. An
        instance is copied (with any state it holds): the trainer's own
        copy is :attr:`optimizer`, and the object passed in is left as it was.
    schedule : str, dict or Schedule, optional
        Learning-rate schedule (see :mod:`deepff.schedules`); an instance
        is copied, as the optimizer is.
    penalty : Penalty or dict, optional
        Weight penalty (L1/L2/elastic net).
    clip_norm : float, optional
        Clip the global gradient norm to this value before each step.
    epochs : int, default 10
    batch_size : int, default 32
    shuffle : bool, default True
    early_stopping : EarlyStopping, dict or bool, optional
        An instance is copied with its state cleared, so one object can
        configure several runs; the run's best epoch is in
        ``trainer.early_stopping``.
    callbacks : list of Callback, optional

    Attributes
    ----------
    epoch : int
        Epochs completed so far.
    step : int
        Optimizer steps taken so far.
    history : History
    transform : callable or None
        A per-batch input transform, ``transform(X, idx, epoch, out, next_idx)``:
        writes the transformed rows ``X[idx]`` of ``epoch`` into ``out`` (and
        may start on the next batch, ``X[next_idx]``, meanwhile); a
        ``close()`` method, if it has one, is called when fit ends. None
        (the default) copies the rows. :class:`deepff.augment.Augment` is one.
    row_order : callable or None
        ``row_order(n) -> ndarray of shape (n,)``: the order of the rows in
        each new epoch (a permutation of 0..n-1). None (the default) draws
        it from the network's shuffling generator (or keeps the file order
        when ``shuffle`` is False). ``deepff.sklearn`` sets it to replay
        scikit-learn's draws.
    metrics : dict of str to callable
        Computed at the end of every epoch, after the validation data's loss
        and before the schedule, early stopping and the callbacks see the
        record: ``record[name] = metric(trainer, record)``.
    halt_on_divergence : bool
        True (the default): a non-finite loss (or weights) stops training
        with :class:`~deepff.errors.DivergenceError`, the last finite
        weights kept. False: training goes on as scikit-learn's does, and
        the caller judges the outcome (``deepff.sklearn`` restores the best
        validation epoch, or reports non-finite weights).
    """

    def __init__(self, network, optimizer="sgd", schedule=None, penalty=None, clip_norm=None,
                 epochs=10, batch_size=32, shuffle=True, early_stopping=None, callbacks=None):
        from .spec import parse_regularization

        if not getattr(network, "built", False):
            raise InputError("Trainer needs a built network (its weights exist): call "
                             "network.build(n_features) first, or use Network.fit")
        self.network = network
        # The trainer works on its own copies of an optimizer, schedule or early-stopping
        # object it is given: their state (steps, moments, best epoch and weights) belongs
        # to this run, and an object reused for another network or run starts clean.
        self.optimizer = copy.deepcopy(_optimizers.get(optimizer))
        self.schedule = None if schedule is None else copy.deepcopy(_schedules.get(schedule))
        # a schedule given without its length (total_steps None) spans this run's epochs
        self._schedule_spans_run = getattr(self.schedule, "total_steps", 0) is None
        if penalty is not None and not isinstance(penalty, Penalty):
            penalty = parse_regularization(penalty)
        self.penalty = penalty if penalty is not None and penalty.active else None
        if clip_norm is not None and (isinstance(clip_norm, bool) or not isinstance(clip_norm, numbers.Real)
                                      or not 0 < clip_norm < math.inf):
            raise SpecError(f"clip_norm must be a finite positive number or None, got {clip_norm!r}")
        self.clip_norm = clip_norm
        self.epochs, self.batch_size = _positive_int("epochs", epochs), _positive_int("batch_size", batch_size)
        self.shuffle = bool(shuffle)
        if isinstance(early_stopping, dict) or early_stopping is True:
            from .spec import parse_early_stopping

            early_stopping = EarlyStopping(**parse_early_stopping(early_stopping))
        elif early_stopping is False:
            early_stopping = None
        elif early_stopping is not None:
            if not isinstance(early_stopping, EarlyStopping):
                raise SpecError("early_stopping must be an EarlyStopping, a dict of its arguments, "
                                f"True, False or None, got {early_stopping!r}")
            early_stopping = copy.deepcopy(early_stopping)
            early_stopping.reset()
        self.early_stopping = early_stopping
        hooks = ("on_train_begin", "on_epoch_begin", "on_batch_end", "on_epoch_end", "on_train_end")
        if callbacks is None:
            callbacks = []
        elif isinstance(callbacks, (Callback, str, bytes, dict)) or all(hasattr(callbacks, h) for h in hooks):
            callbacks = [callbacks]    # one callback (or one wrong thing, named below)
        else:
            try:
                callbacks = list(callbacks)
            except TypeError:
                callbacks = [callbacks]
        for cb in callbacks:   # a Callback, or any object with all of its hooks
            if isinstance(cb, (str, bytes, dict)) or not all(callable(getattr(cb, h, None)) for h in hooks):
                raise SpecError("callbacks must be deepff.Callback objects (subclass Callback and override the "
                                f"hooks you need), got {cb!r}")
        self.callbacks = callbacks
        if getattr(self.optimizer, "full_batch", False):
            # a line search over the whole data set: per-step settings and a noisy objective do not fit
            unused = [name for name, value in (("schedule", self.schedule), ("clip_norm", clip_norm))
                      if value is not None]
            for i, layer in enumerate(network.layers):
                if getattr(layer, "max_norm", None) is not None:
                    unused.append(f"max_norm (layer {i})")
                if getattr(layer, "dropout", 0) > 0:
                    unused.append(f"dropout (layer {i}: a new mask at every evaluation makes the objective noisy)")
            if unused:
                raise SpecError(f"optimizer {self.optimizer.name!r} minimises the full-batch loss by line search, "
                                f"so it takes no {', '.join(unused)}; drop them or use a mini-batch optimizer "
                                "(sgd, adam, adamw, rmsprop, adagrad)")
        self.base_lr = float(getattr(self.optimizer, "lr", 0.0) or 0.0)
        self.epoch = 0
        self.step = 0
        self.history = History()
        self.stop_requested = False
        # position inside the current epoch, so that a run stopped mid-epoch resumes exactly
        self._order, self._pos, self._partial = None, 0, [0.0, 0.0, 0, 0.0]
        self.data_digest = None      # of the data the last fit trained on (validation.data_digest)
        # whether this run takes the compiled kernels: decided at its first fit, kept by warm starts and
        # checkpoints (deepff._fused_step.kernels_for); None until then
        self.compiled_kernels = None
        self._flag = _InterruptFlag()
        self.transform = None       # per-batch input transform (data augmentation), see the class docstring
        #: a deepff.distributed.Reducer when K processes train this model together (Network.fit(comm=...))
        self.reducer = None
        self.row_order = None       # the rows' order in each epoch, see the class docstring
        self.metrics = {}           # more entries of each epoch's record, see the class docstring
        self.halt_on_divergence = True   # see the class docstring

    # --------------------------------------------------------------- helpers
    def request_stop(self):
        """Stop after the current optimizer step (what Ctrl-C does); the run can be resumed."""
        self._flag.requested = True

    def _has_max_norm(self):
        return any(layer.max_norm is not None for layer in self.network.layers)

    # ------------------------------------------------------------------ fit
    def fit(self, X, Y, sample_weight=None, validation_data=None):
        """Train on prepared arrays until ``epochs`` epochs are done.

        Parameters
        ----------
        X : ndarray or scipy.sparse CSR matrix of shape (n_samples, n_features)
            Already validated and of the network's dtype
            (``network.prepare_inputs``); a sparse X is densified one
            batch at a time (mini-batch optimizers only).
        Y : ndarray of shape (n_samples, n_outputs)
            Prepared targets (``network.prepare_targets``).
        sample_weight : ndarray of shape (n_samples,), optional
        validation_data : tuple (X_val, Y_val) or (X_val, Y_val, w_val), optional
            Prepared validation arrays, evaluated after every epoch.

        Returns
        -------
        History

        Raises
        ------
        DivergenceError
            When the loss stops being finite.
        """
        self._check_prepared(X, Y, sample_weight, validation_data)
        self.data_digest = data_digest(X, Y, sample_weight)    # checkpoints carry it (resume on other data)
        es = self.early_stopping
        if es is not None and es.monitor.endswith("accuracy") and self.network.task != "classification":
            raise InputError(f"early stopping monitors {es.monitor!r}, but this run is a {self.network.task}, "
                             "which has no accuracy; monitor 'val_loss' or 'loss'")
        if es is not None and es.monitor.startswith("val_") and validation_data is None:
            raise InputError(f"early stopping monitors {es.monitor!r}, which this run does not compute; give "
                             "validation data or a validation_split (or, in a new fit, monitor 'loss')")
        dist = self.reducer        # --- distributed (deepff.distributed): every rank checks the others
        if dist is not None and self.penalty is not None and self.penalty.per_sample:
            raise InputError("a per-sample penalty (divided by each batch's weight) is not available in a "
                             "distributed run: use a plain penalty (per_sample=False)")
        if not isinstance(X, np.ndarray) and getattr(self.optimizer, "full_batch", False):
            raise InputError(f"optimizer {self.optimizer.name!r} needs a dense X (a numpy array): convert the "
                             "sparse matrix with X.toarray()")
        if dist is not None:
            dist.start(self, X, Y, sample_weight, getattr(self.optimizer, "full_batch", False))
        for cb in self.callbacks:
            cb.on_train_begin(self)
        try:
            # overflow shows up as a non-finite loss, reported once by DivergenceError,
            # instead of a stream of numpy RuntimeWarnings
            full_batch = getattr(self.optimizer, "full_batch", False)
            with _InterruptFlag() as flag, np.errstate(over="ignore", invalid="ignore", divide="ignore"), \
                    _fused_step.kernels_for(self, X.shape[0], X.shape[0] if full_batch else self.batch_size):
                self._flag = flag
                if full_batch:
                    self._fit_full_batch(X, Y, sample_weight, validation_data)
                else:
                    self._fit_minibatch(X, Y, sample_weight, validation_data)
        except BaseException as exc:
            if dist is not None:   # --- distributed: a rank that fails alone ends every rank (no hang)
                dist.fail(exc)
            raise
        finally:
            if dist is not None:
                dist.finish()
            # an interrupted run keeps its current weights, so that it can be resumed
            if self.early_stopping is not None and not self.history.interrupted:
                self.early_stopping.restore(self.network)
            if callable(getattr(self.transform, "close", None)):
                self.transform.close()           # e.g. the augmentation's worker thread
            for cb in self.callbacks:
                cb.on_train_end(self)
        return self.history

    def _check_prepared(self, X, Y, w=None, validation_data=None, what=""):
        """Name arrays that were not prepared by the network (raw labels, wrong width or dtype)."""
        net = self.network
        hint = "prepare them with network.prepare_inputs(X) and network.prepare_targets(y, n), or use Network.fit"
        sparse = not isinstance(X, np.ndarray) and hasattr(X, "tocsr") and getattr(X, "format", "") == "csr"
        if not ((isinstance(X, np.ndarray) or sparse) and X.ndim == 2 and X.shape[1] == net.n_features
                and X.dtype == net.dtype):
            raise InputError(f"Trainer.fit needs {what}X of shape (n_samples, {net.n_features}) and dtype "
                             f"{net.dtype}, got {getattr(X, 'shape', type(X).__name__)} "
                             f"{getattr(X, 'dtype', '')}; {hint}")
        if not (isinstance(Y, np.ndarray) and Y.shape == (X.shape[0], net.n_outputs)):
            raise InputError(f"Trainer.fit needs {what}Y of shape ({X.shape[0]}, {net.n_outputs}), got "
                             f"{getattr(Y, 'shape', type(Y).__name__)}; {hint}")
        if w is not None and not (isinstance(w, np.ndarray) and w.shape == (X.shape[0],)):
            raise InputError(f"Trainer.fit needs {what}sample_weight of shape ({X.shape[0]},); "
                             "use network.prepare_sample_weight(w, n)")
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3)):
                raise InputError("Trainer.fit needs validation_data as (X_val, Y_val) or (X_val, Y_val, w_val), "
                                 f"got {type(validation_data).__name__}")
            self._check_prepared(*validation_data[:2], *validation_data[2:], what="validation ")

    def _fit_minibatch(self, X, Y, w, validation_data):
        net, theta = self.network, self.network.params.theta
        n, bs = X.shape[0], min(self.batch_size, X.shape[0])
        batch = _BatchBuffers(self, X, Y, w, bs)
        snapshot = None
        if self._schedule_spans_run:   # e.g. cosine: anneal over the whole run, even a resumed,
            self.schedule.total_steps = self.epochs * -(-n // bs)   # lengthened one
        if self.schedule is not None and callable(getattr(self.schedule, "bind", None)):
            self.schedule.bind(n, bs)    # e.g. invscaling per epoch: t counts this run's samples
        while self.epoch < self.epochs and not self.history.stopped_early:
            epoch = self.epoch
            for cb in self.callbacks:
                cb.on_epoch_begin(self, epoch)
            t0 = time.perf_counter()
            if snapshot is None or np.isfinite(theta).all():
                snapshot = theta.copy()          # the last weights known to be finite
            if self._order is None or self._order.shape[0] != n:   # a fresh epoch
                self._order = (epoch_order(net.shuffle_rng, n, self.shuffle) if self.row_order is None
                               else np.asarray(self.row_order(n), dtype=np.int64))   # lazy past 4 M rows
                self._pos, self._partial = 0, [0.0, 0.0, 0, 0.0]
            self._run_epoch(batch, epoch, snapshot)
            if self._pos < n:                    # Ctrl-C mid-epoch: state_dict() can resume here
                self.history.interrupted = True
                self.stop_requested = True
                return
            if self.halt_on_divergence and not np.isfinite(theta).all():   # the epoch's last update overflowed
                self._diverged(None, epoch, snapshot)   # after a finite loss: stop before callbacks save such weights
            self._order = None
            loss_sum, correct, seen, penalty_sum = self._partial
            record = {"epoch": epoch + 1, "loss": loss_sum / max(seen, 1)}
            if net.task == "classification":
                record["accuracy"] = correct / max(seen, 1)
            if self.penalty is not None:
                record["penalty"] = penalty_sum / max(seen, 1)
            self._end_epoch(record, epoch, t0, validation_data)
            if self.stop_requested or self._flag.requested:
                self.history.interrupted = self._flag.requested
                return

    def _run_epoch(self, batch, epoch, snapshot):
        """The steps of one epoch from ``self._pos`` of ``self._order`` (or until Ctrl-C): compiled ones many a
        call where nothing needs Python between them (Callback.between_steps, max-norm), to the same bits."""
        n, bs, order, fused = batch.X.shape[0], batch.size, self._order, batch.fused
        loss_sum, correct, seen, penalty_sum = self._partial
        flush = FlushDenormals()
        each_step = fused is None or batch.max_norm or _fused_step.between_steps(self.callbacks)
        start = self._pos
        while start < n:
            lr_at = None if self.schedule is None else (
                lambda k, first=self.step: self.schedule.lr(self.base_lr, first + k, epoch))   # of step first + k
            with flush:                          # denormals read as 0 during the steps (see _fpenv)
                if fused is None:
                    if lr_at is not None:
                        self.optimizer.lr = lr_at(0)
                    idx = order[start:start + bs]
                    results = [self._step(batch, idx, order[start + bs:start + 2 * bs], idx.shape[0], epoch,
                                          snapshot)]
                else:
                    results = fused.steps(order, start, 1 if each_step or self._flag.requested else fused.max_steps,
                                          lr_at).tolist()
                if batch.max_norm:               # (one step)
                    if not math.isfinite(results[0][0]) and self.halt_on_divergence:
                        self._diverged(results[0][0], epoch, snapshot)
                    apply_max_norm(self.network.layers)
            for J, P, hits in results:
                m = min(bs, n - start)           # rows of the (global) batch
                if not math.isfinite(J) and self.halt_on_divergence:
                    with flush:
                        self._diverged(J, epoch, snapshot)
                self.step += 1
                loss_sum += J * m
                penalty_sum += P * m
                seen += m
                correct += hits
                start += m
                self._pos, self._partial = start, [loss_sum, correct, seen, penalty_sum]
                for cb in self.callbacks:
                    cb.on_batch_end(self, self.step, m, J)
            if self._flag.requested:
                break

    def _step(self, batch, idx, after, m, epoch, snapshot):
        """One numpy step on the rows ``idx`` (m of the global batch); returns (J, penalty, hits)."""
        net, dist, grad = self.network, self.reducer, self.network.params.grad
        if dist is not None:                     # --- distributed: this rank's rows of the batch
            idx = dist.share(idx)
            dist.begin_batch(epoch, idx, m)
        ml = idx.shape[0]
        x, y = batch.x[:ml], batch.y[:ml]
        # a contiguous mini-batch (of a memory-mapped file: only these rows are read)
        if self.transform is None:
            gather(batch.X, idx, x)
        else:   # e.g. deepff.augment: distorted rows; it may prepare the next batch meanwhile
            self.transform(batch.X, idx, epoch, x, after if dist is None else dist.share(after))
        gather(batch.Y, idx, y)
        wm = None if batch.w is None else gather(batch.w, idx, batch.wb[:ml])
        if dist is not None:                     # --- distributed: rows weigh 1/m, not 1/ml
            wm = dist.weights(wm, ml, m, out=batch.wd)
        if ml:
            h = net.forward(x, training=True)
            J = net.loss_value(y, wm)
            net.backward(y, wm)
            hits = _hits(h, y, net, None if batch.labels is None else np.take(batch.labels, idx,
                                                                             out=batch.lb[:ml], mode="clip"))
        else:                                    # --- distributed: an empty share of a short last batch
            J, hits, grad[...] = 0.0, 0.0, 0
            dist.idle_pass()
        if dist is not None:                     # --- distributed: one Allreduce of gradient, loss, hits, Ctrl-C
            J, hits, self._flag.requested = dist.allreduce_step(grad, J, hits, self._flag.requested)
        P = 0.0
        if self.penalty is not None:             # its batch weight: sum(w), or the rows (per-sample penalties)
            bw = self.penalty.batch_weight(ml, wm)
            P = self.penalty.value(net.params, bw)
            J += P
        if not math.isfinite(J) and self.halt_on_divergence:
            self._diverged(J, epoch, snapshot)
        if self.penalty is not None:
            self.penalty.add_grad(net.params, bw)
        if self.clip_norm is not None:
            clip_grad_norm(grad, self.clip_norm)
        self.optimizer.step(net.params.theta, grad)
        return J, P, hits

    def _end_epoch(self, record, epoch, t0, validation_data):
        net = self.network
        if validation_data is not None:   # (distributed: each rank evaluates a block of the rows)
            val = (evaluate if self.reducer is None else self.reducer.evaluate)(net, *validation_data)
            record.update({"val_" + k: v for k, v in val.items()})
        for name, metric in self.metrics.items():
            record[name] = metric(self, record)
        lr = getattr(self.optimizer, "lr", None)
        record["lr"] = None if lr is None else float(lr)  # L-BFGS has no learning rate
        record["seconds"] = time.perf_counter() - t0
        if self.schedule is not None:
            self.schedule.epoch_end(epoch, record[getattr(self.schedule, "monitor", "loss")])
        self.epoch += 1
        self.history.records.append(record)
        if self.early_stopping is not None and self.early_stopping.update(record, net):
            self.history.stopped_early = True
            self.stop_requested = True
        for cb in self.callbacks:
            cb.on_epoch_end(self, record)

    def _diverged(self, J, epoch, snapshot):
        theta = self.network.params.theta
        if not np.isfinite(theta).all():
            theta[...] = snapshot
            kept = "the last finite weights (from the start of an epoch) were restored"
        else:
            kept = "the last (finite) weights were kept"
        lr = getattr(self.optimizer, "lr", None)
        hint = f" (it is {lr:g})" if isinstance(lr, (int, float)) else ""
        if J is None:      # found at the end of an epoch: the update of its last step
            where = f"the weights became NaN or infinite at epoch {epoch + 1}, step {self.step}"
        else:
            where = f"the loss became {J} at epoch {epoch + 1}, step {self.step + 1}"
        advice = f"Try a lower learning rate{hint}, gradient clipping or standardised inputs."
        exc = DivergenceError(f"training diverged: {where}; {kept}. {advice}")
        exc.where, exc.advice = where, advice     # for a caller that says what it kept in its own words
        raise exc

    def _fit_full_batch(self, X, Y, w, validation_data):
        net = self.network
        theta, grad = net.params.theta, net.params.grad
        t0 = time.perf_counter()
        dist, Xs, Ys, ws = self.reducer, X, Y, w
        if dist is not None:              # --- distributed: each rank holds a block of the rows
            Xs, Ys, ws = dist.full_batch(X, Y, w)
            dist.begin_batch(0, np.arange(0), X.shape[0])

        penalty = self.penalty
        bw = 1.0 if penalty is None else penalty.batch_weight(Xs.shape[0], ws)   # the batch is the whole data set
        last_penalty = [0.0]

        def fun(theta64):
            theta[...] = theta64
            net.forward(Xs, training=True)
            J = net.loss_value(Ys, ws)
            net.backward(Ys, ws)
            if dist is not None:          # --- distributed: loss and gradient summed over the ranks
                J = dist.allreduce_step(grad, J, 0.0, False)[0]
            if penalty is not None:
                last_penalty[0] = penalty.value(net.params, bw)
                J += last_penalty[0]
            if not math.isfinite(J):
                exc = DivergenceError(f"training diverged: L-BFGS reached a non-finite loss ({J})")
                exc.where, exc.advice = f"L-BFGS reached a non-finite loss ({J})", "Standardise the inputs."
                raise exc
            if penalty is not None:
                penalty.add_grad(net.params, bw)
            return J, grad.astype(np.float64)

        result, n_iter, _ = self.optimizer.minimize(fun, theta.astype(np.float64),
                                                    should_stop=lambda: self._flag.requested)
        theta[...] = result
        if n_iter == 0 and self.history.records:   # resumed at a minimum: nothing new to record
            return
        record = {"epoch": self.epoch + n_iter, "loss": float(fun(result)[0])}
        if net.task == "classification":
            record["accuracy"] = (evaluate if dist is None else dist.evaluate)(net, X, Y, w).get("accuracy")
        if penalty is not None:
            record["penalty"] = last_penalty[0]
        self.epoch += n_iter - 1
        self._end_epoch(record, self.epoch, t0, validation_data)
        self.step += n_iter
        if self._flag.requested:          # Ctrl-C: stopped after the current iteration
            self.history.interrupted = True
            self.stop_requested = True

    # ------------------------------------------------------------ checkpoint
    def state_dict(self):
        """Everything needed to continue this run exactly.

        Returns
        -------
        dict
            Nested dict of scalars, strings and arrays: weights, buffers,
            optimizer, schedule and early-stopping state, generator states,
            counters and the history.
        """
        net = self.network
        return {
            "epoch": self.epoch,
            "step": self.step,
            "base_lr": self.base_lr,
            "theta": net.params.theta.copy(),
            "buffers": {k: v.copy() for k, v in net.buffers().items()},
            "optimizer": self.optimizer.state_dict(),
            "schedule": None if self.schedule is None else self.schedule.state_dict(),
            "early_stopping": None if self.early_stopping is None else self.early_stopping.state_dict(),
            "shuffle_rng": net.shuffle_rng.bit_generator.state,
            "dropout_rng": net.dropout_rng.bit_generator.state,
            "history": [dict(r) for r in self.history.records],
            "stopped_early": self.history.stopped_early,
            "epoch_order": None if self._order is None else self._order.copy(),
            "epoch_position": self._pos,
            "epoch_partial": list(self._partial[:3]),
            "epoch_penalty_sum": float(self._partial[3]),
            "data": self.data_digest,
            "compiled_kernels": getattr(self, "compiled_kernels", None),   # (pickled before it had one)
        }

    def check_state(self, state):
        """Refuse what :meth:`load_state_dict` could not restore, before anything changes.

        Parameters
        ----------
        state : object

        Raises
        ------
        InputError
            When ``state`` is not a :meth:`state_dict` dict, or holds weights
            of another shape (another architecture).
        """
        if not isinstance(state, dict):
            raise InputError("the state must be the dict of Trainer.state_dict() (load_checkpoint returns it "
                             f"second), got {type(state).__name__}")
        missing = [k for k in _STATE_KEYS if k not in state]
        if missing:
            raise InputError("the state must be the dict of Trainer.state_dict() (load_checkpoint returns it "
                             f"second); this one lacks {', '.join(repr(k) for k in missing)}")
        kernels = state.get("compiled_kernels")
        if not (kernels is None or isinstance(kernels, bool)):
            raise InputError(f"the state's compiled_kernels must be true, false or null, got {kernels!r}")
        shape = np.shape(state["theta"])
        if shape != self.network.params.theta.shape:
            raise InputError(f"the state holds {shape} weights, this network {self.network.params.theta.shape}: "
                             "it was saved from another architecture")

    def load_state_dict(self, state):
        """Restore :meth:`state_dict`'s output into this trainer and its network.

        Parameters
        ----------
        state : dict

        Raises
        ------
        InputError
            When ``state`` is not such a dict, or holds weights of another
            shape (another architecture); nothing is changed then.
        """
        self.check_state(state)
        net = self.network
        net.params.theta[...] = state["theta"]
        for k, v in net.buffers().items():
            v[...] = state["buffers"][k]
        self.optimizer.load_state_dict(state["optimizer"])
        if self.schedule is not None and state.get("schedule") is not None:
            self.schedule.load_state_dict(state["schedule"])
        if self.early_stopping is not None and state.get("early_stopping") is not None:
            self.early_stopping.load_state_dict(state["early_stopping"])
        net.shuffle_rng.bit_generator.state = state["shuffle_rng"]
        net.dropout_rng.bit_generator.state = state["dropout_rng"]
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.base_lr = float(state["base_lr"])
        self.history = History(state["history"])
        self.history.stopped_early = bool(state.get("stopped_early", False))
        order = state.get("epoch_order")
        self._order = None if order is None else np.asarray(order, dtype=np.int64)
        self._pos = int(state.get("epoch_position", 0))
        partial = state.get("epoch_partial") or [0.0, 0.0, 0]
        self._partial = [float(partial[0]), float(partial[1]), int(partial[2]),
                         float(state.get("epoch_penalty_sum", 0.0))]   # (older states: no penalty sum)
        self.compiled_kernels = state.get("compiled_kernels")           # (older states: None, decided anew)


_STATE_KEYS = ("epoch", "step", "base_lr", "theta", "buffers", "optimizer", "shuffle_rng", "dropout_rng",
               "history")   # what load_state_dict needs of a state_dict
