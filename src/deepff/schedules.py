"""Learning-rate schedules.

A schedule sets the optimizer's learning rate before each optimizer step.
The training loop calls, for the step number ``step`` (0-based, counted
over the whole run) inside epoch ``epoch`` (0-based)::

    optimizer.lr = schedule.lr(base_lr, step, epoch)
    optimizer.step(theta, grad)

and, after every epoch, ``schedule.epoch_end(epoch, train_loss)`` (only
``plateau`` uses it). ``base_lr`` is the learning rate the user asked for.

============  ==================================================================
name          lr for step ``s`` in epoch ``e``
============  ==================================================================
constant      base
step          base * gamma ** (e // step_size)
exponential   base * gamma ** e
cosine        linear warm-up, then min_lr + (base - min_lr) (1 + cos(pi p)) / 2
invscaling    base / (t + 1) ** power_t,  t = s (or samples seen, see below)
plateau       base, divided by ``factor`` whenever the training loss stalls
============  ==================================================================

``adaptive`` (scikit-learn's name) is an alias of ``plateau``.
"""

from __future__ import annotations

import math

from .checks import count, real
from .errors import ModelFileError, SpecError
from .registry import Registry

__all__ = [
    "Schedule",
    "Constant",
    "StepDecay",
    "ExponentialDecay",
    "Cosine",
    "InvScaling",
    "Plateau",
    "get",
    "register",
    "names",
]


def _real(owner, param, value, low, low_open=False):
    """A finite float >= (>) ``low``; see :func:`deepff.checks.real`."""
    return real(f"{owner} schedule", param, value, low=low, low_open=low_open)


def _int(owner, param, value, low):
    """An int >= ``low``; see :func:`deepff.checks.count`."""
    return count(f"{owner} schedule", param, value, low)


class Schedule:
    """Base class: maps (base_lr, step, epoch) to a learning rate.

    Subclasses without internal state only implement :meth:`lr` and
    :meth:`get_config`.
    """

    name = "schedule"

    def lr(self, base_lr, step, epoch):
        """Return the learning rate for one optimizer step.

        Parameters
        ----------
        base_lr : float
            The learning rate the user asked for.
        step : int
            Number of optimizer steps taken so far over the whole run
            (0 for the first step).
        epoch : int
            Current epoch, 0-based.

        Returns
        -------
        float
        """
        raise NotImplementedError

    def bind(self, n_samples, batch_size):
        """Learn the run's sizes before its first step (the trainer calls it; a no-op by default).

        Parameters
        ----------
        n_samples : int
            Training samples per epoch.
        batch_size : int
            Samples per step (the last step of an epoch may have fewer).
        """

    def epoch_end(self, epoch, train_loss):
        """Observe the end of an epoch (no-op except for ``plateau``).

        Parameters
        ----------
        epoch : int
            The epoch that just ended, 0-based.
        train_loss : float
            Its mean training loss (or the record entry named by ``monitor``).

        Returns
        -------
        None
        """

    def get_config(self):
        """Return the constructor arguments.

        Returns
        -------
        dict
            ``type(self)(**config)`` builds an equivalent schedule.
        """
        return {}

    #: values of internal state that states saved by older versions lack
    _STATE_DEFAULTS: dict = {}

    def _state(self):
        """Internal state as a dict of python scalars (none by default)."""
        return {}

    def _set_state(self, state):
        """Restore what :meth:`_state` returned."""

    def state_dict(self):
        """Return the name, the configuration and any internal state.

        Returns
        -------
        dict
            Flat dict with str keys and python scalar (or None) values.
        """
        return {"name": self.name, **self.get_config(), **self._state()}

    def load_state_dict(self, state):
        """Restore a dict made by :meth:`state_dict`.

        Parameters
        ----------
        state : dict

        Returns
        -------
        None

        Raises
        ------
        ModelFileError
            If the dict belongs to another schedule or lacks keys.
        """
        if state.get("name") != self.name:
            raise ModelFileError(f"schedule state is for {state.get('name')!r}, not {self.name!r}")
        try:
            config = {k: state[k] for k in self.get_config()}
            inner = {k: state[k] if k in state else self._STATE_DEFAULTS[k] for k in self._state()}
        except KeyError as exc:
            raise ModelFileError(f"{self.name} schedule state lacks key {exc.args[0]!r}") from None
        type(self).__init__(self, **config)
        self._set_state(inner)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """lr = base_lr at every step."""

    name = "constant"

    def lr(self, base_lr, step, epoch):
        """See :meth:`Schedule.lr`."""
        return float(base_lr)


class StepDecay(Schedule):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    lr = base_lr * gamma ** (epoch // step_size), as PyTorch's ``StepLR``
    stepped once per epoch.

    Parameters
    ----------
    step_size : int, default 10
        Epochs between decays, >= 1.
    gamma : float, default 0.1
        Multiplicative factor, > 0.
    """

    name = "step"

    def __init__(self, step_size=10, gamma=0.1):
        self.step_size = _int(self.name, "step_size", step_size, 1)
        self.gamma = _real(self.name, "gamma", gamma, 0.0, low_open=True)

    def lr(self, base_lr, step, epoch):
        """See :meth:`Schedule.lr`."""
        return float(base_lr) * self.gamma ** (epoch // self.step_size)

    def get_config(self):
        """Return ``{"step_size": ..., "gamma": ...}``."""
        return {"step_size": self.step_size, "gamma": self.gamma}


class ExponentialDecay(Schedule):
    """Multiply the learning rate by ``gamma`` every epoch.

    lr = base_lr * gamma ** epoch, as PyTorch's ``ExponentialLR`` stepped
    once per epoch.

    Parameters
    ----------
    gamma : float, default 0.95
        Multiplicative factor per epoch, > 0.
    """

    name = "exponential"

    def __init__(self, gamma=0.95):
        self.gamma = _real(self.name, "gamma", gamma, 0.0, low_open=True)

    def lr(self, base_lr, step, epoch):
        """See :meth:`Schedule.lr`."""
        return float(base_lr) * self.gamma**epoch

    def get_config(self):
        """Return ``{"gamma": ...}``."""
        return {"gamma": self.gamma}


class Cosine(Schedule):
    """Linear warm-up followed by cosine annealing, per optimizer step.

    With W = ``warmup_steps``, T = ``total_steps``, b = ``base_lr``,
    lr0 = ``warmup_start`` and step s (0-based)::

        s < W:        lr = lr0 + (b - lr0) * s / W
        W <= s < T:   p  = (s - W) / (T - W)
                      lr = min_lr + (b - min_lr) * (1 + cos(pi * p)) / 2
        s >= T:       lr = min_lr

    So the first step after warm-up uses b exactly and the curve reaches
    min_lr at step T. With the default ``warmup_start=0`` the very first
    step (s = 0) of a warm-up has lr = 0. Without warm-up (W = 0) this is
    PyTorch's ``CosineAnnealingLR(T_max=T, eta_min=min_lr)`` stepped per
    batch, held at min_lr after T.

    Parameters
    ----------
    total_steps : int or None, default None
        T, the step at which min_lr is reached, >= 1. It usually equals
        epochs * batches per epoch; if None, the training loop must set
        the attribute ``total_steps`` before the first call to :meth:`lr`.
    warmup_steps : int, default 0
        W, length of the linear warm-up, 0 <= W <= T.
    min_lr : float, default 0.0
        Final learning rate, >= 0.
    warmup_start : float, default 0.0
        Learning rate at step 0 of the warm-up, >= 0.
    """

    name = "cosine"

    def __init__(self, total_steps=None, warmup_steps=0, min_lr=0.0, warmup_start=0.0):
        self.total_steps = None if total_steps is None else _int(self.name, "total_steps", total_steps, 1)
        self.warmup_steps = _int(self.name, "warmup_steps", warmup_steps, 0)
        if self.total_steps is not None and self.warmup_steps > self.total_steps:
            raise SpecError(
                f"cosine schedule warmup_steps must be <= total_steps ({self.total_steps}), "
                f"got {warmup_steps!r}"
            )
        self.min_lr = _real(self.name, "min_lr", min_lr, 0.0)
        self.warmup_start = _real(self.name, "warmup_start", warmup_start, 0.0)

    def lr(self, base_lr, step, epoch):
        """See :meth:`Schedule.lr`."""
        total, warm = self.total_steps, self.warmup_steps
        if total is None:
            raise SpecError("cosine schedule needs total_steps (an integer >= 1)")
        base = float(base_lr)
        if step < warm:
            return self.warmup_start + (base - self.warmup_start) * step / warm
        if step >= total:
            return self.min_lr
        p = (step - warm) / (total - warm)
        return self.min_lr + (base - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * p))

    def get_config(self):
        """Return the constructor arguments."""
        return {
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "min_lr": self.min_lr,
            "warmup_start": self.warmup_start,
        }


class InvScaling(Schedule):
    """Inverse scaling, lr = base_lr / (t + 1) ** power_t.

    What t counts is chosen by ``per``:

    ``"step"`` (default)
        t = step, the number of optimizer steps already taken; the rate
        falls at every step.
    ``"sample"``
        t = step * batch_size, the samples seen before this step when all
        batches are full (exact when ``batch_size`` divides the training
        set size; otherwise the short last batch of each epoch is counted
        as full).
    ``"epoch"``
        t = the samples seen before this epoch (epoch * n_samples when
        every epoch has n_samples rows; counted in :attr:`seen` when the
        run's size is bound, so runs on data of another size, such as
        successive ``partial_fit`` calls, add up); the rate is constant
        within an epoch. This is exactly scikit-learn's
        ``learning_rate="invscaling"`` for ``MLPClassifier``/``MLPRegressor``
        with ``solver="sgd"``, which updates the rate only at the end of
        each epoch with t = samples seen so far (so the whole first epoch
        uses base_lr).

    Parameters
    ----------
    power_t : float, default 0.5
        Exponent, >= 0.
    per : {"step", "sample", "epoch"}, default "step"
        What t counts (see above).
    batch_size : int or None, default None
        Samples per step, used when ``per="sample"``; None: the training
        run's (the trainer supplies it through :meth:`bind`).
    n_samples : int or None, default None
        Training set size, used when ``per="epoch"``; None: the training
        run's (after any validation split).
    """

    name = "invscaling"
    PER = ("step", "sample", "epoch")

    def __init__(self, power_t=0.5, per="step", batch_size=None, n_samples=None):
        self.power_t = _real(self.name, "power_t", power_t, 0.0)
        if per not in self.PER:
            raise SpecError(
                f"invscaling schedule per must be one of {', '.join(map(repr, self.PER))}, got {per!r}"
            )
        self.per = per
        self.batch_size = None if batch_size is None else _int(self.name, "batch_size", batch_size, 1)
        self.n_samples = None if n_samples is None else _int(self.name, "n_samples", n_samples, 1)
        self._run = (None, None)      # (n_samples, batch_size) of the run, from bind()
        self.seen = None              # per="epoch": samples of the epochs ended (None: epoch * n_samples)

    def bind(self, n_samples, batch_size):
        """Take the run's sizes where none were given. See :meth:`Schedule.bind`."""
        self._run = (int(n_samples), int(batch_size))

    def lr(self, base_lr, step, epoch):
        """See :meth:`Schedule.lr`."""
        if self.per == "step":
            t = step
        elif self.per == "sample":
            t = step * self._size("batch_size", self.batch_size, self._run[1])
        elif self.n_samples is None and self.seen is not None:
            t = self.seen
        else:
            t = epoch * self._size("n_samples", self.n_samples, self._run[0])
        return float(base_lr) / (t + 1) ** self.power_t

    def epoch_end(self, epoch, train_loss):
        """per="epoch" with the run's size: count the epoch's samples. See :meth:`Schedule.epoch_end`."""
        if self.per == "epoch" and self.n_samples is None and self._run[0] is not None:
            n = self._run[0]
            self.seen = (epoch * n if self.seen is None else self.seen) + n

    _STATE_DEFAULTS = {"seen": None}

    def _state(self):
        return {"seen": self.seen}

    def _set_state(self, state):
        self.seen = None if state.get("seen") is None else int(state["seen"])

    def _size(self, name, given, bound):
        if given is not None:
            return given
        if bound is None:
            raise SpecError(f"invscaling schedule per={self.per!r} needs {name}: give it, or let Trainer.fit "
                            "supply the run's")
        return bound

    def get_config(self):
        """Return the constructor arguments."""
        return {
            "power_t": self.power_t,
            "per": self.per,
            "batch_size": self.batch_size,
            "n_samples": self.n_samples,
        }


class Plateau(Schedule):
    """Divide the learning rate when the training loss stops improving.

    scikit-learn's ``learning_rate="adaptive"``. After every epoch with
    monitored value L (the training loss by default; ``best`` starts
    undefined, ``bad`` at 0)::

        if best is undefined or L <= best - tol:  bad = 0       (improved)
        else:                                     bad = bad + 1  (also when L is NaN)
        if L < best (or best undefined):          best = L
        if bad >= n_iter_no_change:
            bad = 0
            if lr > min_lr: lr = max(lr / factor, min_lr)
            else:           exhausted = True

    where lr = base_lr * scale and ``scale`` (initially 1) holds the
    reductions. So with the default ``n_iter_no_change=2`` the rate is
    divided by 5 each time two consecutive epochs fail to lower the best
    loss by at least ``tol`` -- the behaviour scikit-learn documents. With
    ``mode="max"`` "lower" reads "higher" (L >= best + tol improves).

    Parameters
    ----------
    factor : float, default 5.0
        Divisor applied at each reduction, > 1.
    tol : float, default 1e-4
        Minimum decrease of the loss that counts as an improvement, >= 0.
    n_iter_no_change : int, default 2
        Consecutive non-improving epochs that trigger a reduction, >= 1.
    min_lr : float, default 1e-6
        Floor: once the rate is there further stalls only set
        :attr:`exhausted`.
    monitor : str, default "loss"
        The entry of the trainer's epoch record to watch (e.g. "val_loss",
        or a metric of :attr:`deepff.training.Trainer.metrics`).
    mode : {"min", "max"}, default "min"
        Whether the monitored value improves by falling or by rising.
    hold_min_lr : bool, default True
        Never divide below ``min_lr`` (False: divide whenever lr > min_lr,
        possibly landing below it, as scikit-learn does).

    Attributes
    ----------
    exhausted : bool
        True once a reduction was due while the rate was already at
        ``min_lr`` (scikit-learn stops training at this point; the
        training loop may do the same).

    Notes
    -----
    scikit-learn's code counts the same way but reduces when the count
    *exceeds* ``n_iter_no_change`` (default 10, i.e. after 11 bad epochs,
    not the two its documentation mentions), so ``MLPClassifier(
    learning_rate="adaptive", n_iter_no_change=k)`` corresponds to
    ``n_iter_no_change=k + 1, hold_min_lr=False`` here (and, with
    ``early_stopping=True``, to monitoring its validation score with
    ``mode="max"``), which is what ``deepff.sklearn`` uses.
    """

    name = "plateau"
    MODES = ("min", "max")
    # arguments a config names only when they differ from these defaults (older configs lack them)
    _OPTIONAL = {"monitor": "loss", "mode": "min", "hold_min_lr": True}

    def __init__(self, factor=5.0, tol=1e-4, n_iter_no_change=2, min_lr=1e-6, monitor="loss", mode="min",
                 hold_min_lr=True):
        self.factor = _real(self.name, "factor", factor, 1.0, low_open=True)
        self.tol = _real(self.name, "tol", tol, 0.0)
        self.n_iter_no_change = _int(self.name, "n_iter_no_change", n_iter_no_change, 1)
        self.min_lr = _real(self.name, "min_lr", min_lr, 0.0)
        if not isinstance(monitor, str) or not monitor:
            raise SpecError(f"plateau schedule monitor must be the name of an epoch record entry, got {monitor!r}")
        if mode not in self.MODES:
            raise SpecError(f"plateau schedule mode must be one of {', '.join(map(repr, self.MODES))}, "
                            f"got {mode!r}")
        if not isinstance(hold_min_lr, bool):
            raise SpecError(f"plateau schedule hold_min_lr must be true or false, got {hold_min_lr!r}")
        self.monitor, self.mode, self.hold_min_lr = monitor, mode, hold_min_lr
        self.scale = 1.0
        self.best_loss = None
        self.bad_epochs = 0
        self.exhausted = False
        self.n_reductions = 0
        self._last_base = None

    def lr(self, base_lr, step, epoch):
        """See :meth:`Schedule.lr`."""
        base = float(base_lr)
        self._last_base = base
        lr = base * self.scale
        if self.n_reductions and self.hold_min_lr:
            lr = max(lr, min(self.min_lr, base))
        return lr

    def epoch_end(self, epoch, train_loss):
        """Update the stall counter and reduce the rate if it is due.

        Parameters
        ----------
        epoch : int
            The epoch that just ended, 0-based (unused).
        train_loss : float
            Its mean training loss (or the record entry named by ``monitor``).

        Returns
        -------
        None
        """
        loss = float(train_loss)
        if self.mode == "max":                       # the same rule on -L
            loss = -loss
        finite = not math.isnan(loss)
        if finite and (self.best_loss is None or loss <= self.best_loss - self.tol):
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        if finite and (self.best_loss is None or loss < self.best_loss):
            self.best_loss = loss
        if self.bad_epochs >= self.n_iter_no_change:
            self.bad_epochs = 0
            current = None if self._last_base is None else self._last_base * self.scale
            if current is not None and current <= self.min_lr:
                self.exhausted = True
            else:
                self.scale /= self.factor
                self.n_reductions += 1

    def get_config(self):
        """Return the constructor arguments."""
        return {
            "factor": self.factor,
            "tol": self.tol,
            "n_iter_no_change": self.n_iter_no_change,
            "min_lr": self.min_lr,
            **{k: getattr(self, k) for k, default in self._OPTIONAL.items() if getattr(self, k) != default},
        }

    def _state(self):
        return {
            "scale": self.scale,
            "best_loss": self.best_loss,
            "bad_epochs": self.bad_epochs,
            "exhausted": self.exhausted,
            "n_reductions": self.n_reductions,
            "last_base_lr": self._last_base,
        }

    def _set_state(self, state):
        self.scale = float(state["scale"])
        self.best_loss = None if state["best_loss"] is None else float(state["best_loss"])
        self.bad_epochs = int(state["bad_epochs"])
        self.exhausted = bool(state["exhausted"])
        self.n_reductions = int(state["n_reductions"])
        self._last_base = None if state["last_base_lr"] is None else float(state["last_base_lr"])


REGISTRY = Registry(
    "schedule",
    Schedule,
    aliases={"adaptive": "plateau", "reduce_on_plateau": "plateau", "cosine_annealing": "cosine"},
)
register = REGISTRY.register
"""Register a new schedule class under its ``name`` (:meth:`deepff.registry.Registry.register`)."""
names = REGISTRY.names
"""The registered schedule names, sorted (:meth:`deepff.registry.Registry.names`)."""

for _cls in (Constant, StepDecay, ExponentialDecay, Cosine, InvScaling, Plateau):
    register(_cls)


def get(identifier):
    """Return a :class:`Schedule` for a name, a config dict or an instance.

    Parameters
    ----------
    identifier : str, dict or Schedule
        ``"constant"``, ``{"name": "step", "step_size": 5}``, or an
        instance (returned unchanged).

    Returns
    -------
    Schedule

    Raises
    ------
    SpecError
        For an unknown name (the valid ones are listed) or bad parameters.
    """
    return REGISTRY.get(identifier)
