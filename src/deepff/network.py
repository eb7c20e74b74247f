"""The feedforward engine: the forward and backward sweeps over dense layers.

Conventions (rows are samples)::

    X = h^0                                   (n, n_0)
    for l = 1..L:
        a^l = h^{l-1} W^l + b^l               (n, n_l)     W^l: (n_{l-1}, n_l), b^l: (1, n_l)
        h^l = f^l(a^l)                        (n, n_l)
    J = mean over the n samples of the loss of (h^L, y)   (mse, bce, ...: over the n n_L entries)

    g^L = dJ/da^L                             (n, n_L)     fused: (h^L - y) / n for softmax + NLL,
                                                           (h^L - y) / (n n_L) for sigmoid + BCE, exp + poisson
    for l = L..1:
        dJ/dW^l = (h^{l-1})^T g^l             (n_{l-1}, n_l)
        dJ/db^l = sum over rows of g^l        (1, n_l)
        g^{l-1} = (g^l (W^l)^T) o f'^{l-1}(a^{l-1})

``backward`` only computes gradients (into the flat ``grad`` buffer); it
never changes a weight. Updating is the optimizer's job
(:mod:`deepff.optimizers`), and the loop around both lives in
:mod:`deepff.training`.
"""

from __future__ import annotations

import contextlib
import contextvars

import numpy as np

from . import losses
from ._twins import numpy_only
from .checks import positive
from .errors import InputError, SpecError
from .layers import Dense
from .params import ParamBuffer
from .validation import cast_finite, check_dtype, check_sample_weight, check_targets, check_X

__all__ = ["FeedForward"]

_PREDICT_CHUNK = 8192
_MAX_PARAMS = 2**33  # 32 GiB of float32: far beyond what a CPU MLP can train


# Whether a new network's loss must take its output activation. Model files are built with the check
# off (stored_architecture): a file saved before a pairing was refused still loads and predicts.
_CHECK_OUTPUT = contextvars.ContextVar("deepff_check_output", default=True)


@contextlib.contextmanager
def stored_architecture():
    """Build networks as stored, without refusing a loss/output pairing that newer deepff would refuse."""
    token = _CHECK_OUTPUT.set(False)
    try:
        yield
    finally:
        _CHECK_OUTPUT.reset(token)


class FeedForward:
    """A stack of dense layers with an output loss: forward, backward, predict.

    Parameters
    ----------
    layers : list of Dense
        Hidden layers and the output layer, in order. Each layer's input
        width is inferred from the previous one.
    loss : str, dict or Loss, default "mse"
        Loss on the output h^L (see :mod:`deepff.losses`).
    n_features : int, optional
        Input width n_0. When omitted the network is built by the first
        call to :meth:`build` (``fit`` does it from the data).
    dtype : {"float32", "float64"}, default "float32"
        Dtype of every parameter and activation.
    seed : int, optional
        Fixes the initial weights, the shuffling order and the dropout
        masks. The same seed gives bit-identical results.

    Attributes
    ----------
    params : ParamBuffer
        ``params.theta`` holds every parameter and ``params.grad`` every
        gradient, each layer's W, b, dW, db being views into them.
    """

    def __init__(self, layers, loss="mse", n_features=None, dtype="float32", seed=None):
        try:
            layers = list(layers)
        except TypeError:                # None, a single Dense, a number: name what is wanted
            raise SpecError(f"layers must be a list of deepff.Dense layers, got {type(layers).__name__}") from None
        if not layers:
            raise SpecError("a network needs at least one layer (the output layer)")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Dense):
                raise SpecError(f"layer {i} must be a deepff.Dense, got {type(layer).__name__}")
            if any(layer is other for other in layers[:i]):
                raise SpecError(f"layer {i} is the same Dense object as an earlier layer; "
                                "give each layer its own Dense")
            if layer.W is not None:
                raise SpecError(f"layer {i} already belongs to a built network (its W is that "
                                "network's); give the new network new Dense objects")
        if layers[-1].dropout:
            raise SpecError("the output layer cannot have dropout (it would make the loss and its "
                            "gradient disagree); put dropout on the hidden layers")
        self.layers = layers
        self.loss = losses.get(loss)
        if self.loss.name == "neg_log_likelihood" and layers[-1].units < 2:
            raise SpecError("neg_log_likelihood needs one output unit per class (at least 2), got 1; "
                            "for a 0/1 target use one sigmoid unit with binary_cross_entropy")
        if _CHECK_OUTPUT.get():   # e.g. a linear output cannot feed neg_log_likelihood
            self.loss.check_output(layers[-1].activation)
        self.dtype = check_dtype(dtype)
        if seed is not None and not (isinstance(seed, (int, np.integer)) and seed >= 0):
            raise SpecError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self.params = None
        self.n_features = None
        seeds = np.random.SeedSequence(self.seed).spawn(3)
        self._init_rng, self.shuffle_rng, self.dropout_rng = (np.random.default_rng(s) for s in seeds)
        self._last_output = None
        #: set to False to force the general chain rule even for fused pairs
        self.allow_fused = True
        if n_features is not None:
            self.build(n_features)

    # ------------------------------------------------------------------ build
    @property
    def output(self):
        """The output layer (Dense)."""
        return self.layers[-1]

    @property
    def n_outputs(self):
        """Width n_L of the output layer (int)."""
        return self.output.units

    @property
    def task(self):
        """"classification" or "regression", decided by the loss (str)."""
        return self.loss.task

    @property
    def multi_label(self):
        """True when the outputs are independent 0/1 targets (binary cross-entropy)."""
        return self.task == "classification" and self.loss.fused_activation == "sigmoid"

    @property
    def built(self):
        """Whether the parameters exist (bool)."""
        return self.params is not None

    @property
    def fused(self):
        """Whether the output activation and loss use the fused gradient (bool)."""
        fa = self.loss.fused_activation
        return self.allow_fused and fa is not None and getattr(self.output.activation, "name", None) == fa

    def build(self, n_features):
        """Allocate the flat buffers, bind every layer to them and initialise.

        Parameters
        ----------
        n_features : int
            Input width n_0.
        """
        positive("", "n_features", n_features, integer=True)
        self.n_features = int(n_features)
        widths = [self.n_features] + [layer.units for layer in self.layers]
        specs = []
        for i, layer in enumerate(self.layers):
            for name, shape, kind in layer.param_specs(widths[i]):
                specs.append((f"layer{i + 1}.{name}", shape, kind))
        total = sum(int(np.prod(shape, dtype=object)) for _, shape, _ in specs)
        if total > _MAX_PARAMS:
            raise SpecError(f"the network would have {total} parameters, more than the "
                            f"{_MAX_PARAMS} deepff allows; use fewer or narrower layers")
        try:        # (the buffers are mapped lazily: drawing the initial weights can be what fails)
            self.params = ParamBuffer(specs, self.dtype)
            self._bind_views()
            for layer in self.layers:
                layer.initialize(self._init_rng)
        except MemoryError:
            self.params = None
            raise SpecError(f"not enough memory for the {total} parameters of this network") from None
        return self

    def _bind_views(self):
        """Point every layer's W, b, dW, db at its slice of the flat buffers."""
        widths = [self.n_features] + [layer.units for layer in self.layers]
        k = 0
        for i, layer in enumerate(self.layers):
            kept = {name: arr.copy() for name, arr in layer.buffers().items() if arr is not None}
            n = len(layer.param_specs(widths[i]))
            layer.bind(widths[i], [self.params.param(j) for j in range(k, k + n)],
                       [self.params.gradient(j) for j in range(k, k + n)], self.dtype)
            for name, arr in layer.buffers().items():
                if name in kept:
                    arr[...] = kept[name]
            k += n

    def __setstate__(self, state):
        # pickle and deepcopy copy theta and each W separately: re-make the views
        self.__dict__.update(state)
        if self.params is not None:
            self._bind_views()

    def _require_built(self):
        if not self.built:
            raise InputError("the network has no weights yet: call fit() or build(n_features) first")

    # ---------------------------------------------------------------- forward
    def forward(self, X, training=False):
        """Run the forward sweep on an already validated batch.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features), of the network's dtype
        training : bool
            Batch statistics and dropout on.

        Returns
        -------
        ndarray of shape (n_samples, n_outputs)
            h^L, a workspace array overwritten by the next pass of the same
            batch size (copy it to keep it).
        """
        h = X                                          # h^0 = X
        with contextlib.nullcontext() if training else numpy_only():   # prediction: numpy, no kernels
            for layer in self.layers:                  # a^l = h^{l-1} W^l + b^l, h^l = f(a^l)
                h = layer.forward(h, training=training, rng=self.dropout_rng)
        self._last_output = h
        return h

    def loss_value(self, Y, sample_weight=None):
        """Return J for the last forward pass.

        Parameters
        ----------
        Y : ndarray of shape (n_samples, n_outputs)
            Prepared targets (see :meth:`prepare_targets`).
        sample_weight : ndarray of shape (n_samples,), optional

        Returns
        -------
        float
        """
        out = self.output
        if self.fused:
            return self.loss.value_from_logits(out.a, Y, sample_weight)
        return self.loss.value(out.h, Y, sample_weight)

    # --------------------------------------------------------------- backward
    def backward(self, Y, sample_weight=None):
        """Run the backward sweep of the last forward pass; fill ``params.grad``.

        Parameters
        ----------
        Y : ndarray of shape (n_samples, n_outputs)
            Prepared targets (see :meth:`prepare_targets`).
        sample_weight : ndarray of shape (n_samples,), optional

        Notes
        -----
        Overwrites (does not accumulate) the gradient buffer, and changes no
        weight.
        """
        out = self.output
        ws = out._workspace(Y.shape[0])
        if self.fused:                                  # g^L = (h^L - y) / n
            g = self.loss.grad_from_logits(out.a, out.h, Y, sample_weight, out=ws.g)
            g = out.backward_preactivation(g)
        else:                                           # g^L = f'(a^L) o dJ/dh^L
            g_h = self.loss.grad(out.h, Y, sample_weight, out=ws.g)
            g = out.backward_activation(g_h)
        for l in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[l]
            g_in = layer.backward_linear(g, input_grad=l > 0)   # dW, db; g W^T
            if l > 0:
                g = self.layers[l - 1].backward_activation(g_in)  # o f'(a^{l-1})

    # ------------------------------------------------------------ data checks
    def prepare_inputs(self, X):
        """Validate X against the network and cast it to its dtype.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        return check_X(X, self.dtype, self.n_features)

    def prepare_targets(self, y, n_samples):
        """Validate targets and turn class labels into one-hot rows.

        Parameters
        ----------
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        n_samples : int

        Returns
        -------
        ndarray of shape (n_samples, n_outputs)
        """
        Y = check_targets(y, n_samples, self.n_outputs, self.task, self.multi_label, self.dtype)
        return self.loss.check_targets(Y)

    def prepare_sample_weight(self, w, n_samples):
        """Validate sample weights (see :func:`deepff.validation.check_sample_weight`).

        Parameters
        ----------
        w : array-like of shape (n_samples,) or None
        n_samples : int

        Returns
        -------
        ndarray of shape (n_samples,) or None
        """
        return check_sample_weight(w, n_samples, self.dtype)

    # ---------------------------------------------------------------- predict
    def predict_output(self, X):
        """Return h^L for X in evaluation mode (no dropout, running BN stats).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_outputs)
            A new array (not a workspace).
        """
        self._require_built()
        X = self.prepare_inputs(X)
        n = X.shape[0]
        result = np.empty((n, self.n_outputs), dtype=self.dtype)
        for start in range(0, n, _PREDICT_CHUNK):
            stop = min(start + _PREDICT_CHUNK, n)
            result[start:stop] = self.forward(X[start:stop], training=False)
        return result

    def predict_proba(self, X):
        """Class probabilities (classification networks only).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_outputs)
        """
        if self.task != "classification":
            raise InputError(f"predict_proba needs a classification loss; this network uses {self.loss.name!r}")
        return self.predict_output(X)

    def predict(self, X):
        """Predict class labels (classification) or values (regression).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Integer labels (argmax) for a categorical output, 0/1 indicators
            (threshold 0.5) for binary cross-entropy, values for regression;
            single-output results are flattened to (n_samples,).
        """
        h = self.predict_output(X)
        if self.task == "classification":
            h = h.argmax(axis=1) if not self.multi_label else (h >= 0.5).astype(np.int64)
        if h.ndim == 2 and h.shape[1] == 1:
            h = h[:, 0]
        return h

    # ---------------------------------------------------------------- weights
    def get_weights(self):
        """Return a copy of the flat parameter vector.

        Returns
        -------
        ndarray of shape (n_params,)
        """
        self._require_built()
        return self.params.theta.copy()

    def set_weights(self, theta):
        """Copy a flat parameter vector into the network (in place).

        Parameters
        ----------
        theta : array-like of shape (n_params,)
        """
        self._require_built()
        theta = np.asarray(theta)
        if theta.shape != self.params.theta.shape:
            raise InputError(f"expected a weight vector of shape {self.params.theta.shape}, got {theta.shape}")
        if theta.dtype.kind not in "biuf":
            raise InputError(f"the weight vector must hold real numbers, got dtype {theta.dtype}")
        self.params.theta[...] = cast_finite(theta, self.dtype, "the weight vector",
                                             fix="scale it down, or use a float64 network")

    def buffers(self):
        """Return every non-trainable state array by name.

        Returns
        -------
        dict of str to ndarray
        """
        return {f"layer{i + 1}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in layer.buffers().items()}

    def n_params(self):
        """Number of trainable scalars (int)."""
        self._require_built()
        return self.params.size

    def __repr__(self):
        body = ", ".join(repr(layer) for layer in self.layers)
        return f"{type(self).__name__}(n_features={self.n_features}, layers=[{body}], loss={self.loss.name!r})"
