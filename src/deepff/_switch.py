"""``DEEPFF_NUMBA``: whether deepff's compiled kernels (:mod:`deepff._kernels`) may run in this process.

Kept apart from the kernels themselves: nothing here is compiled, and an edit
here does not touch the source that the kernels built ahead of time are
named after (:func:`deepff._aot.step_module_name`). :mod:`deepff._kernels`
offers the same names.
"""

from __future__ import annotations

import os

from . import _twins

__all__ = ["enabled", "setting", "SETTINGS", "refresh"]

_READ = {}     # "enabled", "setting": what was read at the first use (refresh() forgets it)


def enabled():
    """Whether fused kernels may be used (numba importable, not disabled, not inside numpy_only).

    ``DEEPFF_NUMBA`` is read once, at the first use (a training step asks
    several times, and reading the environment costs as much as a small
    kernel); call :func:`refresh` after changing it in a running process.
    An absent numba means off; a numba that is installed but fails to
    import (a broken build, one made for another numpy) also means off, with
    a ``RuntimeWarning`` naming the error. Inside
    :func:`deepff._twins.numpy_only` (prediction, and a fit too short to pay
    for loading numba: :func:`deepff._fused_step.kernels_for`) it is False.

    Returns
    -------
    bool
    """
    if _twins.numpy_only_now():
        return False
    flag = _READ.get("enabled")
    if flag is None:
        flag = False
        if setting() != "0":
            try:
                import numba  # noqa: F401

                flag = True
            except Exception as exc:  # noqa: BLE001 - absent (quietly off), or installed but broken (say so)
                if not (isinstance(exc, ModuleNotFoundError) and exc.name == "numba"):
                    import warnings

                    warnings.warn(f"numba is installed but cannot be imported ({type(exc).__name__}: {exc}); "
                                  "deepff's compiled kernels are off and the numpy code runs (DEEPFF_NUMBA=0 "
                                  "silences this)", RuntimeWarning, stacklevel=2)
        _READ["enabled"] = flag
    return flag


SETTINGS = {"0": "off: the numpy code only",
            "1": "on for runs long enough to win back numba's load, for every run the step built ahead of time "
                 "computes (the default)",
            "always": "on for every run, however short (many short fits in one process)"}
"""The values of ``DEEPFF_NUMBA`` and what they do."""


def setting():
    """``DEEPFF_NUMBA`` as read at its first use: one of :data:`SETTINGS` ("1" when unset).

    Any other value counts as "1", with a ``RuntimeWarning`` naming the
    valid ones. It does not import numba.

    Returns
    -------
    str
    """
    value = _READ.get("setting")
    if value is None:
        value = os.environ.get("DEEPFF_NUMBA", "1").strip()
        if value not in SETTINGS:
            import warnings

            warnings.warn(f"DEEPFF_NUMBA={value!r} is not a setting deepff knows; valid: "
                          + "; ".join(f"{k} ({v})" for k, v in SETTINGS.items()) + ". Using 1.",
                          RuntimeWarning, stacklevel=3)
            value = "1"
        _READ["setting"] = value
    return value


def refresh():
    """Read ``DEEPFF_NUMBA`` again at the next kernel request (compiled kernels are kept)."""
    _READ.pop("enabled", None)
    _READ.pop("setting", None)
