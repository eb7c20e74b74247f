"""Exceptions raised by deepff.

Every error a user can cause is a subclass of :class:`ValueError`, so code
that already catches ``ValueError`` keeps working, and each one names the
thing at fault and the valid choices.
"""

from __future__ import annotations

__all__ = [
    "DeepffError",
    "SpecError",
    "InputError",
    "ModelFileError",
    "DatasetError",
    "DivergenceError",
    "MissingDependencyError",
    "KernelBuildError",
]


class DeepffError(Exception):
    """Base class of every exception deepff raises on purpose."""


class SpecError(DeepffError, ValueError):
    """A network or training specification is malformed.

    The message names the layer index (or section) and the key at fault,
    and lists the valid choices where there is a finite set of them.
    """


class InputError(DeepffError, ValueError):
    """Data given to a network has the wrong shape, type or values."""


class ModelFileError(DeepffError, ValueError):
    """A model or checkpoint file cannot be read safely."""


class DatasetError(DeepffError, ValueError):
    """A data set cannot be found, downloaded, verified or parsed."""


class DivergenceError(DeepffError, FloatingPointError, ValueError):
    """Training produced a non-finite loss; the last finite weights are kept.

    Usually a learning rate too high for the data's scale, so a ValueError
    like every other error a user can cause (and a FloatingPointError).
    """


class MissingDependencyError(DeepffError, ImportError):
    """An optional package a feature needs (onnx, onnxruntime, torch, ...) cannot be imported.

    The message names the package and the extra that installs it.
    """


class KernelBuildError(DeepffError, RuntimeError):
    """Compiling deepff's kernels ahead of time (``deepff kernels --build``) failed.

    No C compiler, or a folder that cannot be written, for instance. Nothing
    changes: the kernels compile at run time as before.
    """


def choices(names) -> str:
    """Format a collection of valid names for an error message.

    Parameters
    ----------
    names : iterable of str
        The valid choices.

    Returns
    -------
    str
        The sorted names, quoted and separated by commas.
    """
    return ", ".join(repr(n) for n in sorted(names))
