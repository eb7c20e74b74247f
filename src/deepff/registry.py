"""Name -> class registries shared by activations, losses, initializers,
optimizers and schedules.

A registry resolves an identifier the way Keras' ``get`` does: a name
(``"relu"``), a config dict (``{"name": "leaky_relu", "slope": 0.2}``) or an
instance of the registry's base class, returned unchanged. Unknown names
raise :class:`~deepff.errors.SpecError` listing the valid choices.
"""

from __future__ import annotations

from .errors import SpecError, choices

__all__ = ["Registry"]


class Registry:
    """A case-insensitive mapping from names (and aliases) to classes.

    Parameters
    ----------
    kind : str
        What is registered, for error messages ("activation", "loss", ...).
    base : type
        The base class every registered class derives from.
    aliases : dict of str to str, optional
        Alternative names mapped to registered names.
    """

    def __init__(self, kind, base, aliases=None):
        self.kind = kind
        self.base = base
        self.classes = {}
        self.aliases = dict(aliases or {})

    def register(self, cls, name=None):
        """Register ``cls`` under ``name`` (default ``cls.name``).

        Parameters
        ----------
        cls : type
            A subclass of the registry's base class.
        name : str, optional

        Returns
        -------
        type
            ``cls``, so that ``register`` works as a decorator.
        """
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise TypeError(f"register() needs a {self.base.__name__} subclass, got {cls!r}")
        self.classes[(name or cls.name).lower()] = cls
        return cls

    def names(self):
        """Return every accepted name, aliases included, sorted.

        Returns
        -------
        list of str
        """
        return sorted(set(self.classes) | set(self.aliases))

    def canonical(self, name):
        """Return the registered name for ``name`` or an alias of it.

        Parameters
        ----------
        name : str

        Returns
        -------
        str

        Raises
        ------
        SpecError
            If the name is unknown.
        """
        key = self.aliases.get(name.lower(), name.lower())
        if key not in self.classes:
            raise SpecError(f"unknown {self.kind} {name!r}; valid choices: {choices(self.names())}")
        return key

    @staticmethod
    def parameters(cls):
        """The keyword parameters ``cls(...)`` takes, or None when it takes any (``**kwargs``).

        Parameters
        ----------
        cls : type

        Returns
        -------
        list of str or None
        """
        import inspect

        try:
            sig = inspect.signature(cls)
        except (TypeError, ValueError):
            return None
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
            return None
        return [name for name, p in sig.parameters.items() if p.kind in kinds]

    def get(self, identifier, **defaults):
        """Resolve ``identifier`` to an instance.

        Parameters
        ----------
        identifier : str, dict or instance of the base class
            A name, ``{"name": ..., **params}``, or an instance (returned
            unchanged).
        **defaults
            Constructor arguments used unless the dict overrides them.

        Returns
        -------
        object
            An instance of a registered class.

        Raises
        ------
        SpecError
            For an unknown name, a malformed identifier or bad parameters.
        """
        if isinstance(identifier, self.base):
            return identifier
        params = dict(defaults)
        if isinstance(identifier, dict):
            params.update(identifier)
            identifier = params.pop("name", None)
        if not isinstance(identifier, str):
            raise SpecError(
                f"{self.kind} must be a name, a dict with 'name', or a "
                f"{self.base.__name__}; got {identifier!r}; valid names: {choices(self.names())}"
            )
        cls = self.classes[self.canonical(identifier)]
        accepted = self.parameters(cls)
        unknown = [k for k in params if accepted is not None and k not in accepted]
        if unknown:
            raise SpecError(f"{self.kind} {identifier!r} has no parameter {unknown[0]!r}; valid parameters: "
                            f"{choices(accepted) if accepted else 'none'}")
        try:
            return cls(**params)
        except (TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, SpecError):
                raise
            raise SpecError(f"bad parameters for {self.kind} {identifier!r}: {exc}") from None
