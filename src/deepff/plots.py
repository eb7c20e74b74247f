"""Headless matplotlib figures: learning curves, confusion matrix, decision boundary.

matplotlib is imported (with the non-interactive Agg backend) only when a
plot is made, so ``import deepff`` does not pay for it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_history", "plot_confusion_matrix", "plot_decision_boundary"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    from .io import atomic_write

    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110, bbox_inches="tight"))


def plot_history(records, path, title="Learning curves"):
    """Plot training/validation loss and metric per epoch to a PNG.

    Parameters
    ----------
    records : list of dict
        History records (keys "epoch", "loss", optional "val_loss",
        "accuracy", "val_accuracy").
    path : str or path-like
    title : str
    """
    plt = _pyplot()
    epochs = [r["epoch"] for r in records]
    has_acc = any(r.get("accuracy") is not None for r in records)
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5.5, 4))
    axes = np.atleast_1d(axes)
    ax = axes[0]
    ax.plot(epochs, [r["loss"] for r in records], "o-", label="training")
    if any(r.get("val_loss") is not None for r in records):
        ax.plot(epochs, [r.get("val_loss") for r in records], "s--", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("Loss")
    ax.grid(alpha=0.3)
    ax.legend()
    if has_acc:
        ax = axes[1]
        ax.plot(epochs, [r.get("accuracy") for r in records], "o-", label="training")
        if any(r.get("val_accuracy") is not None for r in records):
            ax.plot(epochs, [r.get("val_accuracy") for r in records], "s--", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy")
        ax.set_title("Accuracy")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_confusion_matrix(cm, class_names, path, title="Confusion matrix (test set)"):
    """Draw a confusion matrix with counts in the cells to a PNG.

    Parameters
    ----------
    cm : array-like of shape (n_classes, n_classes)
        Rows are true classes, columns predicted ones.
    class_names : list of str
    path : str or path-like
    title : str
    """
    plt = _pyplot()
    cm = np.asarray(cm)
    k = cm.shape[0]
    size = max(4.0, 0.55 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(k)
    ax.set_xticks(ticks, [str(c) for c in class_names], rotation=45 if k > 10 else 0)
    ax.set_yticks(ticks, [str(c) for c in class_names])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 30:
        threshold = cm.max() / 2 if cm.size else 0
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > threshold else "black")
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_decision_boundary(predict, X, y, path, task="classification", title="Decision boundary"):
    """Colour the plane by the model's prediction and scatter the data (2 features).

    Parameters
    ----------
    predict : callable
        Maps an (m, 2) array in the units of ``X`` to (m,) labels or values.
    X : ndarray of shape (n_samples, 2)
    y : ndarray of shape (n_samples,)
    path : str or path-like
    task : {"classification", "regression"}
    title : str
    """
    plt = _pyplot()
    X = np.asarray(X, dtype=np.float64)
    pad = 0.1 * (X.max(axis=0) - X.min(axis=0) + 1e-9)
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 300), np.linspace(lo[1], hi[1], 300))
    z = np.asarray(predict(np.c_[gx.ravel(), gy.ravel()])).reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(6, 5))
    cmap = "tab10" if task == "classification" else "viridis"
    ax.contourf(gx, gy, z, levels=50 if task == "regression" else np.arange(z.max() + 2) - 0.5,
                cmap=cmap, alpha=0.35)
    sc = ax.scatter(X[:, 0], X[:, 1], c=y, cmap=cmap, edgecolors="k", linewidths=0.4, s=18,
                    vmin=0 if task == "classification" else None,
                    vmax=9 if task == "classification" else None)
    if task == "regression":
        fig.colorbar(sc, ax=ax)
    ax.set_xlabel("feature 1")
    ax.set_ylabel("feature 2")
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
