"""One learner's run: data, network and trainer, kept on the server between requests.

A :class:`Session` holds a :class:`deepff.Network` built from a classic spec
(:func:`deepff.playground.config.spec_of`) and trains it with
:meth:`deepff.Network.fit`: the first request starts a fit, later ones
continue it with ``warm_start=True``, one whole epoch at a time. That is
exactly one longer ``fit`` (same shuffles, same optimizer state), which is
why the Python code the page shows, with the number of epochs taken,
retrains to the same test loss.

A :class:`SessionStore` gives every browser tab its own session and drops
sessions left idle.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
import warnings

import numpy as np

from ..training import Callback
from .config import (
    LIMITS,
    ConfigError,
    check_config,
    pair_problem,
    pair_problems,
    regularization_of,
    resolved_pair,
    spec_of,
)
from .datasets import EXTENT, features, make_data, split_table

__all__ = ["Session", "SessionStore"]


def _u8(values, lo, hi):
    """Map values in [lo, hi] to 0..255 and encode them as base64 text (compact JSON for pictures)."""
    span = (hi - lo) or 1.0
    q = np.clip(np.rint((np.asarray(values, dtype=np.float64) - lo) * (255.0 / span)), 0, 255)
    return base64.b64encode(q.astype(np.uint8).tobytes()).decode("ascii")


def _columns_u8(H):
    """Each column of H scaled from [-m, m] (m its largest magnitude) to 0..255, as base64 texts (list)."""
    m = np.abs(H).max(axis=0)
    m[m == 0] = 1.0
    q = np.clip(np.rint((H / m + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return [base64.b64encode(np.ascontiguousarray(col).tobytes()).decode("ascii") for col in q.T]


class _GradNorms(Callback):
    """Records ||dW^l||_2 of every layer after each optimizer step."""

    def __init__(self):
        self.steps = []

    def on_batch_end(self, trainer, step, batch_size, loss):
        self.steps.append((step, [float(np.linalg.norm(layer.dW)) for layer in trainer.network.layers]))


class Session:
    """The state of one playground tab.

    Parameters
    ----------
    sid : str
        The session's id (a random token the page keeps).

    Attributes
    ----------
    config : dict
        The checked config of the current network.
    net : deepff.Network
        float64, built from the config's spec.
    data : PlaygroundData
    epochs : int
        Epochs trained since the last build.
    table : CSVData or None
        The uploaded table, if any, with ``upload_name``.
    """

    def __init__(self, sid):
        self.sid = sid
        self.lock = threading.Lock()
        self.last_used = time.monotonic()
        self.table = None
        self.upload_name = None
        self.net = self.data = self.config = None
        self.epochs = 0
        self.last = None

    # ---------------------------------------------------------------- build
    def _make_data(self, cfg):
        if cfg["dataset"] == "upload":
            task = None if cfg["task"] == "auto" else cfg["task"]
            return split_table(self.table, cfg["train_fraction"], cfg["data_seed"], cfg["features"], task)
        return make_data(cfg["dataset"], cfg["n_samples"], cfg["noise"], cfg["train_fraction"], cfg["data_seed"],
                         cfg["features"])

    def build(self, raw):
        """(Re)build data and network from a config; training starts over.

        Parameters
        ----------
        raw : dict
            A config (see :func:`deepff.playground.config.check_config`).

        Returns
        -------
        dict
            The config as checked, the points, the valid output pairs, the
            math panel's shapes and the first picture.
        """
        from ..model import Network

        cfg = check_config(raw, uploaded=self.table is not None)
        data = self._make_data(cfg)
        act, loss = resolved_pair(cfg, data.task, data.n_classes)
        problem = pair_problem(data.task, data.n_classes, act, loss, data.y_train[:16])
        if problem:
            raise ConfigError(f"output activation {act!r} with loss {loss!r}: {problem}")
        spec = spec_of(cfg, data.X_train.shape[1], data.task, data.n_classes)
        net = Network.from_spec(spec, dtype="float64", seed=cfg["seed"])
        self.config, self.data, self.net, self.spec = cfg, data, net, spec
        self.epochs, self.norms = 0, _GradNorms()
        pts = np.vstack([data.points_train, data.points_test])
        if cfg["dataset"] == "upload":        # the picture spans the uploaded points, with a margin
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            pad = 0.1 * np.maximum(hi - lo, 1e-9)
            self.extent = [float(v) for v in (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])]
        else:
            self.extent = [-EXTENT, EXTENT, -EXTENT, EXTENT]
        y_all = np.concatenate([data.y_train, data.y_test])
        self.y_range = [0.0, 1.0] if data.task == "classification" else [float(y_all.min()), float(y_all.max())]
        self._record()
        return {"config": cfg, "task": data.task, "n_classes": data.n_classes, "classes": data.classes,
                "output_activation": act, "loss": loss, "spec": spec, "extent": self.extent,
                "y_range": self.y_range,
                "points": {"train": data.points_train.round(4).tolist(), "test": data.points_test.round(4).tolist(),
                           "y_train": data.y_train.tolist(), "y_test": data.y_test.tolist()},
                "pairs": pair_problems(data.task, data.n_classes, data.y_train[:16]),
                "shapes": self.shapes(), **self.state()}

    def _require(self):
        if self.net is None:
            raise ConfigError("this session has no network yet: build one first (POST /api/build)")

    # ---------------------------------------------------------------- train
    def train(self, epochs=1, max_ms=None):
        """Train whole epochs until ``epochs`` are done or ``max_ms`` milliseconds have passed.

        Parameters
        ----------
        epochs : int
            At most ``LIMITS["max_epochs_per_request"]``.
        max_ms : float, optional
            At most (and by default) ``LIMITS["max_ms_per_request"]``; checked
            after each epoch, so at least one epoch runs.

        Returns
        -------
        dict
            See :meth:`state`.
        """
        self._require()
        limit = LIMITS["max_ms_per_request"] if max_ms is None else min(max_ms, LIMITS["max_ms_per_request"])
        cfg, d, net = self.config, self.data, self.net
        self.norms.steps = []
        t0 = time.perf_counter()
        for _ in range(epochs):
            if self.epochs == 0:
                net.fit(d.X_train, d.y_train, epochs=1, batch_size=cfg["batch_size"], optimizer=cfg["optimizer"],
                        lr=cfg["lr"], regularization=regularization_of(cfg), callbacks=[self.norms])
            else:
                net.fit(d.X_train, d.y_train, epochs=1, batch_size=cfg["batch_size"], warm_start=True)
            self.epochs += 1
            if (time.perf_counter() - t0) * 1000 >= limit:
                break
        self._record()
        return self.state()

    def _record(self):
        d, net = self.data, self.net
        tr, te = net.evaluate(d.X_train, d.y_train), net.evaluate(d.X_test, d.y_test)
        point = {"epoch": self.epochs, "step": getattr(getattr(net, "trainer_", None), "step", 0),
                 "train_loss": tr["loss"], "test_loss": te["loss"]}
        if "accuracy" in tr:
            point.update(train_accuracy=tr["accuracy"], test_accuracy=te["accuracy"])
        self.last = point

    def state(self):
        """Losses, curves, gradient norms and pictures after the last request (dict)."""
        norms = self.norms.steps
        stride = max(1, len(norms) // 100)
        return {"epoch": self.epochs, "last": self.last,
                "grad_norms": [{"step": s, "norms": n} for s, n in norms[::stride]],
                "pictures": self.pictures(), "weights": self.weights()}

    # -------------------------------------------------------------- pictures
    def grid_points(self):
        """The (x1, x2) points of the picture grid, row by row from the top (ndarray of shape (G*G, 2))."""
        g = LIMITS["grid"]
        x0, x1, y0, y1 = self.extent
        xs = np.linspace(x0, x1, g)
        ys = np.linspace(y1, y0, g)
        return np.column_stack([np.tile(xs, g), np.repeat(ys, g)])

    def pictures(self):
        """Every neuron's output over the input plane and the network's prediction, as 0..255 grids.

        Returns
        -------
        dict
            "inputs" and "neurons" (per layer, per unit: base64 bytes scaled
            from [-m, m], m the largest magnitude), and "output": for
            classification the predicted class and its probability, for
            regression the prediction scaled from ``y_range``.
        """
        net, d = self.net, self.data
        Xg = features(self.grid_points(), self.config["features"])
        h = net.forward(Xg, training=False)
        hidden = [_columns_u8(layer.h) for layer in net.layers[:-1]]
        inputs = _columns_u8(Xg)
        out = {"grid": LIMITS["grid"]}
        if d.task == "classification":
            P = np.column_stack([1 - h[:, 0], h[:, 0]]) if h.shape[1] == 1 else h
            out.update(kind="classes", label=_u8(P.argmax(axis=1), 0, 255), confidence=_u8(P.max(axis=1), 0, 1))
        else:
            out.update(kind="values", value=_u8(h[:, 0], *self.y_range))
        return {"inputs": inputs, "neurons": hidden, "output": out}

    def weights(self):
        """Each layer's W, rounded, for colouring the links (list of nested lists)."""
        return [layer.W.round(4).tolist() for layer in self.net.layers]

    # ------------------------------------------------------------------ math
    def shapes(self):
        """The shape of every W, b, a, h and g of the network, rows being the samples of one batch.

        Returns
        -------
        dict
            "batch" (n), "n_features", and per layer: the activation, the
            real shapes of W and b (or gamma and beta), and those of a, h and
            g for a batch of n rows; "fused" says whether g^L = (h^L - y) / n.
        """
        self._require()
        n = min(self.config["batch_size"], self.data.X_train.shape[0])
        layers = []
        for layer in self.net.layers:
            entry = {"units": layer.units, "activation": layer.activation.name, "W": list(layer.W.shape),
                     "a": [n, layer.units], "h": [n, layer.units], "g": [n, layer.units],
                     "dropout": layer.dropout, "batch_norm": layer.batch_norm}
            if layer.batch_norm:
                entry.update(gamma=list(layer.gamma.shape), beta=list(layer.beta.shape))
            else:
                entry["b"] = list(layer.b.shape)
            layers.append(entry)
        return {"batch": n, "n_features": self.net.n_features, "layers": layers, "loss": self.net.loss.name,
                "fused": bool(self.net.fused), "n_params": int(self.net.n_params())}

    def gradcheck(self):
        """Run :func:`deepff.gradcheck_report` on the current network and a few training rows.

        Returns
        -------
        dict
            "errors" per parameter array, "max", "samples", "warnings".
        """
        from ..gradcheck import gradcheck_report

        self._require()
        k = min(LIMITS["gradcheck_samples"], self.data.X_train.shape[0])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = gradcheck_report(self.net, self.data.X_train[:k], self.data.y_train[:k],
                                      penalty=regularization_of(self.config))
        return {"errors": report, "max": max(report.values()), "samples": k,
                "warnings": [str(w.message) for w in caught]}

    def predict_output(self, X):
        """h^L of the current network for rows X of features.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs)
            Rows of the network's input features.

        Returns
        -------
        list of lists
            h^L, one list per row.
        """
        self._require()
        return self.net.predict_output(X).tolist()


class SessionStore:
    """Sessions by id: one per browser tab, dropped after ``idle_seconds`` unused.

    Parameters
    ----------
    idle_seconds : float
    max_sessions : int
        When full, the least recently used session makes room.
    """

    def __init__(self, idle_seconds=1800.0, max_sessions=32):
        self.idle_seconds = float(idle_seconds)
        self.max_sessions = int(max_sessions)
        self._sessions = {}
        self._lock = threading.Lock()

    def _expire(self, now):
        for sid in [s for s, sess in self._sessions.items() if now - sess.last_used > self.idle_seconds]:
            del self._sessions[sid]

    def create(self):
        """Start a session; return it."""
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            while len(self._sessions) >= self.max_sessions:
                del self._sessions[min(self._sessions, key=lambda s: self._sessions[s].last_used)]
            sid = secrets.token_urlsafe(16)
            session = self._sessions[sid] = Session(sid)
            return session

    def get(self, sid):
        """The session ``sid``; a ConfigError (HTTP 404) when it does not exist or was dropped.

        Parameters
        ----------
        sid : str

        Returns
        -------
        Session
        """
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            session = self._sessions.get(sid) if isinstance(sid, str) else None
            if session is None:
                exc = ConfigError("unknown or expired session; reload the page to start a new one")
                exc.status = 404
                raise exc
            session.last_used = now
            return session

    def __len__(self):
        with self._lock:
            return len(self._sessions)
