"""The former home of deepff's data code, kept so that ``import deepff.datasets``
and ``from deepff.datasets import load_mnist`` go on working.

Everything lives in the :mod:`deepff.data` package now (MNIST in
:mod:`deepff.data.mnist`, the table reader in :mod:`deepff.data.tables`,
preprocessing in :mod:`deepff.data.preprocessing`, the named data sets in
:mod:`deepff.data.catalog`); this module re-exports its public names.
"""

from .data import *  # noqa: F403
from .data import __all__  # noqa: F401
