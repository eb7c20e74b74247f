"""MkDocs hook: serve MathJax from the site itself, so the math renders offline.

The pages load MathJax from ``javascripts/mathjax/`` of the built site, never
from a CDN: a reader behind a firewall, on a plane or reading a local build sees
the equations, and no page view is reported to a third party. The files come
from MathJax's own ES5 distribution as shipped by the ``django-static-mathjax``
wheel (MathJax 3, Apache-2.0; the wheel has no dependencies and installs a
``mathjax`` package holding ``static/mathjax/es5``). It is in deepff's ``test``
extra, which the docs are built with.

What is copied: the one combined component the pages load (``BUNDLE``) and
every subfolder of ``es5`` (``output/chtml/fonts`` holds the web fonts;
``input/tex/extensions``, ``a11y``, ``ui`` and ``sre`` are loaded on demand by
TeX's autoload and by MathJax's context menu), plus MathJax's licence. The other
combined components are left out (they would only add megabytes).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

#: The combined MathJax component the pages load (TeX and MathML in, CommonHTML out).
BUNDLE = "tex-mml-chtml.js"
#: Where the distribution lands in the built site (mkdocs.yml's extra_javascript names it).
SITE_DIR = "javascripts/mathjax"
_PACKAGE = "django-static-mathjax"


def mathjax_dist():
    """Return the folder of MathJax's ES5 distribution installed with ``django-static-mathjax``."""
    spec = importlib.util.find_spec("mathjax")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        es5 = Path(root) / "static" / "mathjax" / "es5"
        if (es5 / BUNDLE).is_file():
            return es5
    raise PluginError(
        f"MathJax is not installed: the docs serve it from the site and copy it from the {_PACKAGE} "
        f"package; install it with `python -m pip install {_PACKAGE}` (it is in deepff's `test` extra)")


def _site_files(es5):
    """Yield ``(path in the site, file on disk)`` for every MathJax file the site serves."""
    yield f"{SITE_DIR}/{BUNDLE}", es5 / BUNDLE
    licence = es5.parent / "LICENSE"
    if licence.is_file():
        yield f"{SITE_DIR}/LICENSE", licence
    for path in sorted(es5.rglob("*")):
        if path.is_file() and path.parent != es5:
            yield f"{SITE_DIR}/{path.relative_to(es5).as_posix()}", path


def on_files(files, config):
    """Add MathJax's files to the site's files (so ``mkdocs build`` and ``mkdocs serve`` both serve them)."""
    for uri, path in _site_files(mathjax_dist()):
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
