"""Evaluation metrics (numpy only): a network's loss and accuracy on prepared data, the confusion
matrix, per-class precision/recall/F1, and MSE/MAE/R^2 for regression."""

from __future__ import annotations

import numpy as np

from ._twins import numpy_only
from .checks import positive
from .errors import InputError

__all__ = ["evaluate", "confusion_matrix", "classification_report", "regression_report"]


def confusion_matrix(y_true, y_pred, n_classes):
    """Count how often class i (row) was predicted as class j (column).

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples,)
        Integer labels 0..n_classes-1.
    n_classes : int

    Returns
    -------
    ndarray of shape (n_classes, n_classes), int64
    """
    positive("", "n_classes", n_classes, integer=True, error=InputError)
    t, p = _labels(y_true, "y_true", n_classes), _labels(y_pred, "y_pred", n_classes)
    if t.shape != p.shape:
        raise InputError(f"y_true has {t.size} labels but y_pred has {p.size}; they must match")
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def _labels(y, name, n_classes):
    """y as int64 class labels 0..n_classes-1, shape (n,); anything else is an InputError."""
    a = np.asarray(y)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise InputError(f"{name} must be 1-D, one class label per sample, got shape {a.shape} "
                         "(for one-hot rows pass their argmax(axis=1))")
    if a.dtype.kind not in "biuf" or (a.dtype.kind == "f" and not np.isfinite(a).all()):
        raise InputError(f"{name} must hold integer class labels 0..{n_classes - 1}")
    labels = a.astype(np.int64)
    if (labels != a).any() or (labels < 0).any() or (labels >= n_classes).any():
        bad = a[(labels != a) | (labels < 0) | (labels >= n_classes)][0].item()
        raise InputError(f"{name} holds {bad!r}; class labels must be integers 0..{n_classes - 1}")
    return labels


def classification_report(y_true, y_pred, n_classes):
    """Accuracy, per-class precision/recall/F1/support, macro averages and the confusion matrix.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples,)
        Integer labels 0..n_classes-1.
    n_classes : int

    Returns
    -------
    dict
        "accuracy" (float), "precision", "recall", "f1", "support" (lists
        of length n_classes), "macro_f1" (float) and "confusion_matrix"
        (list of lists). A class never predicted has precision 0; one
        never present has recall 0.
    """
    cm = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    total = cm.sum()
    return {
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.tolist(),
        "macro_f1": float(f1.mean()),
        "confusion_matrix": cm.tolist(),
    }


def _values(y, name):
    """y as float64 columns (n, k); NaN, infinity or more than 2 dimensions are an InputError."""
    try:
        a = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must hold numbers") from None
    if a.ndim not in (1, 2) or a.shape[0] == 0:
        raise InputError(f"{name} must be 1-D or 2-D with at least one row, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise InputError(f"{name} contains NaN or infinity")
    return a.reshape(len(a), -1)


def regression_report(y_true, y_pred, sample_weight=None):
    """MSE, MAE and R^2 (averaged over outputs), optionally weighted.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
    sample_weight : ndarray of shape (n_samples,), optional
        Row weights w: means become sum(w x) / sum(w), as scikit-learn's
        metrics define them.

    Returns
    -------
    dict
        "mse", "mae", "r2" (floats). R^2 = 1 - SS_res / SS_tot per output,
        0 for a constant target.
    """
    yt, yp = _values(y_true, "y_true"), _values(y_pred, "y_pred")
    if yt.shape != yp.shape:
        raise InputError(f"y_true has shape {yt.shape} but y_pred {yp.shape} (as columns); they must match")
    w = np.ones(len(yt)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if w.shape != (len(yt),) or not np.isfinite(w).all() or (w < 0).any() or not w.sum() > 0:
        raise InputError(f"sample_weight must be {len(yt)} finite weights >= 0, not all 0")
    w = (w / w.sum())[:, None]                           # weights summing to 1
    r = yp - yt
    ss_res = (w * r * r).sum(axis=0)
    ss_tot = (w * (yt - (w * yt).sum(axis=0)) ** 2).sum(axis=0)
    r2 = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), 0.0)
    return {"mse": float(ss_res.mean()), "mae": float((w * np.abs(r)).sum(axis=0).mean()),
            "r2": float(r2.mean())}


def evaluate(network, X, Y, w=None, chunk=8192, outputs=None):
    """Loss (penalty excluded) and accuracy of prepared data in evaluation mode.

    Parameters
    ----------
    network : FeedForward
    X : ndarray of shape (n_samples, n_features)
        Validated inputs of the network's dtype.
    Y : ndarray of shape (n_samples, n_outputs)
        Prepared targets.
    w : ndarray of shape (n_samples,), optional
    chunk : int
        Rows per forward pass.
    outputs : ndarray of shape (n_samples, n_outputs), optional
        Filled with h^L when given, so callers need no second pass.

    Returns
    -------
    dict
        "loss", and "accuracy" for classification (with ``w``, the
        weighted fraction sum(w correct) / sum(w)).

    Notes
    -----
    Like prediction it runs the numpy code (inside
    :func:`deepff._twins.numpy_only`): the figures do not depend on which
    compiled kernels a process has loaded, and a fit's validation never
    loads numba.
    """
    with numpy_only():          # as prediction: the same figures in every process, numba loaded or not
        return _evaluate(network, X, Y, w, chunk, outputs)


def _evaluate(network, X, Y, w, chunk, outputs):
    """:func:`evaluate`'s arithmetic."""
    n = X.shape[0]
    total, correct = 0.0, 0.0
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        yb = Y[start:stop]
        wb = None if w is None else w[start:stop]
        h = network.forward(X[start:stop], training=False)
        total += network.loss_value(yb, wb) * (stop - start)
        if outputs is not None:
            outputs[start:stop] = h
        if network.task == "classification":
            hits = _correct_rows(h, yb, network.multi_label)
            correct += float(hits.sum() if wb is None else np.dot(wb, hits))
    out = {"loss": total / n}
    if network.task == "classification":
        out["accuracy"] = correct / (n if w is None else float(w.sum()))
    return out


def _correct_rows(h, y, multi_label):
    """Whether each row of a batch is classified correctly (bool array of shape (n,))."""
    if multi_label:
        return ((h >= 0.5) == (y >= 0.5)).all(axis=1)
    if h.shape[1] == 1:
        return (h[:, 0] >= 0.5) == (y[:, 0] >= 0.5)
    return h.argmax(axis=1) == y.argmax(axis=1)


def _hits(h, y, net, labels=None):
    """Correctly classified rows of a training batch (float; 0.0 for a regression).

    ``labels`` (n,) are the rows' classes when known (one argmax instead of two).
    """
    if labels is not None:
        return float(np.count_nonzero(h.argmax(axis=1) == labels))
    return _n_correct(h, y, net.multi_label) if net.task == "classification" else 0.0


def _n_correct(h, y, multi_label):
    """Number of correctly classified rows of a batch (float)."""
    return float(np.count_nonzero(_correct_rows(h, y, multi_label)))
