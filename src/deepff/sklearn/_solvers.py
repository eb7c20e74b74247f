"""How the estimators train: the mini-batch loop with scikit-learn's draws and stopping rule, the compiled
whole step, and L-BFGS."""

from __future__ import annotations

import copy

import numpy as np
import scipy.sparse as sp
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from .. import _kernels
from .. import activations as _activations
from .. import schedules as _schedules
from .._fpenv import FlushDenormals
from ..layers import Dense
from ._common import _warn
from ._losses import _SkBinaryLogLoss, _SkLogLoss, _SkSquaredLoss


class _Solvers:
    """The training half of :class:`deepff.sklearn._base._BaseMLP` (a mixin: it reads the estimator's parameters)."""

    def _batch_step(self, x, y, w):
        """One optimizer step on a batch; returns its loss (scikit-learn's, alpha term included).

        forward -> loss -> backward (the summed gradient) -> alpha * W on the
        weights -> division by the batch weight -> the optimizer's update.
        """
        net, loss = self._net, self._loss
        h = net.forward(x, training=True)
        value = loss.reported(h, y, w)
        sw_sum = x.shape[0] if w is None else w.sum()
        alpha = self.alpha
        if alpha:
            values = 0
            for s in self._wflat:
                values += np.dot(s, s)
            value += (0.5 * alpha) * values / sw_sum
        net.backward(y, w)
        self._penalty_grad(sw_sum)
        self._optimizer.step(net.params.theta, net.params.grad)
        return value

    def _penalty_grad(self, sw_sum):
        """params.grad: add alpha * W to the weights' part, then divide by sw_sum."""
        if self.alpha:
            for W, dW, tmp in zip(self._wviews, self._dwviews, self._wtmp):
                np.multiply(W, self.alpha, out=tmp)
                dW += tmp
        self._net.params.grad /= sw_sum

    def _prepare_step_buffers(self):
        layers = self._net.layers
        self._loss = self._net.loss
        self._wviews = [layer.W for layer in layers]
        self._wflat = [W.reshape(-1) for W in self._wviews]
        self._dwviews = [layer.dW for layer in layers]
        self._wtmp = [np.empty_like(W) for W in self._wviews] if self.alpha else []
        self._mask = self._net.params.weight_mask()

    def _step_plan(self, X, Y, w, batch_size):
        """The compiled whole step for this fit, or None (then :meth:`_batch_step` runs).

        :func:`deepff._kernels.dense_step_kernel` runs :meth:`_batch_step`'s
        forward, loss, backward and update in one numba call. It is used when numba may be
        used and the network is the plain case it covers: dense X, built-in
        identity/logistic/relu hidden units without dropout or batch norm
        (tanh: see :data:`deepff._kernels.STEP_HIDDEN`), softmax, logistic or
        identity output with scikit-learn's loss, and an SGD or Adam optimizer
        (any of their options but AMSGrad). It replaces :meth:`_batch_step`, so a subclass that overrides
        that method must also override this one to return None.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n_rows, n_features)
        Y : ndarray of shape (n_rows, n_outputs)
        w : ndarray of shape (n_rows,) or None
        batch_size : int

        Returns
        -------
        callable or None
            ``step(idx) -> float``: one step on the rows ``idx`` (int64, at most
            ``batch_size`` of them), returning the batch loss as
            :meth:`_batch_step` does.
        """
        if not _kernels.enabled() or sp.issparse(X):
            return None
        net, opt = self._net, self._optimizer
        theta, grad = net.params.theta, net.params.grad
        plain = {_activations.Linear: "linear", _activations.Sigmoid: "sigmoid", _activations.ReLU: "relu"}
        outputs = {_SkLogLoss: _activations.Softmax, _SkBinaryLogLoss: _activations.Sigmoid,
                   _SkSquaredLoss: _activations.Linear}
        layers = net.layers
        if (opt.kernel not in ("adam_kernel", "sgd_kernel") or not opt.use_kernel or getattr(opt, "amsgrad", False)
                or type(net.loss) not in outputs
                or type(layers[-1].activation) is not outputs[type(net.loss)]
                or any(type(layer) is not Dense or layer.dropout or layer.batch_norm for layer in layers)
                or any(type(layer.activation) not in plain for layer in layers[:-1])):
            return None
        arrays = (X, Y) if w is None else (X, Y, w)
        if not all(a.dtype == theta.dtype and a.flags.c_contiguous for a in arrays):
            return None
        kernel = _kernels.dense_step_kernel()

        def offset(view):
            return (view.ctypes.data - theta.ctypes.data) // theta.itemsize

        dims = np.array([layers[0].n_in] + [layer.units for layer in layers], dtype=np.int64)
        woff = np.array([offset(layer.W) for layer in layers], dtype=np.int64)
        boff = np.array([offset(layer.b) for layer in layers], dtype=np.int64)
        acts = np.array([_kernels.STEP_HIDDEN[plain[type(layer.activation)]] for layer in layers[:-1]] + [0],
                        dtype=np.int64)
        out_code = _kernels.STEP_OUTPUTS[layers[-1].activation.name]
        opt_code = 0 if opt.kernel == "adam_kernel" else 1
        scratch = np.empty(_kernels.step_scratch_size(batch_size, dims.tolist()), dtype=theta.dtype)
        weights = np.ones(1, dtype=theta.dtype) if w is None else w
        weighted = w is not None
        mask, alpha = self._mask, float(self.alpha)
        hyper = np.zeros(_kernels.STEP_HYPER, dtype=theta.dtype)

        def step(idx):
            if weighted and not w[idx].sum():    # the engine's error (np.average's), not a NaN fit
                raise ZeroDivisionError("Weights sum to zero, can't be normalized")
            states, scalars, flags = opt.kernel_args(theta)   # counts the step, as opt.step does
            hyper[:] = scalars + (0.0,) * (9 - len(scalars)) + flags + (False,) * (3 - len(flags))   # cast here
            states = states * 3 if len(states) == 1 else states
            return kernel(X, Y, weights, weighted, idx, theta, grad, mask, dims, woff, boff, acts, out_code,
                          scratch, alpha, opt_code, *states, hyper)

        return step

    def _fit_lbfgs(self, X, Y, w):
        net = self._net
        if any(layer.dropout > 0 for layer in net.layers):
            raise ValueError("dropout does not work with solver='lbfgs': a new mask at every evaluation makes the "
                             "line search's objective noisy; use dropout with solver 'adam' or 'sgd'")
        self._prepare_step_buffers()
        Xd = X.toarray() if sp.issparse(X) else X
        theta = net.params.theta
        order = self._packed = self._packed_order()

        def fun(x):
            return self._loss_grad_lbfgs(x, Xd, Y, w)

        opt = self._make_optimizer()
        max_iter = int(getattr(opt, "max_iter", self.max_iter))
        result, nit, _ = opt.minimize(fun, theta[order].astype(np.float64))
        theta[order] = result
        self.n_iter_ = min(int(nit), max_iter)
        if getattr(opt, "converged", None) is False:   # worded as scikit-learn's warning
            msg = (f"lbfgs failed to converge after {self.n_iter_} iteration(s) (status={opt.status}):\n"
                   f"{opt.message}\n")
            if self.n_iter_ == max_iter:
                msg += f"\nIncrease the number of iterations to improve the convergence (max_iter={max_iter})."
            msg += ("\nYou might also want to scale the data as shown in:\n"
                    "    https://scikit-learn.org/stable/modules/preprocessing.html")
            _warn(msg, ConvergenceWarning)
        self.loss_ = self._batch_loss_only(Xd, Y, w)

    def _packed_order(self):
        """Indices of theta in scikit-learn's packed order (every W, then every b).

        scipy sees the parameters in this order: L-BFGS's inner products then
        add in scikit-learn's order, and long runs stay on its path.
        """
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
        if getattr(self, "_mask", None) is None or self._mask.shape != net.params.theta.shape:
            self._prepare_step_buffers()
        order = getattr(self, "_packed", None)
        if order is None or order.shape != net.params.theta.shape:
            order = self._packed = self._packed_order()
        dtype = net.dtype
        X = np.ascontiguousarray(X, dtype=dtype)
        Y = np.ascontiguousarray(np.reshape(y, (X.shape[0], -1)), dtype=dtype)
        w = None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype=dtype)
        sw_sum = X.shape[0] if w is None else w.sum()
        net.params.theta[order] = packed_coef_inter
        h = net.forward(X, training=True)
        value = self._loss.objective(h, Y, w)
        if self.alpha:
            values = 0
            for s in self._wflat:
                values += np.dot(s, s)
            value += (0.5 * self.alpha) * values / sw_sum
        net.backward(Y, w)
        self._penalty_grad(sw_sum)
        return float(value), net.params.grad[order].astype(np.float64)

    def _batch_loss_only(self, X, Y, w):
        """scikit-learn's reported loss (alpha term included) at the current weights."""
        h = self._net.forward(X, training=True)
        value = self._loss.reported(h, Y, w)
        if self.alpha:
            sw_sum = X.shape[0] if w is None else w.sum()
            value += (0.5 * self.alpha) * sum(np.dot(s, s) for s in self._wflat) / sw_sum
        return float(value)

    def _start_solver(self, incremental):
        """A new optimizer (and schedule) for a fit; partial_fit keeps the one of its first call."""
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
            # scikit-learn's optimizer keeps these from its creation: partial_fit does not see later changes
            self._lr_settings = (self.learning_rate, float(self.learning_rate_init), self.power_t)
            self._base_lr = float(self._optimizer.lr)
            self._schedule = None if self.schedule is None else copy.deepcopy(_schedules.get(self.schedule))
            self._steps = 0
            self._epochs = 0
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")

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

    def _batch_runner(self, X_train, Y_train, w_train, batch_size):
        """``run(order, start, stop) -> batch loss``: one step on the rows order[start:stop]."""
        fused = self._step_plan(X_train, Y_train, w_train, batch_size)
        sparse = sp.issparse(X_train)
        dtype = self._net.dtype
        xb = None if sparse else np.empty((batch_size, X_train.shape[1]), dtype=dtype)
        yb = np.empty((batch_size, Y_train.shape[1]), dtype=dtype)
        wb = None if w_train is None else np.empty(batch_size, dtype=dtype)

        def run(sample_idx, start, stop):
            if fused is not None:   # the same step, compiled (deepff._kernels.dense_step_kernel)
                return fused(sample_idx[start:stop])
            m = stop - start
            if self.shuffle:
                idx = sample_idx[start:stop]
                if sparse:
                    x = np.ascontiguousarray(X_train[idx].toarray(), dtype=dtype)
                else:
                    x = np.take(X_train, idx, axis=0, out=xb[:m])
                y = np.take(Y_train, idx, axis=0, out=yb[:m])
                w = None if w_train is None else np.take(w_train, idx, out=wb[:m])
            else:
                x = X_train[start:stop]
                if sparse:
                    x = np.ascontiguousarray(x.toarray(), dtype=dtype)
                y = Y_train[start:stop]
                w = None if w_train is None else w_train[start:stop]
            return self._batch_step(x, y, w)

        return run

    def _stops_here(self, lr_policy):
        """scikit-learn's rule after an epoch without improvement: stop (True), or divide an adaptive rate by 5."""
        if self._no_improvement_count <= self.n_iter_no_change:
            return False
        what = "Validation score" if self.early_stopping else "Training loss"
        msg = f"{what} did not improve more than tol={self.tol:f} for {self.n_iter_no_change} consecutive epochs."
        opt = self._optimizer
        if lr_policy != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if opt.lr <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        opt.lr /= 5.0
        if self.verbose:
            print(f"{msg} Setting learning rate to {opt.lr:f}")
        self._no_improvement_count = 0
        return False

    def _fit_stochastic(self, X, Y, y_raw, sample_weight, incremental):
        net = self._net
        theta = net.params.theta
        self._start_solver(incremental)
        opt, schedule, early_stopping = self._optimizer, self._schedule, self.early_stopping
        (X_train, Y_train, w_train), (X_val, Y_val, w_val) = self._validation_split(X, Y, y_raw, sample_weight)
        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=np.int64)   # the epoch's row order
        batch_size = self._stochastic_batch_size(n_samples)
        if schedule is not None and getattr(schedule, "total_steps", 0) is None:
            schedule.total_steps = int(self.max_iter) * -(-n_samples // batch_size)
        self._prepare_step_buffers()
        rs = self._random_state
        uses_lr_policy = schedule is None and self._uses_lr_schedule()
        policy, lr_init, power_t = getattr(self, "_lr_settings", None) or (   # (older pickles lack it)
            self.learning_rate, float(self.learning_rate_init), self.power_t)
        lr_policy = policy if uses_lr_policy else "constant"
        run = self._batch_runner(X_train, Y_train, w_train, batch_size)

        flush = FlushDenormals()

        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:
                    perm = np.arange(n_samples)
                    rs.shuffle(perm)
                    sample_idx = sample_idx[perm]
                accumulated_loss = 0.0
                with flush:   # denormals read as 0 during the steps (see deepff._fpenv)
                    for start in range(0, n_samples, batch_size):
                        stop = min(start + batch_size, n_samples)
                        m = stop - start
                        if schedule is not None:
                            opt.lr = schedule.lr(self._base_lr, self._steps, self._epochs)
                        batch_loss = run(sample_idx, start, stop)
                        self._steps += 1
                        accumulated_loss += float(batch_loss) * m   # in float64, as scikit-learn sums

                self.n_iter_ += 1
                self.loss_ = accumulated_loss / n_samples
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                self._update_no_improvement_count(early_stopping, X_val, Y_val, w_val)
                if schedule is not None:
                    schedule.epoch_end(self._epochs, self.loss_)
                self._epochs += 1
                if lr_policy == "invscaling":
                    opt.lr = lr_init / (self.t_ + 1) ** power_t

                if self._stops_here(lr_policy):
                    break

                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    _warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                          "optimization hasn't converged yet.", ConvergenceWarning)
        except KeyboardInterrupt:
            _warn("Training interrupted by user.")

        if early_stopping:
            theta[...] = self._best_theta
            for k, v in net.buffers().items():
                v[...] = self._best_buffers[k]

    def _update_no_improvement_count(self, early_stopping, X_val, Y_val, w_val):
        if early_stopping:
            score = self._validation_score(X_val, Y_val, w_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                np.copyto(self._best_theta, self._net.params.theta)
                for k, v in self._net.buffers().items():
                    np.copyto(self._best_buffers[k], v)
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]
