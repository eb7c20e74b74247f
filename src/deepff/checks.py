"""Validation of numeric hyperparameters: the one home of range checks ("a positive number",
"an integer >= 1"), shared by optimizers, schedules, layers, the config parser and the command line.

Each check returns the value converted (float, bool or int) or raises
:class:`~deepff.errors.SpecError` naming the owner, the parameter and the
valid range.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .errors import SpecError
from .validation import is_plain_number

__all__ = ["real", "flag", "count", "positive"]


def _name(owner, param):
    """``owner param`` for a message; ``param`` alone when there is no owner."""
    return f"{owner} {param}".strip()


def real(owner, param, value, low=None, high=None, low_open=False, high_open=False):
    """Return ``value`` as a float after checking it lies in a range.

    Parameters
    ----------
    owner : str
        Name of the optimizer, for the message.
    param : str
        Name of the hyperparameter, for the message.
    value : object
    low, high : float or None
        Bounds (None: unbounded).
    low_open, high_open : bool
        Whether the bound itself is excluded.

    Returns
    -------
    float

    Raises
    ------
    SpecError
        If ``value`` is not a finite real number in range.
    """
    lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
    hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
    if low is not None and high is not None:
        valid = f"in {lo}, {hi}"
    elif low is not None:
        valid = f"{'>' if low_open else '>='} {low:g}"
    else:
        valid = "a finite number"
    if isinstance(value, str):
        raise SpecError(f"{_name(owner, param)} must be {valid}, got the text {value!r}"
                        + ("; leave out the quotes" if _is_number_text(value) else ""))
    bad = isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
    if not bad:
        v = float(value)
        bad = (
            (low is not None and (v <= low if low_open else v < low))
            or (high is not None and (v >= high if high_open else v > high))
        )
    if bad:
        raise SpecError(f"{_name(owner, param)} must be {valid}, got {value!r}")
    return float(value)


def _is_number_text(text):
    return is_plain_number(text.strip(), lenient=True) and math.isfinite(float(text))


def flag(owner, param, value):
    """Return ``value`` if it is a bool, else raise :class:`SpecError`.

    Parameters
    ----------
    owner, param : str
        Names for the message.
    value : object

    Returns
    -------
    bool
    """
    if not isinstance(value, (bool, np.bool_)):
        raise SpecError(f"{_name(owner, param)} must be true or false, got {value!r}")
    return bool(value)


def count(owner, param, value, low):
    """Return ``value`` as an int after checking ``value >= low``.

    Parameters
    ----------
    owner, param : str
        Names for the message.
    value : object
    low : int

    Returns
    -------
    int
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise SpecError(f"{_name(owner, param)} must be an integer >= {low}, got {value!r}")
    return int(value)


def positive(owner, param, value, integer=False, error=SpecError):
    """Return ``value`` after checking it is a finite number > 0 (or, with ``integer``, an integer >= 1).

    The one check of "a positive number" and "a positive integer": layers,
    the network, metrics, the data download and the command's flags call it.

    Parameters
    ----------
    owner, param : str
        Names for the message (``owner`` may be empty).
    value : object
    integer : bool, default False
        Ask for an integer (not a bool) and return an int; else return a float.
    error : type, default SpecError
        The ValueError subclass of :mod:`deepff.errors` to raise.

    Returns
    -------
    float or int
    """
    try:
        return count(owner, param, value, 1) if integer else real(owner, param, value, low=0, low_open=True)
    except SpecError as exc:
        worded = "must be an integer >= 1" if integer else "must be > 0"
        good = "must be a positive integer" if integer else "must be a positive number"
        raise error(str(exc).strip().replace(worded, good, 1)) from None
