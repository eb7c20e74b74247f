"""Headless matplotlib figures: learning curves, confusion matrix, decision boundary.

matplotlib is imported (with the non-interactive Agg backend) only when a
plot is made, so ``import deepff`` does not pay for it. Every function
writes one PNG atomically and closes its figure.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InputError

__all__ = ["plot_history", "plot_confusion_matrix", "plot_decision_boundary", "plot_augmentations", "class_colors"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: The PNG "Software" text of every figure deepff writes: how the command knows a file is its own.
SOFTWARE = "deepff"


def _save(fig, path):
    from .io import atomic_write

    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110, bbox_inches="tight",
                                              metadata={"Software": SOFTWARE}))


def written_by_deepff(path):
    """Whether ``path`` is a PNG that deepff's plot functions wrote (its "Software" text chunk).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    bool
        False for a missing or unreadable file, or any other image.
    """
    try:
        with open(path, "rb") as fh:
            if fh.read(8) != b"\x89PNG\r\n\x1a\n":
                return False
            while True:                      # chunks: length, type, data, CRC
                head = fh.read(8)
                if len(head) < 8:
                    return False
                length, kind = int.from_bytes(head[:4], "big"), head[4:]
                if kind == b"IDAT" or kind == b"IEND" or length > 1 << 16:
                    return False             # text chunks come before the image data
                data = fh.read(length)
                fh.read(4)
                if kind == b"tEXt" and data.split(b"\0", 1) == [b"Software", SOFTWARE.encode()]:
                    return True
    except OSError:
        return False


def _series(records, key):
    """The values of ``key`` per record, NaN where absent (None is not plottable)."""
    out = []
    for r in records:
        v = r.get(key)
        out.append(float(v) if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                   else math.nan)
    return out


def _has(records, key):
    return any(not math.isnan(v) for v in _series(records, key))


def class_colors(n_classes):
    """The RGBA colours used for classes 0..n_classes-1 in every deepff plot.

    Parameters
    ----------
    n_classes : int

    Returns
    -------
    list of tuple
        tab10 for up to 10 classes, tab20 for up to 20, evenly spaced
        ``turbo`` colours beyond.
    """
    import matplotlib

    if n_classes <= 10:
        cmap = matplotlib.colormaps["tab10"]
        return [cmap(i) for i in range(n_classes)]
    if n_classes <= 20:
        cmap = matplotlib.colormaps["tab20"]
        return [cmap(i) for i in range(n_classes)]
    cmap = matplotlib.colormaps["turbo"]
    return [cmap(x) for x in np.linspace(0.05, 0.95, n_classes)]


def plot_history(records, path, title="Learning curves", val_label="validation"):
    """Plot training/validation loss and accuracy per epoch to a PNG.

    Parameters
    ----------
    records : list of dict
        History records (keys "epoch", "loss", optional "val_loss",
        "accuracy", "val_accuracy").
    path : str or path-like
    title : str
    val_label : str, default "validation"
        Legend entry of the ``val_*`` curves (e.g. "test" when they were
        measured on the held-out test split).
    """
    from matplotlib.ticker import MaxNLocator

    records = getattr(records, "records", records)        # a History, or its list of records
    if not isinstance(records, (list, tuple)) or not all(isinstance(r, dict) and "epoch" in r for r in records):
        raise InputError("plot_history needs a History or its records (dicts with an 'epoch' key), got "
                         f"{type(records).__name__}")
    if not records:
        raise InputError("plot_history: the history holds no epoch to plot")
    plt = _pyplot()
    epochs = [r["epoch"] for r in records]
    has_acc = _has(records, "accuracy") or _has(records, "val_accuracy")
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5.5, 4))
    axes = np.atleast_1d(axes)
    panels = [("loss", "Loss", "loss")]
    if has_acc:
        panels.append(("accuracy", "Accuracy", "accuracy"))
    for ax, (key, name, ylabel) in zip(axes, panels):
        marker = "o" if len(epochs) <= 40 else None
        if _has(records, key):
            ax.plot(epochs, _series(records, key), "-", marker=marker, color="tab:blue", label="training")
        if _has(records, "val_" + key):
            ax.plot(epochs, _series(records, "val_" + key), "--", marker="s" if marker else None,
                    color="tab:orange", label=val_label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(set(epochs)) == 1:     # one epoch: its own tick (a locator would divide the axis)
            ax.set_xticks([epochs[0]])
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
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
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.dtype.kind not in "biuf":
        raise InputError(f"plot_confusion_matrix needs a square matrix of counts, got shape {cm.shape}")
    k = cm.shape[0]
    if len(class_names) != k:
        raise InputError(f"plot_confusion_matrix: {len(class_names)} class names for a {k} x {k} matrix; "
                         "give one name per class")
    plt = _pyplot()
    size = min(max(4.0, 0.55 * k + 2), 14.0)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(cm, cmap="Blues", vmin=0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="samples")
    ticks = np.arange(k)
    names = [str(c) for c in class_names]
    long_names = k > 10 or max((len(n) for n in names), default=0) > 3
    ax.set_xticks(ticks, names, rotation=45 if long_names else 0, ha="right" if long_names else "center")
    ax.set_yticks(ticks, names)
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


def plot_decision_boundary(predict, X, y, path, task="classification", title=None, class_names=None,
                           feature_names=None, target_name=None, resolution=300):
    """Colour the plane by the model's prediction and scatter the data (2 features).

    For classification the background shows the predicted class in a pale
    version of the same colour its samples are drawn with, thin black lines
    mark the boundaries, and a legend names the classes. For regression
    background and points share one colour scale (a point that blends into
    its background is predicted well).

    Parameters
    ----------
    predict : callable
        Maps an (m, 2) array in the units of ``X`` to (m,) labels 0..k-1
        (classification) or values (regression).
    X : ndarray of shape (n_samples, 2)
    y : ndarray of shape (n_samples,), optional
        Class codes 0..k-1 or target values of the scattered samples; None
        draws them uncoloured.
    path : str or path-like
    task : {"classification", "regression"}
    title : str, optional
    class_names : list, optional
        Name of each class code (sets k; default: the codes seen).
    feature_names : (str, str), optional
        Axis labels (default "feature 1", "feature 2").
    target_name : str, optional
        Colour-bar label for regression.
    resolution : int, default 300
        Grid points per axis.
    """
    if task not in ("classification", "regression"):
        raise InputError(f"plot_decision_boundary: unknown task {task!r}; valid choices: 'classification', "
                         "'regression'")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise InputError(f"plot_decision_boundary needs X of shape (n, 2), got {X.shape}")
    plt = _pyplot()
    span = X.max(axis=0) - X.min(axis=0)
    pad = 0.08 * np.where(span > 0, span, 1.0)
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    z = np.asarray(predict(np.c_[gx.ravel(), gy.ravel()]))
    z = z.reshape(z.shape[0], -1)[:, 0].reshape(gx.shape) if z.ndim > 1 else z.reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(6.8, 5))
    extent = (lo[0], hi[0], lo[1], hi[1])
    if task == "classification":
        default_title = _draw_classes(ax, gx, gy, z, X, y, class_names, extent)
    else:
        default_title = _draw_values(fig, ax, z, X, y, target_name, extent)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    fx, fy = (list(feature_names) + ["", ""])[:2] if feature_names is not None else ("", "")
    ax.set_xlabel(fx or "feature 1")
    ax.set_ylabel(fy or "feature 2")
    ax.set_title(title or default_title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def _draw_classes(ax, gx, gy, z, X, y, class_names, extent):
    """Pale class regions, black boundaries, the samples in their class colour and a legend; the default title."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.lines import Line2D

    z = z.astype(np.int64)
    seen = [int(z.max())] + ([int(np.max(y))] if y is not None and len(y) else [])
    k = len(class_names) if class_names is not None else max(seen) + 1
    names = [str(c) for c in class_names] if class_names is not None else [str(i) for i in range(k)]
    colors = class_colors(k)
    cmap = ListedColormap(colors)
    norm = BoundaryNorm(np.arange(k + 1) - 0.5, k)
    ax.imshow(z, extent=extent, origin="lower", cmap=cmap, norm=norm, alpha=0.3, aspect="auto",
              interpolation="nearest")
    if k > 1 and np.unique(z).size > 1:
        ax.contour(gx, gy, z, levels=np.arange(k - 1) + 0.5, colors="k", linewidths=0.7, alpha=0.6)
    if y is not None:
        ax.scatter(X[:, 0], X[:, 1], c=np.asarray(y, dtype=np.int64), cmap=cmap, norm=norm,
                   edgecolors="k", linewidths=0.5, s=24, zorder=3)
    else:
        ax.scatter(X[:, 0], X[:, 1], c="k", s=10, zorder=3)
    handles = [Line2D([], [], marker="o", linestyle="", markerfacecolor=colors[i], markeredgecolor="k",
                      markersize=7, label=names[i]) for i in range(k)]
    ax.legend(handles=handles, title="class", loc="upper left", bbox_to_anchor=(1.02, 1.0),
              borderaxespad=0.0, frameon=False)
    return "Decision regions (background: predicted class)"


def _draw_values(fig, ax, z, X, y, target_name, extent):
    """Predicted values and true values on one colour scale, with a colour bar; the default title."""
    from matplotlib.colors import Normalize

    z = z.astype(np.float64)
    values = [z]
    if y is not None and len(y):
        values.append(np.asarray(y, dtype=np.float64).ravel())
    vmin = min(float(np.min(v)) for v in values)
    vmax = max(float(np.max(v)) for v in values)
    if vmax <= vmin:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    norm = Normalize(vmin=vmin, vmax=vmax)
    im = ax.imshow(z, extent=extent, origin="lower", cmap="viridis", norm=norm, alpha=0.85,
                   aspect="auto", interpolation="bilinear")
    if y is not None:
        ax.scatter(X[:, 0], X[:, 1], c=np.asarray(y, dtype=np.float64).ravel(), cmap="viridis", norm=norm,
                   edgecolors="w", linewidths=0.7, s=26, zorder=3)
    else:
        ax.scatter(X[:, 0], X[:, 1], c="k", s=10, zorder=3)
    fig.colorbar(im, ax=ax, label=target_name or "target")
    return "Prediction (background) and true values (dots)"


def plot_augmentations(image, rows, path, title="One digit and eight of its distortions"):
    """A grid: per row, the image and eight of its distortions by one transform.

    Parameters
    ----------
    image : ndarray of shape (H*W,)
        One flattened image.
    rows : list of (str, ndarray of shape (8, H*W))
        A label (e.g. "elastic") and the distorted copies, per row.
    path : str or path-like
        The PNG written.
    title : str
    """
    plt = _pyplot()
    if not rows:
        raise InputError("plot_augmentations needs at least one row of distortions")
    side = math.isqrt(image.size)
    shape = (side, side) if side * side == image.size else (1, image.size)
    n_cols = 1 + max(len(d) for _, d in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(1.1 * n_cols, 1.25 * len(rows)), squeeze=False)
    for r, (label, distorted) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.imshow(image.reshape(shape), cmap="gray_r", vmin=0, vmax=1)
                ax.set_ylabel(label)
                ax.set_title("original" if r == 0 else "", fontsize=8)
            elif c - 1 < len(distorted):
                ax.imshow(distorted[c - 1].reshape(shape), cmap="gray_r", vmin=0, vmax=1)
            else:
                ax.axis("off")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    plt.close(fig)
