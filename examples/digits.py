"""A 64-128-64-10 network on scikit-learn's 8x8 digits with ``Network.fit``.

Loads the bundled digits (1797 images, 64 pixel features), holds out 20% for
testing, standardises the pixels with statistics of the training part, trains
with Adam on mini-batches of 32 and reports the test accuracy. Writes the
learning curves (``digits_history.png``) and the test confusion matrix
(``digits_confusion.png``).

Usage::

    python examples/digits.py [--epochs 30] [--outdir DIR] [--quick]

``--quick`` (or ``DEEPFF_EXAMPLES_QUICK=1``) trains for 2 epochs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import deepff
from deepff.data import Standardizer, load_dataset
from deepff.metrics import confusion_matrix
from deepff.plots import plot_confusion_matrix, plot_history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--outdir", default=".", help="folder for the two PNG files")
    parser.add_argument("--quick", action="store_true", help="2 epochs (for tests)")
    args = parser.parse_args(argv)
    Path(args.outdir).mkdir(parents=True, exist_ok=True)
    quick = args.quick or os.environ.get("DEEPFF_EXAMPLES_QUICK") == "1"
    epochs = 2 if quick else args.epochs

    data = load_dataset("digits", test_fraction=0.2, seed=0)
    scaler = Standardizer().fit(data.X_train)
    X_train = scaler.transform(data.X_train, dtype="float32")
    X_test = scaler.transform(data.X_test, dtype="float32")

    net = deepff.Network(
        [deepff.Dense(128, "relu"), deepff.Dense(64, "relu"), deepff.Dense(10, "softmax")],
        loss="neg_log_likelihood",
        seed=0,
    )
    history = net.fit(X_train, data.y_train, epochs=epochs, batch_size=32, optimizer="adam",
                      lr=1e-3, validation_data=(X_test, data.y_test))
    print(net.summary(batch_size=32))
    for record in history.records[-3:]:
        print(f"epoch {record['epoch']:>2}: loss {record['loss']:.4f}  "
              f"val_loss {record['val_loss']:.4f}  val_accuracy {record['val_accuracy']:.4f}")
    result = net.evaluate(X_test, data.y_test)
    print(f"test accuracy: {result['accuracy']:.2%} on {len(data.y_test)} held-out digits")

    outdir = Path(args.outdir)
    plot_history(history.records, outdir / "digits_history.png",
                 title="64-128-64-10 ReLU network on the 8x8 digits (Adam, batch 32)")
    cm = confusion_matrix(data.y_test, net.predict(X_test), 10)
    plot_confusion_matrix(cm, list(range(10)), outdir / "digits_confusion.png",
                          title="Confusion matrix on the 359 test digits")
    print(f"wrote {outdir / 'digits_history.png'} and {outdir / 'digits_confusion.png'}")


if __name__ == "__main__":
    main()
