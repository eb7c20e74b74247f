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
        """Register ``cls`` under its ``name`` attribute.

        Specs, model files and checkpoints store that attribute and look it
        up here when read back, so it must be the class's own (not one
        inherited from the class it extends), and may not take the name of
        a built-in part or of an alias. Registering another class under a
        name a user class already has replaces it (re-running a notebook
        cell that defines the class again).

        Parameters
        ----------
        cls : type
            A subclass of the registry's base class, with its own ``name``.
        name : str, optional
            If given, it must equal ``cls.name`` (ignoring case).

        Returns
        -------
        type
            ``cls``, so that ``register`` works as a decorator.

        Raises
        ------
        TypeError
            When ``cls`` is not a subclass of the base class.
        SpecError
            For a missing, inherited or mismatched name, or one that is
            taken by a built-in part or an alias.
        """
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise TypeError(f"register() needs a {self.base.__name__} subclass, got {cls!r}")
        own = cls.__dict__.get("name")
        if not isinstance(own, str) or not own.strip():
            inherited = getattr(cls, "name", None)
            raise SpecError(f"{self.kind} class {cls.__name__} needs its own name attribute (a non-empty string; "
                            + (f"it inherits {inherited!r}, " if isinstance(inherited, str) else "")
                            + "which files would store and load back as another class): add name = '...' "
                            "to the class")
        if name is not None and (not isinstance(name, str) or name.lower() != own.lower()):
            raise SpecError(f"register({cls.__name__}, name={name!r}): files store the {self.kind} under its "
                            f"class's name {own!r}, so it is registered under that name; set the class's name "
                            "attribute instead")
        key = own.lower()
        if key in self.aliases:
            raise SpecError(f"{self.kind} name {own!r} is an alias of {self.aliases[key]!r}; choose another name")
        taken = self.classes.get(key)
        if taken is not None and taken is not cls and taken.__module__.startswith("deepff."):
            raise SpecError(f"{self.kind} name {own!r} is deepff's {taken.__name__}; choose another name")
        self.classes[key] = cls
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
