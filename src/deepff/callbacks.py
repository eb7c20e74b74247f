"""What the training loop reports and who listens: the per-epoch history, callbacks, early stopping.

:class:`~deepff.training.Trainer` fills a :class:`History` (one record per
epoch), calls every :class:`Callback` at the start and end of training, of
each epoch and after each step, and asks :class:`EarlyStopping` after each
epoch whether the monitored quantity still improves. They live here, apart
from the loop itself; :mod:`deepff.training` re-exports them.
"""

from __future__ import annotations

from .checks import count, flag, real
from .errors import InputError, SpecError, choices

__all__ = ["History", "Callback", "EarlyStopping", "MONITORS"]


class History:
    """Per-epoch records of a training run.

    Parameters
    ----------
    records : list of dict, optional
        Records to start from (a resumed run's history).

    Attributes
    ----------
    records : list of dict
        One dict per epoch with "epoch" (1-based), "loss" (mean training
        loss over the epoch's mini-batches, penalty included), "accuracy"
        (classification), "val_loss" / "val_accuracy" (with validation
        data), "lr" and "seconds" (wall time of the epoch).
    interrupted : bool
        True when training stopped early on Ctrl-C.
    stopped_early : bool
        True when early stopping ended the run.
    """

    def __init__(self, records=None):
        self.records = list(records or [])
        self.interrupted = False
        self.stopped_early = False

    def keys(self):
        """Return the names recorded, in the order they first appear ("epoch", "loss", ...).

        Returns
        -------
        list of str
        """
        names = {}
        for r in self.records:
            names.update(dict.fromkeys(r))
        return list(names)

    def __getitem__(self, key):
        """Return the list of values of ``key`` over the epochs (None where an epoch lacks it).

        Raises
        ------
        TypeError
            For a key that is not a name (``history.records[i]`` is epoch i's record).
        KeyError
            For a name no epoch recorded.
        """
        if not isinstance(key, str):
            raise TypeError(f"a History is indexed by name, e.g. history['loss'], not by {key!r}; "
                            "history.records[i] is the record of epoch i + 1")
        if self.records and key not in self.keys():
            raise KeyError(f"{key!r}: no epoch recorded it; recorded: {', '.join(map(repr, self.keys()))}")
        return [r.get(key) for r in self.records]

    def __iter__(self):
        """Iterate over the names recorded (as a dict iterates over its keys)."""
        return iter(self.keys())

    def __contains__(self, key):
        return key in self.keys()

    def __len__(self):
        return len(self.records)

    def __repr__(self):
        return f"History(epochs={len(self.records)})"


class Callback:
    """Hooks called by :class:`Trainer`; override the ones you need.

    Attributes
    ----------
    reads_gradients : bool or None
        Whether :meth:`on_batch_end` reads the step's gradients
        (``layer.dW``, ``network.params.grad``). None, the default, means
        "if it overrides on_batch_end". The compiled step may move plain
        SGD's weights inside the matrix products without writing their
        gradient; it writes them for every step while a callback reads
        them, and for the last step of each epoch always.
    between_steps : bool
        Whether :meth:`on_batch_end` must run right after its step, before
        the next one (True, the default: it sees the model as that step
        left it, and may stop the run there). False (a progress bar) lets
        the compiled step run up to a few thousand rows of steps in one call
        and then calls it once for each of them, in order, unless
        ``reads_gradients`` is True.
    """

    reads_gradients = None
    between_steps = True

    def on_train_begin(self, trainer):
        """Called once before the first epoch.

        Parameters
        ----------
        trainer : Trainer
            The trainer running the loop.
        """

    def on_epoch_begin(self, trainer, epoch):
        """Called before each epoch.

        Parameters
        ----------
        trainer : Trainer
        epoch : int
            The epoch about to run, 0-based.
        """

    def on_batch_end(self, trainer, step, batch_size, loss):
        """Called after each optimizer step.

        Parameters
        ----------
        trainer : Trainer
        step : int
            Optimizer steps taken so far (1 after the first).
        batch_size : int
            Samples in the batch just used (the last one of an epoch may be
            shorter).
        loss : float
            The batch's loss J (penalty included).
        """

    def on_epoch_end(self, trainer, record):
        """Called after each epoch with its history record.

        Parameters
        ----------
        trainer : Trainer
        record : dict
            The epoch's record (see :class:`History`).
        """

    def on_train_end(self, trainer):
        """Called once when training ends (also on Ctrl-C and early stop).

        Parameters
        ----------
        trainer : Trainer
        """


#: What early stopping can watch: the validation loss or accuracy, or the training loss.
MONITORS = ("val_loss", "val_accuracy", "loss")


class EarlyStopping:
    """Stop when a monitored quantity stops improving.

    Parameters
    ----------
    monitor : {"val_loss", "val_accuracy", "loss"}, default "val_loss"
    patience : int, default 5
        Epochs without an improvement larger than ``min_delta`` before
        stopping.
    min_delta : float, default 0.0
    restore_best : bool, default True
        Put back the weights of the best epoch when stopping (and at the
        end of training).
    """

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, restore_best=True):
        if isinstance(monitor, str) and monitor in MONITORS:
            self.monitor = monitor
        else:
            raise SpecError(f"early stopping monitor is {monitor!r}; valid choices: {choices(MONITORS)}")
        self.patience = count("early stopping", "patience", patience, 1)
        self.min_delta = real("early stopping", "min_delta", min_delta, low=0)
        self.restore_best = flag("early stopping", "restore_best", restore_best)
        self.reset()

    def reset(self):
        """Forget the best value, epoch and weights seen so far (a fresh run)."""
        self.best = None
        self.best_epoch = None
        self.wait = 0
        self.best_theta = None
        self.best_buffers = None

    def _better(self, value):
        if self.best is None:
            return True
        if self.monitor.endswith("accuracy"):
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def update(self, record, network):
        """Record an epoch; return True when training should stop.

        Parameters
        ----------
        record : dict
            The epoch's history record.
        network : FeedForward

        Returns
        -------
        bool
        """
        value = record.get(self.monitor)
        if value is None:
            raise InputError(f"early stopping monitors {self.monitor!r}, which this run does not "
                             "compute; give validation data or a validation_split, or monitor 'loss'")
        if self._better(value):
            self.best, self.best_epoch, self.wait = value, record["epoch"], 0
            if self.restore_best:
                self.best_theta = network.params.theta.copy()
                self.best_buffers = {k: v.copy() for k, v in network.buffers().items()}
            return False
        self.wait += 1
        return self.wait >= self.patience

    def restore(self, network):
        """Copy the best weights back into ``network`` (if kept).

        Parameters
        ----------
        network : FeedForward
            The network being trained; its weights and batch-norm buffers
            are overwritten in place.
        """
        if self.restore_best and self.best_theta is not None:
            network.params.theta[...] = self.best_theta
            for k, v in network.buffers().items():
                v[...] = self.best_buffers[k]

    def get_config(self):
        """Return the constructor arguments."""
        return {"monitor": self.monitor, "patience": self.patience,
                "min_delta": self.min_delta, "restore_best": self.restore_best}

    def state_dict(self):
        """Return the state needed to resume (scalars and arrays)."""
        state = {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}
        if self.best_theta is not None:
            state["best_theta"] = self.best_theta
            for k, v in self.best_buffers.items():
                state["best_buffer." + k] = v
        return state

    def load_state_dict(self, state):
        """Restore :meth:`state_dict`'s output.

        Parameters
        ----------
        state : dict
            As returned by :meth:`state_dict`.
        """
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], int(state["wait"])
        self.best_theta = state.get("best_theta")
        self.best_buffers = {k[len("best_buffer."):]: v for k, v in state.items()
                             if k.startswith("best_buffer.")}
