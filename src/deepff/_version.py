"""deepff's version, in the one place every module (and the packaging metadata) reads it from.

It sits at the bottom of the import layers, so ``io`` (which records it in
every model file) and the command's ``--version`` import it without going
up through the package's ``__init__``.
"""

__version__ = "0.1.0"
