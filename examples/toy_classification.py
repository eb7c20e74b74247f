"""The classic toy classification experiment: 10 samples, 5 features, 2 classes.

A network is built from the classic list-of-dicts spec and trained with the
classic API, one full batch at a time:

    net.forward(X)     # a^l and h^l of every layer
    net.loss(y)        # J, the mean negative log-likelihood
    net.backward(y)    # g^l, dW^l, db^l, then one SGD step

The script runs the 100 steps for three learning rates and plots J against
the step number (``toy_classification.png``).

Usage::

    python examples/toy_classification.py [--steps 100] [--outdir DIR] [--quick]

``--quick`` (or the environment variable ``DEEPFF_EXAMPLES_QUICK=1``) runs 20
steps; the test suite uses it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

import deepff

SPEC = [
    {"layer_type": "input", "n_features": 5, "batch_size": 10},
    {"layer_type": "fullyconn", "n_neurons": 5, "activation": "relu"},
    {"layer_type": "output", "n_neurons": 2, "activation": "softmax",
     "loss_type": "neg_log_likelihood"},
]


def toy_data(seed=0):
    """Return X of shape (10, 5) and one-hot y of shape (10, 2): class 1 when x_0 > 0."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(10, 5))
    y = np.eye(2)[(X[:, 0] > 0).astype(int)]
    return X, y


def train(X, y, learning_rate, steps, seed=0):
    """Run ``steps`` forward/loss/backward steps; return the losses and the net."""
    net = deepff.Net(layers=SPEC, learning_rate=learning_rate, seed=seed)
    losses = []
    for _ in range(steps):
        net.forward(X)
        losses.append(net.loss(y))
        net.backward(y)
    return np.array(losses), net


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--outdir", default=".", help="folder for toy_classification.png")
    parser.add_argument("--quick", action="store_true", help="20 steps (for tests)")
    args = parser.parse_args(argv)
    Path(args.outdir).mkdir(parents=True, exist_ok=True)
    quick = args.quick or os.environ.get("DEEPFF_EXAMPLES_QUICK") == "1"
    steps = 20 if quick else args.steps

    X, y = toy_data()
    curves = {}
    for lr in (0.01, 0.1, 0.5):
        losses, net = train(X, y, lr, steps)
        accuracy = float((net.predict(X) == y.argmax(axis=1)).mean())
        curves[lr] = losses
        print(f"lr={lr:<5g} loss: step 1 {losses[0]:.4f} -> step {steps} {losses[-1]:.4f}  "
              f"training accuracy {accuracy:.0%}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for lr, losses in curves.items():
        ax.plot(np.arange(1, steps + 1), losses, label=f"learning rate {lr:g}")
    ax.set_xlabel("step (one forward / loss / backward on all 10 samples)")
    ax.set_ylabel("negative log-likelihood J")
    ax.set_title("Toy classification: 10 samples x 5 features, 5-5-2 network")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(args.outdir) / "toy_classification.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
