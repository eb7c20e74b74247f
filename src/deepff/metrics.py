"""Evaluation metrics (numpy only): accuracy, confusion matrix, per-class
precision/recall/F1, and MSE/MAE/R^2 for regression."""

from __future__ import annotations

import numpy as np

__all__ = ["confusion_matrix", "classification_report", "regression_report"]


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
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


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
    yt = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    yp = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    w = np.ones(len(yt)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    w = (w / w.sum())[:, None]                           # weights summing to 1
    r = yp - yt
    ss_res = (w * r * r).sum(axis=0)
    ss_tot = (w * (yt - (w * yt).sum(axis=0)) ** 2).sum(axis=0)
    r2 = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), 0.0)
    return {"mse": float(ss_res.mean()), "mae": float((w * np.abs(r)).sum(axis=0).mean()),
            "r2": float(r2.mean())}
