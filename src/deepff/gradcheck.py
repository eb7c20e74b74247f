"""Finite-difference gradient checking.

For every parameter theta_i the central difference

    (J(theta + eps e_i) - J(theta - eps e_i)) / (2 eps)

is compared with the gradient backprop wrote into ``params.grad``. The
error of one parameter array (a layer's W, b, gamma or beta) is the
relative difference

    ||g_backprop - g_numeric||_2 / (||g_backprop||_2 + ||g_numeric||_2)

and :func:`gradcheck` returns the worst one.

A relative error alone misreads an array whose true gradient is exactly
zero (a bias whose sign terms cancel under mean absolute error, say): the
difference quotient's rounding noise divided by itself reads about 1. So,
as ``numpy.allclose`` and ``torch.autograd.gradcheck`` do, an absolute
tolerance stands beside the relative one: an array whose root-mean-square
difference ``||g_backprop - g_numeric||_2 / sqrt(size)`` is within ``atol``
passes: its reported error is the difference over at least 1e6 times the
tolerance's norm, so it reads below 1e-6. ``atol`` defaults to a hundred times
the quotient's rounding noise, 100 eps_machine max(1, |J|) / eps (about
2e-8 for J <= 1 at eps = 1e-6); :func:`gradcheck_details` says which
tolerance decided for each array. Any larger difference, even between tiny
gradients (one of them with the wrong sign, or missing), is reported as the
plain ratio.
Run it in float64: in float32
the rounding of J swamps the difference quotient. Dropout masks are held
fixed by replaying the dropout generator's state before every evaluation,
and batch norm is checked in training mode (batch statistics).

Finite differences cannot check a derivative where it jumps: at a ReLU's
kink (a pre-activation of exactly 0, as a blank input row gives with zero
biases) backprop uses f'(0) = 0, as PyTorch does, while the central
difference straddles the kink and reads 1/2. Such entries make a correct
gradient report an error; :func:`gradcheck_report` warns
(:class:`GradcheckWarning`) when a pre-activation lies that close to a
kink, so move the inputs or biases off it.
"""

from __future__ import annotations

import copy

import numpy as np

from .checks import real
from .errors import InputError
from .network import FeedForward
from .regularizers import Penalty

__all__ = ["gradcheck", "gradcheck_report", "gradcheck_details", "GradcheckWarning", "RTOL"]

RTOL = 1e-6   # a relative error below this means backprop is right


class GradcheckWarning(UserWarning):
    """The check is unreliable for this network and data (a pre-activation on an activation's kink)."""


def _warn_about_kinks(net, eps):
    """Warn when a pre-activation lies within the finite differences' reach of a kink of its activation."""
    import warnings

    for i, layer in enumerate(net.layers):
        kinks = getattr(layer.activation, "kinks", ())
        if not kinks or layer.a is None:
            continue
        reach = 10 * eps * (1 + float(np.abs(layer.h_in).max()))   # how far one step of eps moves a
        near = sum(int(np.count_nonzero(np.abs(layer.a - k) <= reach)) for k in kinks)
        if near:
            warnings.warn(
                f"{near} pre-activation(s) of layer{i + 1} lie on (or within {reach:.1g} of) a kink of "
                f"{layer.activation.name} at {', '.join(f'{k:g}' for k in kinks)}, where finite differences "
                "cannot check the derivative: an error above 1e-6 there need not mean a wrong gradient; move the "
                "inputs or the biases (e.g. bias_init={'name': 'normal', 'std': 0.5}) off it",
                GradcheckWarning, stacklevel=3)


def _central_differences(objective, theta, eps):
    """(J(theta + eps e_i) - J(theta - eps e_i)) / (2 eps) for every i; ``theta`` is changed in place, then restored."""
    numeric = np.empty_like(theta)
    for i in range(theta.size):
        orig = theta[i]
        theta[i] = orig + eps
        j_plus = objective()
        theta[i] = orig - eps
        j_minus = objective()
        theta[i] = orig
        numeric[i] = (j_plus - j_minus) / (2 * eps)
    return numeric


def _objective(net, X, Y, w, penalty, training, rng_state):
    net.dropout_rng.bit_generator.state = rng_state
    net.forward(X, training=training)
    J = net.loss_value(Y, w)
    if penalty is not None:
        J += penalty.value(net.params, penalty.batch_weight(X.shape[0], w))
    return J


def gradcheck_details(network, X, y, sample_weight=None, penalty=None, training=True, eps=1e-6, atol=None):
    """Compare backprop with central differences, array by array, and say which tolerance decided.

    Parameters
    ----------
    network : FeedForward or Net
        A built network of dtype float64 (its weights are left unchanged);
        a classic :class:`~deepff.classic.Net` is checked through its engine.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    sample_weight : array-like of shape (n_samples,), optional
    penalty : Penalty or dict, optional
        A weight penalty to include in J and its gradient (a dict such as
        ``{"l2": 0.1}`` as :class:`~deepff.training.Trainer` takes it).
    training : bool, default True
        Check the training-mode function (dropout, batch statistics).
    eps : float, default 1e-6
        Step of the central difference.
    atol : float, optional
        Absolute tolerance on the root-mean-square difference of an array;
        default 100 eps_machine max(1, |J|) / eps, the quotient's rounding
        noise times a hundred.

    Returns
    -------
    dict of str to dict
        For each parameter array (``"layer1.W"``, ``"layer1.b"``, ...):
        ``error`` (the reported error: the relative error, floored below
        1e-6 when the difference is within ``atol``), ``relative`` (the
        plain relative error), ``rms_diff`` (root-mean-square difference),
        ``atol`` (the absolute tolerance used) and ``decided_by``:
        ``"atol"`` when the relative error alone would fail (>= 1e-6) but the
        difference is within ``atol`` (a true gradient of about zero), else
        ``"rtol"``.
    """
    if not isinstance(network, FeedForward) and isinstance(getattr(network, "network", None), FeedForward):
        network = network.network                     # a classic Net: check its engine
    if not isinstance(network, FeedForward):
        raise InputError(f"gradcheck checks a deepff network (Network, FeedForward or Net), "
                         f"got {type(network).__name__}")
    network._require_built()
    if network.dtype != np.float64:
        raise InputError("gradcheck needs a float64 network (dtype='float64'); float32 rounding hides errors")
    eps = real("gradcheck", "eps", eps, low=0.0, low_open=True)
    if atol is not None:
        atol = real("gradcheck", "atol", atol, low=0.0)
    if penalty is not None and not isinstance(penalty, Penalty):
        from .spec import parse_regularization

        penalty = parse_regularization(penalty)     # {"l2": 0.1} as Trainer takes it
    X = network.prepare_inputs(X)
    Y = network.prepare_targets(y, X.shape[0])
    w = network.prepare_sample_weight(sample_weight, X.shape[0])
    params = network.params
    saved_theta = params.theta.copy()
    saved_buffers = copy.deepcopy(network.buffers())
    rng_state = copy.deepcopy(network.dropout_rng.bit_generator.state)
    try:
        J = _objective(network, X, Y, w, penalty, training, rng_state)
        _warn_about_kinks(network, eps)
        if not np.isfinite(J):
            raise InputError(f"the loss is {J} at these weights and data, so there is no gradient to "
                             "check (an output or activation overflowed); use smaller inputs or weights")
        network.backward(Y, w)
        if penalty is not None:
            penalty.add_grad(params, penalty.batch_weight(X.shape[0], w))
        analytic = params.grad.copy()
        numeric = _central_differences(lambda: _objective(network, X, Y, w, penalty, training, rng_state),
                                       params.theta, eps)
    finally:
        params.theta[...] = saved_theta
        for name, arr in network.buffers().items():
            arr[...] = saved_buffers[name]
        network.dropout_rng.bit_generator.state = rng_state
    if atol is None:
        atol = 100 * np.finfo(np.float64).eps * max(1.0, abs(J)) / eps   # the quotient's noise, x100
    return {name: _compare(analytic[s], numeric[s], atol) for name, s in zip(params.names, params.slices)}


def _compare(ga, gn, atol):
    """One parameter array's backprop gradient ``ga`` against its central differences ``gn``."""
    diff = np.linalg.norm(ga - gn)
    rms = diff / np.sqrt(ga.size)
    size = np.linalg.norm(ga) + np.linalg.norm(gn)
    ratio = diff / size if size > 0 else 0.0
    within = bool(rms <= atol)
    if within:                       # never reads as an error: the denominator is at least 1e6 x atol's norm
        size = max(size, 1e6 * atol * np.sqrt(ga.size))
    error = float(diff / size) if size > 0 else 0.0
    return {"error": error, "relative": float(ratio), "rms_diff": float(rms), "atol": float(atol),
            "decided_by": "atol" if within and ratio >= RTOL else "rtol"}


def gradcheck_report(network, X, y, sample_weight=None, penalty=None, training=True, eps=1e-6, atol=None):
    """Return the relative error of every parameter array.

    Parameters
    ----------
    network : FeedForward or Net
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    sample_weight : array-like of shape (n_samples,), optional
    penalty : Penalty or dict, optional
    training : bool, default True
    eps : float, default 1e-6
    atol : float, optional
        As for :func:`gradcheck_details`.

    Returns
    -------
    dict of str to float
        ``{"layer1.W": err, "layer1.b": err, ...}``: the relative error of
        each array, floored below 1e-6 where its difference is within
        ``atol`` (the module docstring gives both tolerances).
    """
    details = gradcheck_details(network, X, y, sample_weight, penalty, training, eps, atol)
    return {name: d["error"] for name, d in details.items()}


def gradcheck(network, X, y, sample_weight=None, penalty=None, training=True, eps=1e-6, atol=None):
    """Compare backprop with central finite differences; return the worst error.

    Parameters
    ----------
    network : FeedForward
        A built float64 network.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    sample_weight : array-like of shape (n_samples,), optional
    penalty : Penalty, optional
    training : bool, default True
    eps : float, default 1e-6
    atol : float, optional
        Absolute tolerance (see :func:`gradcheck_details`).

    Returns
    -------
    float
        The largest relative error over the parameter arrays; below 1e-6
        means backprop is right.
    """
    report = gradcheck_report(network, X, y, sample_weight, penalty, training, eps, atol)
    return max(report.values())
