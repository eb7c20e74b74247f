"""How the estimators train: deepff's :class:`~deepff.training.Trainer`, set up to follow scikit-learn.

scikit-learn's MLP is deepff's engine with these settings:

* the loss is the engine's, with ``reduction="sample_mean"`` (the per-sample
  loss summed over the outputs, averaged with the sample weights), and half
  the squared error for regression (:meth:`_BaseMLP._make_loss`);
* ``alpha`` is an L2 :class:`~deepff.regularizers.Penalty` with
  ``per_sample=True``: (alpha / 2) sum ||W||^2 divided by the batch weight;
* ``solver="sgd"`` and ``"adam"`` are :class:`~deepff.optimizers.SGD` with
  ``lr_in_velocity=True`` and :class:`~deepff.optimizers.Adam` with
  ``fold_bias_correction=True``; ``learning_rate="invscaling"`` is
  :class:`~deepff.schedules.InvScaling` per epoch and ``"adaptive"`` a
  :class:`~deepff.schedules.Plateau`;
* the rows of each epoch come from scikit-learn's random draws
  (:attr:`Trainer.row_order`), and its stopping rule, validation scores and
  reported totals (``loss_``, ``loss_curve_``) are :class:`_ScikitLearnRule`,
  a callback reading the trainer's epoch record;
* L-BFGS is the Trainer's full-batch path with :class:`~deepff.optimizers.LBFGS`.
"""

from __future__ import annotations

import copy

import numpy as np
import scipy.sparse as sp
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from .. import losses as _losses
from .. import schedules as _schedules
from ..callbacks import Callback
from ..errors import DivergenceError
from ..regularizers import Penalty
from ..training import Trainer
from ._common import _warn

_NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large values and need "
               "to be preprocessed.")


class _ScikitLearnRule(Callback):
    """scikit-learn's end of an epoch: the reported loss, validation score, stopping rule and verbose lines.

    Parameters
    ----------
    est : _BaseMLP
        The estimator whose fitted attributes (``n_iter_``, ``t_``,
        ``loss_``, ``loss_curve_``, ``validation_scores_``, ...) it updates.
    n_rows : int
        Training rows per epoch (``t_`` counts them).
    incremental : bool
        partial_fit: one epoch, no ConvergenceWarning.
    """

    def __init__(self, est, n_rows, incremental):
        self.est, self.n_rows, self.incremental = est, n_rows, incremental
        policy = est.schedule is None and est._uses_lr_schedule()
        self.plateau = est._schedule if policy and isinstance(est._schedule, _schedules.Plateau) else None
        self.invscaling = est._schedule if policy and isinstance(est._schedule, _schedules.InvScaling) else None

    def on_epoch_begin(self, trainer, epoch):
        self._reductions = None if self.plateau is None else self.plateau.n_reductions

    def on_epoch_end(self, trainer, record):
        est = self.est
        est.n_iter_ += 1
        est.loss_ = record["sk_loss"]
        est.t_ += self.n_rows
        if self.invscaling is not None:     # scikit-learn's t counts every sample since the estimator's first fit
            self.invscaling.seen = est.t_
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
        if est.early_stopping:
            score = record["val_score"]
            est.validation_scores_.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}")
            improved = not score < est.best_validation_score_ + est.tol
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                np.copyto(est._best_theta, trainer.network.params.theta)
                for k, v in trainer.network.buffers().items():
                    np.copyto(est._best_buffers[k], v)
        else:
            improved = not est.loss_curve_[-1] > est.best_loss_ - est.tol
            if est.loss_curve_[-1] < est.best_loss_:
                est.best_loss_ = est.loss_curve_[-1]
        if self._stops(trainer, improved):
            trainer.stop_requested = True
        elif est.n_iter_ == est.max_iter and not self.incremental:
            _warn(f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) reached and the optimization "
                  "hasn't converged yet.", ConvergenceWarning)

    def _stops(self, trainer, improved):
        """Count an epoch without improvement; True when scikit-learn stops here."""
        est, plateau = self.est, self.plateau
        what = "Validation score" if est.early_stopping else "Training loss"
        msg = f"{what} did not improve more than tol={est.tol:f} for {est.n_iter_no_change} consecutive epochs."
        if plateau is not None:       # learning_rate="adaptive": the schedule counted and divided already
            est._no_improvement_count = plateau.bad_epochs
            if plateau.exhausted:
                if est.verbose:
                    print(msg + " Learning rate too small. Stopping.")
                return True
            if plateau.n_reductions > self._reductions and est.verbose:
                print(f"{msg} Setting learning rate to {plateau.lr(trainer.base_lr, 0, 0):f}")
            return False
        est._no_improvement_count = 0 if improved else est._no_improvement_count + 1
        if est._no_improvement_count <= est.n_iter_no_change:
            return False
        if est.verbose:
            print(msg + " Stopping.")
        return True


class _Solvers:
    """The training half of :class:`deepff.sklearn._base._BaseMLP` (a mixin: it reads the estimator's parameters)."""

    # ------------------------------------------------------------ engine parts
    def _make_loss(self):
        """The engine's loss for the output, in scikit-learn's convention (see the module docstring)."""
        out = self.out_activation_
        if out == "softmax":
            return _losses.NegLogLikelihood(reduction="sample_mean")
        if out == "logistic":
            return _losses.BinaryCrossEntropy(reduction="sample_mean")
        if out == "exp":
            return _losses.PoissonDeviance(reduction="sample_mean")
        return _losses.MeanSquaredError(reduction="sample_mean", half=True)

    def _make_penalty(self):
        """``alpha`` as the engine's penalty: (alpha / 2) sum ||W||^2 / sum(w) of the batch."""
        return Penalty(l2=self.alpha, per_sample=True) if self.alpha else None

    def _reported_loss(self, trainer, record):
        """scikit-learn's ``loss_`` from the epoch's mean loss: for squared error, the data term per output."""
        loss = record["loss"]
        k = self._net.n_outputs
        if self.out_activation_ == "identity" and k > 1:
            penalty = record.get("penalty", 0.0)
            return (loss - penalty) / k + penalty
        return loss

    def _lr_schedule(self):
        """The schedule of a new stochastic fit: the ``schedule`` parameter, or ``learning_rate``'s."""
        if self.schedule is not None:
            return copy.deepcopy(_schedules.get(self.schedule))
        policy, _, power_t = self._lr_settings
        if not self._uses_lr_schedule() or policy == "constant":
            return None
        if policy == "invscaling":     # lr_init / (t + 1) ** power_t, t the samples before this epoch
            return _schedules.InvScaling(power_t=power_t, per="epoch")
        return _schedules.Plateau(factor=5.0, tol=self.tol, n_iter_no_change=self.n_iter_no_change + 1,
                                  min_lr=1e-6, monitor="val_score" if self.early_stopping else "sk_loss",
                                  mode="max" if self.early_stopping else "min", hold_min_lr=False)

    def _start_solver(self, incremental):
        """A new optimizer (and schedule) for a fit; partial_fit keeps the one of its first call."""
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
            # scikit-learn's optimizer keeps these from its creation: partial_fit does not see later changes
            self._lr_settings = (self.learning_rate, float(self.learning_rate_init), self.power_t)
            self._base_lr = float(self._optimizer.lr)
            self._schedule = self._lr_schedule()
            self._steps = 0
            self._epochs = 0
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")

    # ---------------------------------------------------- mini-batch training
    def _fit_stochastic(self, X, Y, y_raw, sample_weight, incremental):
        net = self._net
        self._start_solver(incremental)
        (X_train, Y_train, w_train), (X_val, Y_val, w_val) = self._validation_split(X, Y, y_raw, sample_weight)
        n_samples = X_train.shape[0]
        batch_size = self._stochastic_batch_size(n_samples)
        trainer = Trainer(net, optimizer="sgd", penalty=self._make_penalty(), batch_size=batch_size,
                          shuffle=self.shuffle, callbacks=[_ScikitLearnRule(self, n_samples, incremental)])
        trainer.optimizer, trainer.base_lr = self._optimizer, self._base_lr   # the estimator's own, kept
        trainer.schedule = schedule = self._schedule
        if schedule is not None and getattr(schedule, "total_steps", 0) is None:
            schedule.total_steps = int(self.max_iter) * -(-n_samples // batch_size)
        trainer.epoch, trainer.step = self._epochs, self._steps
        trainer.epochs = self._epochs + (1 if incremental else self.max_iter)
        trainer.row_order = self._row_order(n_samples)
        trainer.halt_on_divergence = False   # scikit-learn trains on; the best or non-finite weights decide below
        trainer.metrics = {"sk_loss": self._reported_loss}
        self.n_iter_ = 0                   # scikit-learn counts the epochs of this call
        if self.early_stopping:
            trainer.metrics["val_score"] = lambda *_: self._validation_score(X_val, Y_val, w_val)
        try:
            trainer.fit(X_train, Y_train, w_train)
        except KeyboardInterrupt:      # a second Ctrl-C (the first stops after the current step)
            trainer.history.interrupted = True
        finally:
            self._epochs, self._steps = trainer.epoch, trainer.step
        if trainer.history.interrupted:
            _warn("Training interrupted by user.")
        if self.early_stopping:
            net.params.theta[...] = self._best_theta
            for k, v in net.buffers().items():
                v[...] = self._best_buffers[k]

    def _row_order(self, n_samples):
        """``row_order(n)`` replaying scikit-learn's draws: each epoch shuffles the previous epoch's order."""
        rs, order = self._random_state, [np.arange(n_samples, dtype=np.int64)]

        def row_order(n):
            if self.shuffle:
                perm = np.arange(n)
                rs.shuffle(perm)
                order[0] = order[0][perm]
            return order[0]

        return row_order

    def _validation_split(self, X, Y, y_raw, sample_weight):
        """((X, Y, w) to train on, (X, Y, w) to validate on or Nones), with scikit-learn's draw."""
        if not self.early_stopping:
            return (X, Y, sample_weight), (None, None, None)
        stratify = y_raw if (is_classifier(self) and self.n_outputs_ == 1) else None
        idx_train, idx_val = train_test_split(
            np.arange(X.shape[0]), random_state=self._random_state,
            test_size=self.validation_fraction, stratify=stratify,
        )
        if idx_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size of your dataset."
            )
        X_val, Y_val = X[idx_val], Y[idx_val]
        if sp.issparse(X_val):
            X_val = np.ascontiguousarray(X_val.toarray(), dtype=self._net.dtype)
        w_val = None if sample_weight is None else sample_weight[idx_val]
        w_train = None if sample_weight is None else sample_weight[idx_train]
        return (X[idx_train], Y[idx_train], w_train), (X_val, Y_val, w_val)

    def _stochastic_batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            _warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
        return int(np.clip(self.batch_size, 1, n_samples))

    # ------------------------------------------------------------------ L-BFGS
    def _fit_lbfgs(self, X, Y, w):
        net = self._net
        if any(layer.dropout > 0 for layer in net.layers):
            raise ValueError("dropout does not work with solver='lbfgs': a new mask at every evaluation makes the "
                             "line search's objective noisy; use dropout with solver 'adam' or 'sgd'")
        Xd = np.ascontiguousarray(X.toarray(), dtype=net.dtype) if sp.issparse(X) else X
        opt = self._make_optimizer()
        max_iter = int(getattr(opt, "max_iter", self.max_iter))
        trainer = Trainer(net, optimizer=opt, penalty=self._make_penalty())
        trainer.metrics = {"sk_loss": self._reported_loss}
        try:
            history = trainer.fit(Xd, Y, w)
        except DivergenceError:
            raise ValueError(_NON_FINITE) from None
        opt = trainer.optimizer
        self.n_iter_ = min(int(trainer.step), max_iter)
        if getattr(opt, "converged", None) is False:   # worded as scikit-learn's warning
            msg = (f"lbfgs failed to converge after {self.n_iter_} iteration(s) (status={opt.status}):\n"
                   f"{opt.message}\n")
            if self.n_iter_ == max_iter:
                msg += f"\nIncrease the number of iterations to improve the convergence (max_iter={max_iter})."
            msg += ("\nYou might also want to scale the data as shown in:\n"
                    "    https://scikit-learn.org/stable/modules/preprocessing.html")
            _warn(msg, ConvergenceWarning)
        if history.records:
            self.loss_ = history.records[-1]["sk_loss"]

    def _packed_order(self):
        """Indices of theta in scikit-learn's packed order (every W, then every b), for :meth:`_loss_grad_lbfgs`."""
        kinds = list(zip(self._net.params.kinds, self._net.params.slices))
        return np.concatenate([np.arange(s.start, s.stop) for k, s in kinds if k == "weight"]
                              + [np.arange(s.start, s.stop) for k, s in kinds if k != "weight"])

    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight=None, *_):
        """The L-BFGS objective and its gradient at packed parameters (scikit-learn's name and order).

        Parameters
        ----------
        packed_coef_inter : ndarray of shape (n_params,)
            Every W (row-major), then every b, as scikit-learn packs them;
            written into the network.
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples, n_outputs)
            Targets as the network sees them (one-hot or indicator rows).
        sample_weight : ndarray of shape (n_samples,), optional
        *_ : object
            scikit-learn's work buffers (unused: the network has its own).

        Returns
        -------
        loss : float
            The mean loss plus ``0.5 * alpha * sum(W**2) / sum(w)``.
        grad : ndarray of shape (n_params,), float64
            Its gradient, in the packed order.
        """
        net = self._net
        order = self._packed_order()
        dtype = net.dtype
        X = np.ascontiguousarray(X, dtype=dtype)
        Y = np.ascontiguousarray(np.reshape(y, (X.shape[0], -1)), dtype=dtype)
        w = None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype=dtype)
        net.params.theta[order] = packed_coef_inter
        net.forward(X, training=True)
        value = net.loss_value(Y, w)
        net.backward(Y, w)
        penalty = self._make_penalty()
        if penalty is not None:
            bw = penalty.batch_weight(X.shape[0], w)
            value += penalty.value(net.params, bw)
            penalty.add_grad(net.params, bw)
        return float(value), net.params.grad[order].astype(np.float64)
