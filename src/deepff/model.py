"""The modern API: a :class:`Network` that can fit, predict and evaluate.

>>> import numpy as np, deepff
>>> X = np.random.default_rng(0).normal(size=(100, 4)); y = (X[:, 0] > 0).astype(int)
>>> net = deepff.Network([deepff.Dense(8, "relu"), deepff.Dense(2, "softmax")],
...                      loss="neg_log_likelihood", seed=0)
>>> history = net.fit(X, y, epochs=5, batch_size=16, optimizer="sgd", lr=0.1)
>>> net.predict(X).shape
(100,)

It is the engine (:class:`~deepff.network.FeedForward`) plus the loop
(:class:`~deepff.training.Trainer`); both stay usable on their own.
"""

from __future__ import annotations

import numbers

import numpy as np

from .checks import real
from .errors import InputError
from .metrics import evaluate, regression_report
from .network import FeedForward
from .spec import network_spec, parse_config, parse_layers
from .training import Trainer, _positive_int, class_weights
from .validation import cast_finite, check_X, data_digest

__all__ = ["Network"]


class Network(FeedForward):
    """A feedforward network with ``fit``, ``predict`` and ``evaluate``.

    Parameters
    ----------
    layers : list of Dense
        Hidden layers then the output layer; input widths are inferred.
    loss : str, dict or Loss, default "mse"
    n_features : int, optional
        Input width; inferred from the data by the first ``fit`` otherwise.
    dtype : {"float32", "float64"}, default "float32"
    seed : int, optional
        Fixes initialisation, shuffling, validation split and dropout.

    Attributes
    ----------
    history_ : History
        Records of the last ``fit``.
    trainer_ : Trainer
        The trainer of the last ``fit`` (its optimizer state lives on, so
        ``fit(..., warm_start=True)`` continues it).
    """

    @classmethod
    def from_spec(cls, spec, dtype="float32", seed=None):
        """Build a network from a classic spec (list of layer dicts).

        Parameters
        ----------
        spec : list of dict
            See :mod:`deepff.spec`.
        dtype : {"float32", "float64"}
        seed : int, optional

        Returns
        -------
        Network
        """
        n_features, layers, loss = parse_layers(spec)
        return cls(layers, loss=loss, n_features=n_features, dtype=dtype, seed=seed)

    @classmethod
    def from_config(cls, config, dtype=None, seed=None):
        """Build a network from a config mapping or file; return it with its training section.

        Parameters
        ----------
        config : dict, list or path
            A config mapping, a classic layer list, or a JSON/YAML/TOML path.
        dtype : str, optional
            Overrides the config's dtype.
        seed : int, optional
            Overrides the config's seed.

        Returns
        -------
        network : Network
        training : dict
            The validated training section; its keys are keyword arguments
            of :meth:`fit`, so ``net.fit(X, y, **training)`` trains as the
            config says.
        """
        from .spec import load_config

        cfg = parse_config(config) if isinstance(config, (dict, list, tuple)) else load_config(config)
        net = cls.from_spec(cfg["layers"], dtype=dtype or cfg["dtype"] or "float32",
                            seed=seed if seed is not None else cfg["seed"])
        return net, cfg["training"]

    def spec(self):
        """Return the architecture as a classic spec (JSON-compatible list of dicts)."""
        self._require_built()
        return network_spec(self.n_features, self.layers, self.loss)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, *, epochs=10, batch_size=None, optimizer=None, lr=None, schedule=None,
            regularization=None, clip_norm=None, validation_data=None, validation_split=0.0,
            early_stopping=None, sample_weight=None, class_weight=None, shuffle=True,
            callbacks=None, warm_start=False, resume_state=None, resume_on_new_data=False, augment=None,
            comm=None):
        """Train the network with mini-batch gradient descent.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels 0..k-1 or one-hot rows (neg_log_likelihood), 0/1
            indicators (binary_cross_entropy) or real targets.
        epochs : int, default 10
        batch_size : int, optional
            Rows per mini-batch; the last, shorter batch of an epoch is used,
            not dropped. Default: 32, and with ``warm_start`` the last fit's.
        optimizer : str, dict or Optimizer, optional
            "sgd" when not given. An instance is copied, never changed.
        lr : float, optional
            Learning rate; overrides the optimizer's (also with warm_start).
        schedule : str, dict or Schedule, optional
        regularization : dict or Penalty, optional
            ``{"l1": ..., "l2": ...}`` or ``{"elastic_net": a, "l1_ratio": r}``.
        clip_norm : float, optional
        validation_data : tuple (X_val, y_val), optional
        validation_split : float, default 0.0
            Fraction of (X, y) held out, chosen with the network's seed;
            ignored when validation_data is given.
        early_stopping : dict, EarlyStopping or True, optional
        sample_weight : array-like of shape (n_samples,), optional
        class_weight : "balanced" or dict, optional
            Multiplies the sample weights (one class per sample: softmax
            outputs, or one sigmoid unit with classes 0 and 1); a dict maps
            class index to weight. A regression refuses it.
        shuffle : bool, default True
        callbacks : list of Callback, optional
        warm_start : bool, default False
            Keep the previous fit's trainer (optimizer state, counters) and
            train ``epochs`` more epochs. Its optimizer, schedule,
            regularization, clip_norm, early stopping and callbacks carry
            on, so passing any of them is an error; ``lr`` and
            ``batch_size`` may change (unless given, the batch size carries
            on too).
            (Without warm_start, fit also starts from the current weights,
            with a fresh optimizer.)
        resume_state : dict, optional
            A :meth:`Trainer.state_dict` to continue from (checkpoints).
            ``epochs`` is then the total to reach, and the run continues
            exactly when the other settings (batch size, optimizer, schedule,
            ...) are the saved run's; an ``lr`` other than the saved run's
            is refused (its optimizer state carries the rate), and so is
            data other than the saved run's (its shape, dtype and a sample
            of its rows are in the state).
        resume_on_new_data : bool, default False
            Continue ``resume_state`` on data other than the run's, on
            purpose (an interrupted epoch then restarts if the number of
            samples changed).
        augment : str, dict or Augment, optional
            Distort the training images afresh every epoch: "elastic",
            "affine", or ``{"kind": ..., **parameters}`` (see
            :mod:`deepff.augment`); the draws are keyed by the seed (the
            network's when the setting has none), the epoch and the sample,
            so a resumed run continues exactly. Validation data are not
            distorted. With warm_start, the last fit's setting carries on
            unless one is given.
        comm : mpi4py.MPI.Comm, optional
            Train on all the processes of this MPI communicator (e.g.
            ``MPI.COMM_WORLD`` under ``mpiexec -n K``) as one process would:
            each rank passes the same data and settings, computes its share
            of every global batch of ``batch_size`` rows, and the gradients
            are summed over the ranks (see :mod:`deepff.distributed`).
            Needs the ``deepff[mpi]`` extra and a ``seed``.

        Returns
        -------
        History
        """
        flags = (("shuffle", shuffle), ("warm_start", warm_start), ("resume_on_new_data", resume_on_new_data))
        for name, flag in flags:
            if not isinstance(flag, (bool, np.bool_)):    # bool("no") is True: refuse, do not guess
                raise InputError(f"{name} must be True or False, got {flag!r}")
        # the data are checked before a first fit builds the network, so that a mistake
        # (X transposed, say) does not fix the input width for the corrected call
        X = self.prepare_inputs(X) if self.built else check_X(X, self.dtype)
        Y = self.prepare_targets(y, X.shape[0])
        w = self._fit_weights(Y, sample_weight, class_weight)
        aug = None
        if augment is not None:     # checked against the inputs' width before anything trains
            from .augment import get as get_augment

            seed = self.seed if self.seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
            aug = get_augment(augment, seed=seed)
            aug.check(X.shape[1])
        X, Y, w, val = self._held_out(X, Y, w, validation_data, validation_split)
        if not self.built:
            self.build(X.shape[1])
        settings = {"optimizer": optimizer, "schedule": schedule, "regularization": regularization,
                    "clip_norm": clip_norm, "early_stopping": early_stopping, "callbacks": callbacks}
        trainer = self._fit_trainer(warm_start, settings, resume_state, epochs, batch_size, shuffle)
        if lr is not None:
            if getattr(trainer.optimizer, "full_batch", False):
                raise InputError(f"lr does not apply to optimizer {trainer.optimizer.name!r}, which chooses its "
                                 "step lengths by line search; drop lr")
            trainer.optimizer.lr = trainer.base_lr = real(trainer.optimizer.name, "lr", lr, low=0.0)
        if resume_state is not None:
            _resume(trainer, resume_state, lr, data_digest(X, Y, w), resume_on_new_data)
        if aug is not None and getattr(trainer.optimizer, "full_batch", False):
            raise InputError(f"augment distorts mini-batches, but optimizer {trainer.optimizer.name!r} trains on the "
                             "whole data set at once; use a mini-batch optimizer (sgd, adam, ...) or drop augment")
        if aug is not None or not warm_start:
            trainer.transform = aug
        if comm is not None:    # K ranks train together; mpi4py is imported only here
            from .distributed import Reducer

            trainer.reducer = Reducer(comm)
        else:
            trainer.reducer = None
        self.trainer_ = trainer
        self.history_ = trainer.fit(X, Y, w, val)
        return self.history_

    def _fit_weights(self, Y, sample_weight, class_weight):
        """The training rows' weights: sample_weight times class_weight's (ndarray of shape (n,) or None)."""
        w = self.prepare_sample_weight(sample_weight, Y.shape[0])
        if class_weight is not None and self.task != "classification":
            raise InputError(f"class_weight weighs classes, but this network's task is {self.task} "
                             f"(its loss is {self.loss.name}); pass sample_weight instead")
        if class_weight is not None:
            if not self.multi_label:
                labels, n_classes = Y.argmax(axis=1), self.n_outputs
            elif self.n_outputs == 1:                       # one sigmoid unit: classes 0 and 1
                labels, n_classes = (Y[:, 0] >= 0.5).astype(np.int64), 2
            else:
                raise InputError("class_weight needs one class per sample, but this network's "
                                 f"{self.n_outputs} sigmoid outputs are independent labels; "
                                 "pass sample_weight instead")
            cw = cast_finite(class_weights(labels, class_weight, n_classes), self.dtype, "class_weight",
                             fix="divide the weights by a constant (only their ratios matter)")
            with np.errstate(over="ignore"):
                w = cw if w is None else w * cw
            if not np.isfinite(w).all():
                raise InputError(f"sample_weight times class_weight overflows {np.dtype(self.dtype)}; divide "
                                 "either by a constant (only their ratios matter)")
        if w is not None and not w.sum(dtype=np.float64) > 0:
            what = "sample_weight" if class_weight is None else \
                "class_weight" if sample_weight is None else "sample_weight times class_weight"
            raise InputError(f"{what} gives the samples a total weight of 0: there is nothing to train on")
        return w

    def _held_out(self, X, Y, w, validation_data, validation_split):
        """(X, Y, w) to train on and the prepared validation pair (or None), from fit's arguments."""
        if not (isinstance(validation_split, numbers.Real) and 0 <= validation_split < 1):
            raise InputError(f"validation_split must be a number in [0, 1), got {validation_split!r}")
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise InputError("validation_data must be a pair (X_val, y_val), got a "
                                 f"{type(validation_data).__name__}"
                                 + (f" of length {len(validation_data)}"
                                    if isinstance(validation_data, (tuple, list)) else ""))
            Xv = check_X(validation_data[0], self.dtype, X.shape[1], name="validation X")
            return X, Y, w, (Xv, self.prepare_targets(validation_data[1], Xv.shape[0]))
        if validation_split == 0:
            return X, Y, w, None
        rng = np.random.default_rng(np.random.SeedSequence(self.seed).spawn(4)[3])
        order = rng.permutation(X.shape[0])
        n_val = max(1, int(round(validation_split * X.shape[0])))
        if n_val >= X.shape[0]:
            raise InputError(f"validation_split={validation_split:g} holds out {n_val} of the "
                             f"{X.shape[0]} samples and leaves none to train on")
        vi, ti = np.sort(order[:n_val]), np.sort(order[n_val:])
        return X[ti], Y[ti], None if w is None else w[ti], (X[vi], Y[vi])

    def _fit_trainer(self, warm_start, settings, resume_state, epochs, batch_size, shuffle):
        """The last fit's trainer, set for ``epochs`` more (warm_start), or a new one with ``settings``."""
        if not (warm_start and getattr(self, "trainer_", None) is not None):
            # the trainer works on copies: the caller's optimizer object is never changed
            optimizer = settings.pop("optimizer")
            return Trainer(self, optimizer="sgd" if optimizer is None else optimizer,
                           penalty=settings.pop("regularization"), epochs=epochs,
                           batch_size=32 if batch_size is None else batch_size,
                           shuffle=shuffle, **settings)
        given = [name for name, v in (*settings.items(), ("resume_state", resume_state)) if v is not None]
        if given:
            raise InputError(f"fit(warm_start=True) continues the last fit's trainer, so it takes no "
                             f"{', '.join(given)}; call fit without warm_start to train the current "
                             "weights with new settings (lr may change with warm_start)")
        trainer = self.trainer_
        trainer.epochs = trainer.epoch + _positive_int("epochs", epochs)
        if batch_size is not None:          # (not given: the run's own, as everything else it carries on)
            trainer.batch_size = _positive_int("batch_size", batch_size)
        trainer.shuffle = bool(shuffle)
        # the last fit may have ended on Ctrl-C or by early stopping: this one runs its epochs
        # (and may stop early again: patience counts afresh, the best epoch so far is kept)
        trainer.stop_requested = False
        trainer.history.interrupted = trainer.history.stopped_early = False
        if trainer.early_stopping is not None:
            trainer.early_stopping.wait = 0
        return trainer

    # ------------------------------------------------------------- evaluate
    def evaluate(self, X, y, sample_weight=None):
        """Loss and a task metric on (X, y), in evaluation mode.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        dict
            "loss" and, for classification, "accuracy"; for regression
            "mse", "mae" and "r2" (averaged over outputs). With
            ``sample_weight``, the loss is the training objective
            (1/n) sum_i w_i l_i and the other figures are weighted means
            sum(w x) / sum(w), as scikit-learn's metrics define them.
        """
        self._require_built()
        X = self.prepare_inputs(X)
        Y = self.prepare_targets(y, X.shape[0])
        w = self.prepare_sample_weight(sample_weight, X.shape[0])
        if w is not None and not w.sum() > 0:
            raise InputError("sample_weight sums to 0: there is nothing to evaluate")
        h = np.empty_like(Y) if self.task == "regression" else None
        out = evaluate(self, X, Y, w, outputs=h)
        if self.task == "regression":
            out.update(regression_report(Y, h, w))
        return out

    def summary(self, batch_size=1):
        """Return a text table of the layers and the shapes of W, b, a and h.

        Parameters
        ----------
        batch_size : int, default 1
            The n in the (n, n_l) shapes of a and h.

        Returns
        -------
        str
        """
        self._require_built()
        batch_size = _positive_int("batch_size", batch_size)
        rows = [("layer", "activation", "W", "b", "a, h", "params")]
        rows.append(("0 input", "-", "-", "-", f"({batch_size}, {self.n_features})", "0"))
        for i, layer in enumerate(self.layers, start=1):
            n_p = layer.W.size + sum(getattr(layer, k).size for k in ("b", "gamma", "beta")
                                     if getattr(layer, k) is not None)
            extra = (" +bn" if layer.batch_norm else "") + (f" +drop{layer.dropout:g}" if layer.dropout else "")
            rows.append((f"{i} dense{extra}", layer.activation.name, str(layer.W.shape),
                         str(layer.b.shape) if layer.b is not None else "-",
                         f"({batch_size}, {layer.units})", str(n_p)))
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(wd) for cell, wd in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        lines.append(f"total parameters: {self.n_params()}  (loss: {self.loss.name}, dtype: {self.dtype})")
        return "\n".join(lines)


def _check_same_data(saved, now, on_purpose):
    """Refuse to resume a run on data other than its own, unless asked to on purpose."""
    if saved is None or on_purpose or saved == now:
        return                         # (a state from before digests were kept has none to compare)
    if saved.get("shape") != now["shape"] or saved.get("dtype") != now["dtype"]:
        what = f"data of shape {tuple(saved.get('shape', ()))}, this data is {tuple(now['shape'])}"
    else:
        what = f"other rows of the same shape {tuple(now['shape'])} (a sample of rows differs)"
    raise InputError(f"the run to resume trained on {what}: resume it on its own data, or continue on this "
                     "data on purpose with resume_on_new_data=True (deepff train --resume-on-new-data)")


def _resume(trainer, state, lr, digest, on_new_data):
    """Check a resume_state whole against this fit (rate, epochs, data), then restore it into ``trainer``."""
    trainer.check_state(state)
    done, rate = int(state["epoch"]), float(state["base_lr"])
    if lr is not None and float(lr) != rate:       # the state's optimizer carries its own
        raise InputError(f"resume_state continues a run at learning rate {rate:g}, so lr={lr!r} would "
                         "not continue it: drop lr (or train these weights anew, without resume_state)")
    if trainer.epochs < done and not getattr(trainer.optimizer, "full_batch", False):
        # (L-BFGS counts its iterations as epochs and takes up to max_iter more)
        raise InputError(f"epochs is the total to reach; resume_state has done {done} already, so "
                         f"epochs={trainer.epochs} would train nothing: give at least {done}")
    _check_same_data(state.get("data"), digest, on_new_data)
    trainer.load_state_dict(state)
