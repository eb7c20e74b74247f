"""Every public function, class and method has a numpydoc docstring that
documents its parameters, with the shape of every array argument.

"Public" means: each name in the ``__all__`` of each public ``deepff`` module
(modules whose name starts with ``_`` are private), and every method or
property of a public class whose name does not start with ``_`` (``__call__``
included), inherited ones too when a deepff class defines them.

The rules, checked with a small numpydoc parser (no dependency):

1. a docstring exists, starting with a one-line summary;
2. its section headers are numpydoc's (``Parameters``, ``Returns``, ...);
3. a function with parameters has a ``Parameters`` section that documents
   each of them, and documents nothing that is not in the signature (a class
   documents its constructor's parameters; a dataclass its fields, under
   ``Attributes``);
4. each *array* parameter (``X``, ``y``, ``h``, ``a``, ``g``, ``theta``,
   ``grad``, ``W``, ``w``, ``sample_weight``, ``out``, ...) has a shape in its
   entry: ``shape`` or ``(n_...``;
5. an override whose docstring delegates to the method it overrides ("See
   :meth:`Activation.forward`.") is held to the rules through that method: the
   overridden method must exist in a base class and pass them.

Also: every public module has a docstring, and the ``>>>`` examples in
docstrings run (doctest).
"""

from __future__ import annotations

import dataclasses
import doctest
import importlib
import inspect
import pkgutil
import re

import pytest

import deepff

SECTIONS = {
    "Parameters", "Other Parameters", "Returns", "Yields", "Receives", "Raises", "Warns",
    "Warnings", "See Also", "Notes", "References", "Examples", "Attributes", "Methods",
}
ARRAY_PARAM = re.compile(
    r"^(X|Y|y|h|a|g|z|W|w|b|theta\d*|grad|d[A-Z]\w*|sample_weight|labels|cm|out)(_\w+)?$")
DELEGATION = re.compile(r"See :meth:`~?\.?(?P<ref>[\w.]+)`")


def _public_modules():
    """deepff and its public modules, those of its subpackages (deepff.cli.train, deepff.data.tables) too."""
    names = sorted(m.name for m in pkgutil.walk_packages(deepff.__path__, "deepff.")
                   if not any(part.startswith("_") for part in m.name.split(".")))
    return [deepff] + [importlib.import_module(name) for name in names]


MODULES = _public_modules()


def _raw_member(cls, name):
    """The attribute as stored in the class dict that defines it (no descriptor binding)."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return klass, vars(klass)[name]
    return None, None


def _callable_of(raw):
    if isinstance(raw, property):
        return raw.fget, "property"
    if isinstance(raw, staticmethod):
        return raw.__func__, "static"
    if isinstance(raw, classmethod):
        return raw.__func__, "method"
    if inspect.isfunction(raw):
        return raw, "method"
    return None, None


def _collect():
    """(qualified name, object, kind, owner class) for every public callable, once each."""
    items, seen = [], set()
    for mod in MODULES:
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if inspect.ismodule(obj) or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue  # submodules are checked on their own; constants have no docstring
            if not obj.__module__.startswith("deepff") or id(obj) in seen:
                continue
            seen.add(id(obj))
            home = obj.__module__
            if inspect.isfunction(obj):
                items.append((f"{home}.{obj.__qualname__}", obj, "function", None))
                continue
            items.append((f"{home}.{obj.__qualname__}", obj, "class", None))
            for attr in sorted(dir(obj)):
                if attr.startswith("_") and attr != "__call__":
                    continue
                owner, raw = _raw_member(obj, attr)
                func, kind = _callable_of(raw)
                if func is None or not getattr(func, "__module__", "").startswith("deepff"):
                    continue
                if id(func) in seen:
                    continue
                seen.add(id(func))
                items.append((f"{func.__module__}.{func.__qualname__}", func, kind, owner))
    return items


ITEMS = _collect()


def _public_home(obj):
    """The public module a callable belongs to: a package's private submodule counts as the package."""
    return obj.__module__.split("._")[0]


# ------------------------------------------------------------------ parsing
def sections(doc):
    """Split a numpydoc docstring into {header: [lines]} (plus "" for the summary part)."""
    lines = doc.splitlines()
    out, current = {"": []}, ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if (i + 1 < len(lines) and line.strip() and not line.startswith(" ")
                and re.fullmatch(r"-{3,}", lines[i + 1].strip())):
            current = line.strip()
            out[current] = []
            i += 2
            continue
        out[current].append(line)
        i += 1
    return out


def documented_params(lines):
    """{name: text of its entry} from the lines of a Parameters/Attributes section."""
    entries, names = {}, []
    for line in lines:
        if line and not line.startswith(" "):
            head = line.split(" : ")[0].strip()
            names = [n.strip().lstrip("*") for n in head.split(",") if n.strip()]
            for n in names:
                entries[n] = line
        elif names:
            for n in names:
                entries[n] += "\n" + line
    return entries


def signature_params(func, kind):
    """Parameter names a docstring must document (self/cls and *args/**kwargs left out)."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return []
    params = list(sig.parameters.values())
    if kind in ("method", "property") and params and params[0].name in ("self", "cls"):
        params = params[1:]
    return [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _delegate(func, owner):
    """The base-class method an override's "See :meth:`Base.name`" refers to, or None."""
    m = DELEGATION.search(inspect.getdoc(func) or "")
    if not m or owner is None:
        return None
    parts = m["ref"].split(".")
    for klass in owner.__mro__[1:]:
        if len(parts) >= 2 and klass.__name__ != parts[-2]:
            continue
        raw = vars(klass).get(parts[-1])
        target, _ = _callable_of(raw)
        if target is not None:
            return target, klass
    return None


def problems(qualname, obj, kind, owner, _depth=0):
    """Return the list of rule violations of one object's docstring."""
    doc = inspect.getdoc(obj)
    if not doc or not doc.strip():
        return [f"{qualname}: no docstring"]
    found = []
    if not doc.splitlines()[0].strip():
        found.append(f"{qualname}: the docstring must start with a one-line summary")
    secs = sections(doc)
    unknown = [s for s in secs if s and s not in SECTIONS]
    if unknown:
        found.append(f"{qualname}: unknown section(s) {unknown}; numpydoc's are {sorted(SECTIONS)}")
    if kind == "class":
        try:
            params = signature_params(obj.__init__, "method") if "__init__" in _init_owner(obj) else []
        except (TypeError, ValueError):
            params = []
        doc_section = "Attributes" if dataclasses.is_dataclass(obj) else "Parameters"
    else:
        params = signature_params(obj, kind)
        doc_section = "Parameters"
    if not params:
        return found
    if doc_section not in secs:
        delegate = _delegate(obj, owner) if kind == "method" else None
        if delegate is not None and _depth < 3:
            target, klass = delegate
            sub = problems(f"{klass.__module__}.{target.__qualname__}", target, "method", klass, _depth + 1)
            if sub:
                found.append(f"{qualname}: delegates to {klass.__name__}.{target.__name__}, which fails: "
                             + "; ".join(sub))
            if signature_params(target, "method") != params:
                found.append(f"{qualname}: delegates to {klass.__name__}.{target.__name__} but its "
                             f"parameters {params} differ from {signature_params(target, 'method')}")
            return found
        found.append(f"{qualname}: parameters {params} but no {doc_section} section")
        return found
    entries = documented_params(secs[doc_section])
    missing = [p for p in params if p not in entries]
    if missing:
        found.append(f"{qualname}: {doc_section} section does not document {missing}")
    if doc_section == "Parameters":
        extra = [p for p in entries if p not in params and p not in _var_params(obj, kind)]
        if extra:
            found.append(f"{qualname}: documents {extra}, which the signature does not have")
    for p in params:
        if ARRAY_PARAM.match(p) and p in entries and "shape" not in entries[p] and "(n_" not in entries[p]:
            found.append(f"{qualname}: array parameter {p!r} has no shape (write 'of shape (n_samples, ...)')")
    return found


def _init_owner(cls):
    """Names of the classes in the MRO that define __init__ (to skip object.__init__)."""
    return {"__init__"} if any("__init__" in vars(k) for k in cls.__mro__ if k is not object) else set()


def _var_params(func, kind):
    target = func.__init__ if kind == "class" else func
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return set()
    return {p.name for p in sig.parameters.values() if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


# -------------------------------------------------------------------- tests
@pytest.mark.parametrize("module", MODULES, ids=[m.__name__ for m in MODULES])
def test_module_has_docstring(module):
    assert (module.__doc__ or "").strip(), f"{module.__name__} has no module docstring"


@pytest.mark.parametrize("module", MODULES, ids=[m.__name__ for m in MODULES])
def test_public_docstrings_follow_numpydoc(module):
    """All public callables defined in this module pass rules 1-5."""
    mine = [item for item in ITEMS if _public_home(item[1]) == module.__name__]
    failures = [msg for item in mine for msg in problems(*item)]
    assert not failures, f"{len(failures)} docstring problem(s):\n" + "\n".join(failures)


def test_every_public_callable_is_checked_by_a_module_test():
    homes = {_public_home(item[1]) for item in ITEMS}
    assert homes <= {m.__name__ for m in MODULES}, homes - {m.__name__ for m in MODULES}


def test_collector_sees_the_api():
    """Guard against the collector silently checking nothing."""
    names = {q for q, *_ in ITEMS}
    for expected in ("deepff.network.FeedForward.backward", "deepff.layers.Dense.backward_linear",
                     "deepff.activations.Softmax.backward", "deepff.losses.Loss.grad",
                     "deepff.model.Network.fit", "deepff.optimizers.Adam", "deepff.spec.parse_layers"):
        assert expected in names
    assert len(ITEMS) > 150


def test_rules_catch_bad_docstrings():
    """The checker itself: each rule fires on a docstring that breaks it."""
    def no_doc(X):
        pass

    def no_shape(X, n):
        """Do something.

        Parameters
        ----------
        X : ndarray
            The data.
        n : int
        """

    def stale(X):
        """Do something.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        Z : int
        """

    def typo_section(n):
        """Do something.

        Parameter
        ---------
        n : int
        """

    def good(X, y=None, *args, **kwargs):
        """Do something.

        Parameters
        ----------
        X, y : ndarray of shape (n_samples, n_features)
        """

    class Base:
        def forward(self, a, out=None):
            """Forward.

            Parameters
            ----------
            a : ndarray of shape (n_samples, n_units)
            out : ndarray of shape (n_samples, n_units), optional
            """

    class Child(Base):
        def forward(self, a, out=None):
            """Child version. See :meth:`Base.forward`."""

    class Orphan:
        def forward(self, a, out=None):
            """See :meth:`Base.forward`."""

    assert problems("Child.forward", Child.forward, "method", Child) == []
    assert "no Parameters section" in problems("Orphan.forward", Orphan.forward, "method", Orphan)[0]
    assert problems("no_doc", no_doc, "function", None) == ["no_doc: no docstring"]
    assert "no shape" in problems("no_shape", no_shape, "function", None)[0]
    assert "documents ['Z']" in problems("stale", stale, "function", None)[0]
    assert any("unknown section" in p for p in problems("typo_section", typo_section, "function", None))
    assert problems("good", good, "function", None) == []


DOCTEST_MODULES = [m for m in MODULES if ">>>" in inspect.getsource(m)]


@pytest.mark.parametrize("module", DOCTEST_MODULES, ids=[m.__name__ for m in DOCTEST_MODULES])
def test_docstring_examples_run(module):
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module) if t.examples]
    assert tests
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} doctest example(s) failed in {module.__name__}"
