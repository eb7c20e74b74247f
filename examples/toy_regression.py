"""The classic toy regression experiment: 10 samples, 5 features, 1 real target.

The same loop as ``toy_classification.py``, with a linear output unit and the
mean squared error, so that the output delta is g^L = 2 (h^L - y) / n:

    net.forward(X); net.loss(y); net.backward(y)

The script trains a 5-8-1 tanh network for 100 steps and plots the training
loss next to the fit of the 10 targets (``toy_regression.png``).

Usage::

    python examples/toy_regression.py [--steps 100] [--outdir DIR] [--quick]

``--quick`` (or ``DEEPFF_EXAMPLES_QUICK=1``) runs 20 steps.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

import deepff

SPEC = [
    {"layer_type": "input", "n_features": 5, "batch_size": 10},
    {"layer_type": "fullyconn", "n_neurons": 8, "activation": "tanh"},
    {"layer_type": "output", "n_neurons": 1, "activation": "linear", "loss_type": "mse"},
]


def toy_data(seed=0):
    """Return X of shape (10, 5) and y of shape (10, 1), a noisy linear function of X."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(10, 5))
    w_true = np.array([[1.0], [-2.0], [0.5], [0.0], [1.5]])
    y = X @ w_true + 0.1 * rng.normal(size=(10, 1))
    return X, y


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--outdir", default=".", help="folder for toy_regression.png")
    parser.add_argument("--quick", action="store_true", help="20 steps (for tests)")
    args = parser.parse_args(argv)
    Path(args.outdir).mkdir(parents=True, exist_ok=True)
    quick = args.quick or os.environ.get("DEEPFF_EXAMPLES_QUICK") == "1"
    steps = 20 if quick else args.steps

    X, y = toy_data()
    net = deepff.Net(layers=SPEC, learning_rate=args.lr, seed=0)
    losses = []
    for _ in range(steps):
        net.forward(X)
        losses.append(net.loss(y))
        net.backward(y)
    pred = net.predict(X)
    print(f"mse: step 1 {losses[0]:.4f} -> step {steps} {losses[-1]:.4f}; "
          f"variance of y {float(y.var()):.4f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    ax1.plot(np.arange(1, steps + 1), losses, color="C0")
    ax1.set_yscale("log")
    ax1.set_xlabel("step")
    ax1.set_ylabel("mean squared error J (log scale)")
    ax1.set_title("Training loss")
    ax1.grid(alpha=0.3, which="both")
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    ax2.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--", label="prediction = target")
    ax2.scatter(y[:, 0], pred, color="C1", zorder=3, label=f"after {steps} steps")
    ax2.set_xlabel("target y")
    ax2.set_ylabel("network output h")
    ax2.set_title("Fit of the 10 training targets")
    ax2.grid(alpha=0.3)
    ax2.legend()
    fig.suptitle("Toy regression: 10 samples x 5 features, 5-8-1 tanh network")
    fig.tight_layout()
    out = Path(args.outdir) / "toy_regression.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
