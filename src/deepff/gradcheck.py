"""Finite-difference gradient checking.

For every parameter theta_i the central difference

    (J(theta + eps e_i) - J(theta - eps e_i)) / (2 eps)

is compared with the gradient backprop wrote into ``params.grad``. The
error of one parameter array (a layer's W, b, gamma or beta) is

    ||g_backprop - g_numeric||_2 / (||g_backprop||_2 + ||g_numeric||_2)

and :func:`gradcheck` returns the worst one. One exception: when both
gradients of an array are below tau = 1e-7 max(1, |J|) sqrt(size) -- a
thousand times the rounding noise of the difference quotient, about
1e-10 max(1, |J|) per entry -- the two agree that the gradient is zero and
the error is 0. Without it an array whose true gradient is exactly zero (a
bias whose sign terms cancel under mean absolute error, say) would report
noise divided by noise, about 1; gradients that small cannot be checked by
finite differences at all. Run it in float64: in float32
the rounding of J swamps the difference quotient. Dropout masks are held
fixed by replaying the dropout generator's state before every evaluation,
and batch norm is checked in training mode (batch statistics).
"""

from __future__ import annotations

import copy

import numpy as np

from .errors import InputError

__all__ = ["gradcheck", "gradcheck_report"]


def _objective(net, X, Y, w, penalty, training, rng_state):
    net.dropout_rng.bit_generator.state = rng_state
    net.forward(X, training=training)
    J = net.loss_value(Y, w)
    if penalty is not None:
        J += penalty.value(net.params)
    return J


def gradcheck_report(network, X, y, sample_weight=None, penalty=None, training=True, eps=1e-6):
    """Return the relative error of every parameter array.

    Parameters
    ----------
    network : FeedForward
        A built network of dtype float64 (its weights are left unchanged).
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    sample_weight : array-like of shape (n_samples,), optional
    penalty : Penalty, optional
        A weight penalty to include in J and its gradient.
    training : bool, default True
        Check the training-mode function (dropout, batch statistics).
    eps : float, default 1e-6
        Step of the central difference.

    Returns
    -------
    dict of str to float
        ``{"layer1.W": err, "layer1.b": err, ...}``; 0.0 for an array whose
        backprop and numeric gradients are both zero to within the finite
        differences' resolution (see the module docstring).
    """
    if network.dtype != np.float64:
        raise InputError("gradcheck needs a float64 network (dtype='float64'); float32 rounding hides errors")
    X = network.prepare_inputs(X)
    Y = network.prepare_targets(y, X.shape[0])
    w = network.prepare_sample_weight(sample_weight, X.shape[0])
    params = network.params
    saved_theta = params.theta.copy()
    saved_buffers = copy.deepcopy(network.buffers())
    rng_state = copy.deepcopy(network.dropout_rng.bit_generator.state)
    try:
        J = _objective(network, X, Y, w, penalty, training, rng_state)
        if not np.isfinite(J):
            raise InputError(f"the loss is {J} at these weights and data, so there is no gradient to "
                             "check (an output or activation overflowed); use smaller inputs or weights")
        network.backward(Y, w)
        if penalty is not None:
            penalty.add_grad(params)
        analytic = params.grad.copy()
        numeric = np.empty_like(analytic)
        theta = params.theta
        for i in range(theta.size):
            orig = theta[i]
            theta[i] = orig + eps
            j_plus = _objective(network, X, Y, w, penalty, training, rng_state)
            theta[i] = orig - eps
            j_minus = _objective(network, X, Y, w, penalty, training, rng_state)
            theta[i] = orig
            numeric[i] = (j_plus - j_minus) / (2 * eps)
    finally:
        params.theta[...] = saved_theta
        for name, arr in network.buffers().items():
            arr[...] = saved_buffers[name]
        network.dropout_rng.bit_generator.state = rng_state
    report = {}
    resolution = 1e-7 * max(1.0, abs(J))      # per entry: 1000 x the quotient's rounding noise
    for name, s in zip(params.names, params.slices):
        ga, gn = analytic[s], numeric[s]
        norm_a, norm_n = np.linalg.norm(ga), np.linalg.norm(gn)
        if max(norm_a, norm_n) < resolution * np.sqrt(ga.size):
            report[name] = 0.0                # both zero, as far as differences can tell
        else:
            report[name] = float(np.linalg.norm(ga - gn) / (norm_a + norm_n))
    return report


def gradcheck(network, X, y, sample_weight=None, penalty=None, training=True, eps=1e-6):
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

    Returns
    -------
    float
        The largest relative error over the parameter arrays; below 1e-6
        means backprop is right.
    """
    report = gradcheck_report(network, X, y, sample_weight, penalty, training, eps)
    return max(report.values())
