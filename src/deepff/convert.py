"""Conversions between deepff and PyTorch or scikit-learn.

* :func:`from_sklearn`: a fitted ``sklearn.neural_network.MLPClassifier`` or
  ``MLPRegressor`` becomes the equivalent :mod:`deepff.sklearn` estimator,
  with the same parameters, weights, classes, fitted attributes and
  optimizer state, so it predicts the same numbers and ``partial_fit``
  continues where scikit-learn would.
* :func:`to_torch`: a deepff network becomes a ``torch.nn.Sequential``
  (``Linear`` with ``weight = W^T``, then ``BatchNorm1d``, the activation and
  ``Dropout`` as the layer has them), in evaluation mode.
* :func:`from_torch`: a ``Sequential`` of those modules becomes a
  :class:`~deepff.model.Network`.

deepff stores ``W^l`` as (n_{l-1}, n_l) and computes ``a = h W + b``;
PyTorch's ``Linear`` stores (n_l, n_{l-1}) and computes ``h W^T + b``: the
conversions transpose, nothing else. scikit-learn's ``coefs_`` have deepff's
orientation already. torch and scikit-learn are imported only when these
functions run.
"""

from __future__ import annotations

import numpy as np

from . import activations as A
from .errors import InputError, MissingDependencyError, SpecError

__all__ = ["from_sklearn", "to_torch", "from_torch"]

_BN_EPS = 1e-5


def _torch():
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError(f"this needs PyTorch, which cannot be imported ({exc}); "
                                     "install it with: pip install torch") from None
    return torch


# ------------------------------------------------------------------ PyTorch
def _exp_module(torch):
    """A torch module computing e^a (PyTorch has no Exp layer), made once per torch import."""
    cls = getattr(torch, "_deepff_exp_module", None)
    if cls is None:
        class Exp(torch.nn.Module):
            """h = e^a, deepff's ``exp`` activation."""

            def forward(self, a):
                return torch.exp(a)

        cls = torch._deepff_exp_module = Exp
    return cls


def _torch_activation(torch, act):
    """The torch module for a deepff activation, or None for linear."""
    nn = torch.nn
    makers = {A.Linear: lambda: None, A.ReLU: nn.ReLU, A.Sigmoid: nn.Sigmoid, A.Tanh: nn.Tanh,
              A.SELU: nn.SELU, A.GELU: nn.GELU, A.SiLU: nn.SiLU, A.Exp: _exp_module(torch),
              A.Softmax: lambda: nn.Softmax(dim=1),
              A.LeakyReLU: lambda: nn.LeakyReLU(act.slope), A.ELU: lambda: nn.ELU(act.alpha),
              A.Softplus: lambda: nn.Softplus()}
    make = makers.get(type(act))
    if make is None:
        return False
    return make()


def to_torch(network):
    """Return a ``torch.nn.Sequential`` that computes what ``network`` predicts.

    Parameters
    ----------
    network : Network, FeedForward or Net
        A built network (its stored preprocessing is not included: give the
        Sequential standardised inputs, as the network gets them).

    Returns
    -------
    torch.nn.Sequential
        In evaluation mode, in the network's dtype (float32 or float64):
        per layer ``Linear(n_in, n_out)`` (``bias=False`` with batch norm),
        ``BatchNorm1d`` with the running statistics, the activation, and
        ``Dropout(p)`` when the layer has dropout.

    Raises
    ------
    SpecError
        For a custom activation (naming its layer).
    """
    from .network import FeedForward

    torch = _torch()
    net = getattr(network, "network", network)
    if not isinstance(net, FeedForward) or not net.built:
        raise InputError(f"to_torch takes a built deepff network, got {type(network).__name__}")
    dtype = torch.float64 if np.dtype(net.dtype) == np.float64 else torch.float32
    modules = []
    for i, layer in enumerate(net.layers, start=1):
        act = _torch_activation(torch, layer.activation)
        if act is False:
            raise SpecError(f"layer {i} uses the custom activation {layer.activation.name!r}, which has no "
                            "PyTorch module here")
        linear = torch.nn.Linear(layer.n_in, layer.units, bias=not layer.batch_norm, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.W.T)))   # (out, in) = W^T
            if not layer.batch_norm:
                linear.bias.copy_(torch.from_numpy(layer.b.reshape(-1).copy()))
        modules.append(linear)
        if layer.batch_norm:
            bn = torch.nn.BatchNorm1d(layer.units, eps=_BN_EPS, momentum=0.1, dtype=dtype)
            with torch.no_grad():
                for name, value in (("weight", layer.gamma), ("bias", layer.beta), ("running_mean",
                                    layer.running_mean), ("running_var", layer.running_var)):
                    getattr(bn, name).copy_(torch.from_numpy(value.reshape(-1).copy()))
            modules.append(bn)
        if act is not None:
            modules.append(act)
        if layer.dropout:
            modules.append(torch.nn.Dropout(layer.dropout))
    return torch.nn.Sequential(*modules).to(dtype).eval()


def _deepff_activation(torch, module):
    """The deepff activation name or config of a torch module, or None when it is not one."""
    nn = torch.nn
    if type(module) is nn.Softplus:
        return "softplus" if module.beta == 1 else None
    if type(module) is nn.GELU:
        return "gelu" if module.approximate == "none" else None
    if type(module) is nn.Softmax:
        return "softmax" if module.dim in (1, -1) else None
    if type(module) is nn.LeakyReLU:
        return {"name": "leaky_relu", "slope": float(module.negative_slope)}
    if type(module) is nn.ELU:
        return {"name": "elu", "alpha": float(module.alpha)}
    plain = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.SELU: "selu", nn.SiLU: "silu",
             nn.Identity: "linear", _exp_module(torch): "exp"}
    return plain.get(type(module))


_SUPPORTED = ("Linear, BatchNorm1d (after a Linear), Dropout, Identity and the activations ReLU, LeakyReLU, ELU, "
              "SELU, Softplus (beta=1), Sigmoid, Tanh, GELU (exact), SiLU, Softmax (dim=1) and deepff's Exp")


def _torch_layers(torch, sequential):
    """Group the modules into layers: [{"linear", "bn", "act", "dropout"}], refusing what does not fit."""
    layers = []
    for pos, module in enumerate(sequential):
        name = type(module).__name__
        current = layers[-1] if layers else None
        if isinstance(module, torch.nn.Linear):
            layers.append({"linear": module, "bn": None, "act": None, "dropout": 0.0})
            continue
        if current is None:
            raise SpecError(f"module {pos} ({name}) comes before the first Linear; from_torch takes a "
                            "Sequential that starts with a Linear")
        if isinstance(module, torch.nn.BatchNorm1d):
            if current["bn"] is not None or current["act"] is not None or current["dropout"]:
                raise SpecError(f"module {pos} (BatchNorm1d) must follow its Linear directly")
            if not module.affine or not module.track_running_stats or module.eps != _BN_EPS:
                raise SpecError(f"module {pos} (BatchNorm1d) needs affine=True, track_running_stats=True and "
                                f"eps={_BN_EPS} (deepff's batch normalisation)")
            current["bn"] = module
        elif isinstance(module, torch.nn.Dropout):
            current["dropout"] = float(module.p)
        else:
            act = _deepff_activation(torch, module)
            if act is None or current["act"] is not None or current["dropout"]:
                why = "a second activation for one Linear" if act is not None else "not supported"
                raise SpecError(f"module {pos} ({name}) is {why}; from_torch takes {_SUPPORTED}")
            current["act"] = act
    if not layers:
        raise SpecError("the Sequential holds no Linear module; from_torch needs at least one")
    return layers


def from_torch(sequential, loss="mse", seed=None):
    """Build a :class:`~deepff.model.Network` from a ``torch.nn.Sequential``.

    Parameters
    ----------
    sequential : torch.nn.Sequential
        ``Linear`` modules, each optionally followed by ``BatchNorm1d``, one
        supported activation and ``Dropout`` (in that order).
    loss : str, dict or Loss, default "mse"
        The network's loss (PyTorch keeps it outside the model).
    seed : int, optional
        The new network's seed (shuffling and dropout when it trains on).

    Returns
    -------
    Network
        In the weights' dtype (float32 or float64), predicting what the
        Sequential computes in evaluation mode.

    Raises
    ------
    SpecError
        For an unsupported module (naming it and its position) or an
        invalid architecture for ``loss``.
    """
    from .layers import Dense
    from .model import Network

    torch = _torch()
    if not isinstance(sequential, torch.nn.Sequential):
        raise InputError(f"from_torch takes a torch.nn.Sequential, got {type(sequential).__name__}")
    groups = _torch_layers(torch, sequential)
    dtype = "float64" if groups[0]["linear"].weight.dtype == torch.float64 else "float32"
    dense = [Dense(g["linear"].out_features, g["act"] or "linear", dropout=g["dropout"], batch_norm=g["bn"] is not None)
             for g in groups]
    net = Network(dense, loss=loss, n_features=groups[0]["linear"].in_features, dtype=dtype, seed=seed)

    def arr(t):
        return t.detach().cpu().double().numpy()

    for layer, g in zip(net.layers, groups):
        lin, bn = g["linear"], g["bn"]
        if lin.in_features != layer.n_in:
            raise SpecError(f"Linear({lin.in_features}, {lin.out_features}) follows a layer of width {layer.n_in}")
        layer.W[...] = arr(lin.weight).T                        # W = weight^T, (n_in, n_out)
        bias = arr(lin.bias) if lin.bias is not None else np.zeros(layer.units)
        if bn is None:
            layer.b[...] = bias
        else:       # BN(hW + c) uses (hW + c - mu): deepff's layer has no bias, so mu - c takes it in
            layer.gamma[...] = arr(bn.weight)
            layer.beta[...] = arr(bn.bias)
            layer.running_mean[...] = arr(bn.running_mean) - bias
            layer.running_var[...] = arr(bn.running_var)
    return net


# -------------------------------------------------------------- scikit-learn
def from_sklearn(estimator):
    """Return the :mod:`deepff.sklearn` twin of a fitted scikit-learn MLP.

    Parameters
    ----------
    estimator : sklearn.neural_network.MLPClassifier or MLPRegressor
        Fitted.

    Returns
    -------
    deepff.sklearn.MLPClassifier or deepff.sklearn.MLPRegressor
        The same constructor parameters, ``coefs_``, ``intercepts_``,
        ``classes_`` and fitted attributes (``n_iter_``, ``t_``, ``loss_``,
        ``loss_curve_``, ...), and, for the stochastic solvers, the
        optimizer's state (Adam's moments, SGD's velocities), so that
        ``partial_fit`` continues as scikit-learn's would.

    Raises
    ------
    InputError
        For another estimator, or one that is not fitted.
    """
    try:
        from sklearn.neural_network import MLPClassifier as SkClassifier
        from sklearn.neural_network import MLPRegressor as SkRegressor
    except ImportError as exc:
        raise MissingDependencyError(f"from_sklearn needs scikit-learn, which cannot be imported ({exc}); "
                                     'install it with: pip install "deepff[sklearn]"') from None
    from .sklearn import MLPClassifier, MLPRegressor

    if not isinstance(estimator, (SkClassifier, SkRegressor)):
        raise InputError("from_sklearn takes a fitted sklearn.neural_network.MLPClassifier or MLPRegressor, "
                         f"got {type(estimator).__name__}")
    if not hasattr(estimator, "coefs_"):
        raise InputError(f"this {type(estimator).__name__} is not fitted yet: call fit first")
    ours = (MLPClassifier if isinstance(estimator, SkClassifier) else MLPRegressor)()
    known = ours.get_params(deep=False)
    ours.set_params(**{k: v for k, v in estimator.get_params(deep=False).items() if k in known})
    _adopt_fitted(ours, estimator)
    return ours


_FITTED = ("n_iter_", "t_", "loss_", "best_loss_", "best_validation_score_", "n_features_in_", "feature_names_in_")


def _adopt_fitted(ours, theirs):
    """Give the deepff estimator ``ours`` the fitted state of scikit-learn's ``theirs``.

    The one place that knows the insides of both estimators: deepff's
    initialisation (``_initialize``) builds the network for the fitted
    shapes, then the weights, fitted attributes and optimizer state are
    copied over.
    """
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state

    from . import schedules as _schedules

    coefs = theirs.coefs_
    layer_units = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
    if hasattr(theirs, "classes_"):
        multi_label = theirs.out_activation_ == "logistic" and theirs.n_outputs_ > 1
        ours._label_binarizer = LabelBinarizer().fit(np.eye(theirs.n_outputs_, dtype=int) if multi_label
                                                     else theirs.classes_)
        ours.classes_ = np.array(theirs.classes_, copy=True)
    ours._random_state = check_random_state(ours.random_state)
    ours._initialize(np.zeros((1, theirs.n_outputs_)), layer_units, coefs[0].dtype)
    for mine, theirs_w in zip(ours.coefs_ + ours.intercepts_, coefs + theirs.intercepts_):
        mine[...] = theirs_w                       # coefs_ / intercepts_ are views of the network's weights
    for name in _FITTED:
        if hasattr(theirs, name):
            setattr(ours, name, np.array(getattr(theirs, name), copy=True) if name == "feature_names_in_"
                    else getattr(theirs, name))
    for name in ("loss_curve_", "validation_scores_"):
        if getattr(theirs, name, None) is not None:
            setattr(ours, name, list(getattr(theirs, name)))
    ours._no_improvement_count = getattr(theirs, "_no_improvement_count", 0)
    ours._best_theta = ours._net.params.theta.copy()
    opt = getattr(theirs, "_optimizer", None)
    if opt is None or not isinstance(ours.solver, str) or ours.solver not in ("sgd", "adam"):
        return                                      # lbfgs: nothing carries over
    mine = ours._optimizer = ours._make_optimizer()
    ours._lr_settings = (ours.learning_rate, float(ours.learning_rate_init), ours.power_t)
    ours._base_lr, ours._steps, ours._epochs = float(mine.lr), 0, ours.n_iter_
    ours._schedule = ours._lr_schedule()            # learning_rate's schedule, where it has one, at theirs's point
    params = ours._net.params
    n = len(coefs)

    def flat(arrays):                               # scikit-learn's [W_1..W_L, b_1..b_L] into deepff's theta order
        out = np.zeros_like(params.theta)
        for name, sl in zip(params.names, params.slices):
            layer, kind = name.split(".")
            i = int(layer[len("layer"):]) - 1
            out[sl] = np.ravel(arrays[i] if kind == "W" else arrays[n + i])
        return out

    if ours.solver == "adam":                       # Adam(fold_bias_correction=True): scikit-learn's ms, vs, t
        mine.state = {"exp_avg": flat(opt.ms), "exp_avg_sq": flat(opt.vs)}
        mine.t = int(opt.t)
    else:                                           # SGD(lr_in_velocity=True): scikit-learn's velocities
        mine.state = {"momentum_buffer": flat(opt.velocities)}
        mine.t = 1                                  # (a buffer exists: not a first step)
        mine.lr = float(opt.learning_rate)          # the current rate (invscaling / adaptive change it)
        schedule = ours._schedule
        if isinstance(schedule, _schedules.InvScaling):
            schedule.seen = int(ours.t_)            # t counts the samples of every epoch so far
        elif isinstance(schedule, _schedules.Plateau):
            schedule.scale = mine.lr / ours._base_lr    # the divisions by 5 so far
            schedule.bad_epochs = ours._no_improvement_count
            best = ours.best_loss_
            schedule.best_loss = float(best) if best is not None and np.isfinite(best) else None
