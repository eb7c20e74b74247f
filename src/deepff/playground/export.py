"""Take a playground run home: the model file, the Python code and the config that reproduce it.

The code and the config state the number of epochs the session trained, so
running them retrains the same network to the same test loss: a session
trains with :meth:`deepff.Network.fit` one epoch at a time with
``warm_start=True``, which is one ``fit`` of that many epochs.
"""

from __future__ import annotations

import json
import os
import tempfile

__all__ = ["model_bytes", "python_code", "config_yaml"]


def model_bytes(session):
    """The session's network as a deepff ``.npz`` file (bytes), written by :func:`deepff.save`.

    The header's metadata records the playground config and the epochs and
    steps taken.

    Parameters
    ----------
    session : Session
        A playground session with a built network.

    Returns
    -------
    bytes
    """
    from ..io import save

    session._require()
    trainer = getattr(session.net, "trainer_", None)
    meta = {"playground": session.config, "epochs": session.epochs,
            "steps": 0 if trainer is None else int(trainer.step)}
    with tempfile.TemporaryDirectory(prefix="deepff-playground-") as tmp:
        path = os.path.join(tmp, "playground.npz")
        save(session.net, path, classes=session.data.classes, metadata=meta)
        with open(path, "rb") as fh:
            return fh.read()


def _literal(value, indent):
    """Python source of a JSON-like value; a list of dicts one item a line."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        pad = " " * (indent + 4)
        body = "".join(f"{pad}{_literal(item, indent + 4)},\n" for item in value)
        return "[\n" + body + " " * indent + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_literal(v, indent)}" for k, v in value.items()) + "}"
    return json.dumps(value) if isinstance(value, list) else repr(value)


def _data_lines(session):
    cfg = session.config
    if cfg["dataset"] == "upload":
        task = session.data.task
        return ["from deepff.playground.datasets import load_table, split_table", "",
                f"# the table uploaded to the playground ({session.upload_name})",
                f"data = split_table(load_table({session.upload_name!r}), train_fraction={cfg['train_fraction']!r}, "
                f"seed={cfg['data_seed']!r},",
                f"                   features={cfg['features']!r}, task={task!r})"]
    return ["from deepff.playground.datasets import make_data", "",
            f"data = make_data({cfg['dataset']!r}, n_samples={cfg['n_samples']!r}, noise={cfg['noise']!r}, "
            f"train_fraction={cfg['train_fraction']!r},",
            f"                 seed={cfg['data_seed']!r}, features={cfg['features']!r})"]


def python_code(session):
    """Python source that rebuilds the session's data and network and retrains it (str).

    Uses the classic spec (:meth:`deepff.Network.from_spec`) and
    :meth:`deepff.Network.fit` with the number of epochs the session took.

    Parameters
    ----------
    session : Session
        A playground session with a built network.

    Returns
    -------
    str
    """
    session._require()
    cfg = session.config
    trainer = getattr(session.net, "trainer_", None)
    steps = 0 if trainer is None else int(trainer.step)
    reg = {k: cfg[k] for k in ("l1", "l2") if cfg[k]}
    lines = ["import deepff"] + _data_lines(session) + ["",
             f"spec = {_literal(session.spec, 0)}",
             f"net = deepff.Network.from_spec(spec, dtype='float64', seed={cfg['seed']!r})"]
    if session.epochs:
        lines += [f"# {session.epochs} epochs = {steps} steps of batch size {cfg['batch_size']}, as in the playground",
                  f"net.fit(data.X_train, data.y_train, epochs={session.epochs}, batch_size={cfg['batch_size']}, "
                  f"optimizer={cfg['optimizer']!r}, lr={cfg['lr']!r}" + (f",\n        regularization={reg!r})"
                                                                        if reg else ")")]
    else:
        lines += ["# not trained yet: press play or step in the playground, then copy this code again"]
    lines += ["print('test', net.evaluate(data.X_test, data.y_test))"]
    return "\n".join(lines) + "\n"


def config_yaml(session):
    """The deepff config (layers, training, dtype, seed) of the run, as YAML text (str).

    ``deepff.Network.from_config`` reads it; its training section is
    ``fit``'s keyword arguments. JSON is valid YAML, so without PyYAML the
    same content comes as JSON.

    Parameters
    ----------
    session : Session
        A playground session with a built network.

    Returns
    -------
    str
    """
    session._require()
    cfg = session.config
    training = {"epochs": max(session.epochs, 1), "batch_size": cfg["batch_size"],
                "optimizer": {"name": cfg["optimizer"], "lr": cfg["lr"]}}
    reg = {k: cfg[k] for k in ("l1", "l2") if cfg[k]}
    if reg:
        training["regularization"] = reg
    config = {"layers": session.spec, "training": training, "dtype": "float64", "seed": cfg["seed"]}
    head = (f"# deepff config of a playground run: {session.epochs} epochs on the {cfg['dataset']!r} data\n"
            "# (deepff.Network.from_config reads it; training holds fit's arguments)\n")
    try:
        import yaml
    except ImportError:
        return head + json.dumps(config, indent=2) + "\n"
    return head + yaml.safe_dump(config, sort_keys=False, default_flow_style=None)
