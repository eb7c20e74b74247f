"""A multilayer perceptron on MNIST with the Python API.

The same run as ``deepff train --dataset mnist``, written out: load the IDX
files, scale the pixels to [0, 1], build the network (from a config file
with ``--config``, else 784-256-128-10 ReLU), train with Adam and report the
test accuracy. Writes the learning curves to ``mnist_history.png`` and, with
``--output``, the trained model to an ``.npz`` file.

Usage::

    python examples/mnist_mlp.py [--data-dir DIR] [--config FILE.yaml]
                                 [--epochs N] [--outdir DIR] [--output model.npz] [--quick]

``--data-dir`` defaults to ``../shared/datasets/mnist`` next to the project
when that folder exists, else to deepff's cache folder (downloading the
files there if needed). ``--quick`` (or ``DEEPFF_EXAMPLES_QUICK=1``) trains
one epoch on 2,000 images and tests on 500 (for the test suite).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import deepff
from deepff.data import load_mnist
from deepff.plots import plot_history

SHARED_MNIST = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "mnist"

DEFAULT_TRAINING = {"epochs": 10, "batch_size": 128, "optimizer": {"name": "adam", "lr": 1e-3}}


def build(config, seed):
    """Return (network, training keyword arguments) from a config file or the default."""
    if config is not None:
        net, training = deepff.Network.from_config(config, seed=seed)
        return net, {**DEFAULT_TRAINING, **training}
    net = deepff.Network(
        [deepff.Dense(256, "relu"), deepff.Dense(128, "relu"), deepff.Dense(10, "softmax")],
        loss="neg_log_likelihood",
        n_features=784,
        seed=seed,
    )
    return net, dict(DEFAULT_TRAINING)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="folder with the four MNIST IDX files")
    parser.add_argument("--config", default=None, help="YAML/JSON/TOML config (layers + training)")
    parser.add_argument("--epochs", type=int, default=None, help="overrides the config's epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--outdir", default=".", help="folder for mnist_history.png")
    parser.add_argument("--output", default=None, help="save the trained model to this .npz")
    parser.add_argument("--quick", action="store_true", help="1 epoch on a 2000-image subset")
    args = parser.parse_args(argv)
    Path(args.outdir).mkdir(parents=True, exist_ok=True)
    quick = args.quick or os.environ.get("DEEPFF_EXAMPLES_QUICK") == "1"

    data_dir = args.data_dir
    if data_dir is None and SHARED_MNIST.is_dir():
        data_dir = SHARED_MNIST
    X_train, y_train, X_test, y_test = load_mnist(data_dir=data_dir)
    if quick:
        X_train, y_train, X_test, y_test = X_train[:2000], y_train[:2000], X_test[:500], y_test[:500]
    X_train = X_train.astype(np.float32) / np.float32(255)   # pixels 0..255 -> [0, 1]
    X_test = X_test.astype(np.float32) / np.float32(255)

    net, training = build(args.config, args.seed)
    if args.epochs is not None:
        training["epochs"] = args.epochs
    if quick:
        training["epochs"] = 1
    print(f"network {net.n_features}-{'-'.join(str(layer.units) for layer in net.layers)}, "
          f"{net.n_params()} parameters; training: {training}")

    t0 = time.perf_counter()
    history = net.fit(X_train, y_train, validation_data=(X_test, y_test), **training)
    seconds = time.perf_counter() - t0
    for record in history.records:
        print(f"epoch {record['epoch']:>2}: loss {record['loss']:.4f}  "
              f"val_accuracy {record['val_accuracy']:.4f}")
    accuracy = net.evaluate(X_test, y_test)["accuracy"]
    print(f"test accuracy: {accuracy:.2%} on {len(y_test)} images ({seconds:.1f}s of training)")

    out = Path(args.outdir) / "mnist_history.png"
    plot_history(history.records, out, title="MLP on MNIST")
    print(f"wrote {out}")
    if args.output:
        deepff.save(net, args.output, classes=list(range(10)), training=training)
        print(f"model saved to {args.output}")


if __name__ == "__main__":
    main()
