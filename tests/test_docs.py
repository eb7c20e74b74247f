"""The documentation is tested: the site builds with ``mkdocs build --strict``,
and every code block of docs/ and README.md runs.

Conventions for code blocks (also stated in docs/index.md, "About these pages"):

* ```` ```python ```` blocks run, in order, in one namespace per page, in a
  fresh temporary folder (``MPLBACKEND=Agg``);
* ```` ```bash ```` blocks run too: each line is a ``deepff ...`` command
  (an optional ``$ `` prompt is ignored; a trailing ``\\`` continues the
  line), run through ``deepff.cli.main`` (the console script's entry
  point) in the page's folder, and expected to exit with status 0. A bash
  block holding ``pip install`` (the README's set-up commands) is never
  run; any other non-``deepff`` command must be marked ``<!-- skip -->``;
* ```` ```console ```` blocks show a command *with its output*; they are
  illustrative and never run;
* a block right after ``<!-- file: NAME -->`` (any language: yaml, json,
  toml, csv) is written to NAME in the page's folder, for later blocks;
* a block right after ``<!-- skip -->`` (or ``<!-- skip: why -->``) is not run;
* every fence names its language (``text`` for plain output), so nothing
  that looks like code escapes the run by accident.

Python and bash blocks of one page share the folder, so a python block can
write the CSV file a later ``deepff predict`` reads.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from _needs import require_module

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "deepff"

#: The number of blocks run must not fall below this (blocks cannot vanish silently).
MIN_EXECUTED_BLOCKS = 75

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\s]*)[^`]*$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<kind>skip(?:\s*:[^>]*)?|file:\s*(?P<name>[\w./-]+))\s*-->\s*$")
_SHELL = {"bash", "sh", "shell"}
_PYTHON = {"python", "py", "python3"}


@dataclass
class Block:
    """One fenced code block of a Markdown page."""

    page: Path
    line: int  # 1-based line of the first line of code
    lang: str
    code: str
    action: str  # "python", "shell", "file" (run or written); "skip", "show" (not run)
    target: str = ""  # file name for action "file"

    @property
    def where(self):
        return f"{_rel(self.page)}:{self.line}"


def _rel(path):
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _shell_commands(code):
    """The commands of a bash block: prompts stripped, continuations joined, comments dropped."""
    commands, current = [], ""
    for raw in code.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if not current and line.startswith("$ "):
            line = line[2:].strip()
        if line.endswith("\\"):
            current += line[:-1].rstrip() + " "
            continue
        commands.append(current + line)
        current = ""
    if current.strip():
        commands.append(current.strip())
    return commands


def parse_blocks(page, text=None):
    """Return every fenced block of ``page`` (or of ``text``) with what the test does with it."""
    if text is None:
        text = page.read_text(encoding="utf-8")
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m["indent"], m["fence"], m["info"].lower()
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        j = i + 1
        while j < len(lines) and not closing.match(lines[j]):
            j += 1
        if j == len(lines):
            raise AssertionError(f"{_rel(page)}:{i + 1}: code fence is never closed")
        body = [ln[len(indent):] if ln.startswith(indent) else ln.lstrip() for ln in lines[i + 1:j]]
        code = "\n".join(body) + "\n"
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        marker = _MARKER.match(lines[k]) if k >= 0 else None
        block = Block(page, i + 2, lang, code, "show")
        if not lang:
            raise AssertionError(f"{block.where}: code fence without a language; "
                                 "label it (python, bash, console, yaml, text, ...)")
        if marker and marker["kind"].startswith("skip"):
            block.action = "skip"
        elif marker:
            name = marker["name"]
            if name.startswith("/") or ".." in Path(name).parts:
                raise AssertionError(f"{block.where}: file marker {name!r} must be a relative path")
            block.action, block.target = "file", name
        elif lang in _PYTHON:
            block.action = "python"
        elif lang in _SHELL:
            if "pip install" in code:
                block.action = "skip"
            else:
                block.action = "shell"
                for cmd in _shell_commands(code):
                    if not cmd.startswith("deepff ") and cmd != "deepff":
                        raise AssertionError(
                            f"{block.where}: bash block runs {cmd!r}; only `deepff` commands are run. "
                            "Mark the block <!-- skip --> or show it as a console block.")
        blocks.append(block)
        i = j + 1
    return blocks


def _pages():
    pages = [ROOT / "README.md"] + sorted(DOCS.rglob("*.md"))
    return [p for p in pages if p.is_file()]


def _parse_all(pages):
    """Parse every page; a page that breaks the conventions fails its own test, not the collection."""
    blocks, errors = {}, {}
    for page in pages:
        try:
            blocks[page] = parse_blocks(page)
        except AssertionError as exc:
            blocks[page], errors[page] = [], str(exc)
    return blocks, errors


PAGES = _pages()
BLOCKS, PARSE_ERRORS = _parse_all(PAGES)
RUN_ACTIONS = ("python", "shell", "file")
EXECUTED = sum(b.action in RUN_ACTIONS for blocks in BLOCKS.values() for b in blocks)
RUNNABLE_PAGES = [p for p in PAGES if any(b.action in RUN_ACTIONS for b in BLOCKS[p])]


def _page_id(page):
    return _rel(page)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_page_follows_the_block_conventions(page):
    """Every fence names a language; bash blocks run only `deepff` (or are marked skip)."""
    assert page not in PARSE_ERRORS, PARSE_ERRORS.get(page)


@pytest.fixture
def isolated_registries():
    """Undo what a page registers (custom activations, losses, ...) after it runs."""
    from deepff import activations, initializers, losses, optimizers, schedules

    registries = [m.REGISTRY for m in (activations, initializers, losses, optimizers, schedules)]
    saved = [(dict(r.classes), dict(r.aliases)) for r in registries]
    yield
    for r, (classes, aliases) in zip(registries, saved):
        r.classes.clear()
        r.classes.update(classes)
        r.aliases.clear()
        r.aliases.update(aliases)


def _run_shell(block):
    """Run each `deepff ...` line of a bash block through the command's entry point.

    ``deepff.cli.main`` is called in-process (the same code the console
    script runs, without paying for a new interpreter per command); output
    is captured and shown when a command fails.
    """
    from deepff.cli import main

    for cmd in _shell_commands(block.code):
        argv = shlex.split(cmd)[1:]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(argv)
            except SystemExit as exc:  # --help and argparse exits
                status = exc.code
        assert status in (0, None), (
            f"{block.where}: `{cmd}` exited with status {status}\n"
            f"--- stdout\n{out.getvalue()}\n--- stderr\n{err.getvalue()}")


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=_page_id)
def test_code_blocks_run(page, tmp_path, monkeypatch, isolated_registries, record_property):
    """Run the python and bash blocks of one page in order, in one namespace and folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    ran = 0
    try:
        for block in BLOCKS[page]:
            if block.action == "file":
                target = tmp_path / block.target
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(block.code, encoding="utf-8")
            elif block.action == "python":
                # pad with blank lines so tracebacks show the line number in the Markdown file
                code = compile("\n" * (block.line - 1) + block.code, str(block.page), "exec")
                try:
                    exec(code, namespace)
                except Exception as exc:
                    raise AssertionError(f"{block.where}: python block failed: {exc!r}") from exc
            elif block.action == "shell":
                _run_shell(block)
            else:
                continue
            ran += 1
    finally:
        plt.close("all")
    expected = sum(b.action in RUN_ACTIONS for b in BLOCKS[page])
    assert ran == expected
    record_property("executed_blocks", ran)


@pytest.mark.parametrize("executed", [EXECUTED], ids=[f"{EXECUTED}-blocks-executed"])
def test_executed_block_count(executed, record_property):
    """Blocks cannot silently vanish: the total run stays above a floor."""
    record_property("executed_blocks", executed)
    skipped = [b.where for blocks in BLOCKS.values() for b in blocks if b.action == "skip"]
    print(f"\n{executed} code blocks executed over {len(RUNNABLE_PAGES)} pages; "
          f"{len(skipped)} skipped: {', '.join(skipped)}")
    assert executed >= MIN_EXECUTED_BLOCKS, (
        f"only {executed} code blocks are executed, fewer than the floor {MIN_EXECUTED_BLOCKS}")


def test_block_parser_conventions():
    """The collector itself: markers, prompts, continuations, pip install, languages."""
    text = (
        "```python\nx = 1\n```\n\n<!-- skip: needs a GPU -->\n```python\nraise SystemExit\n```\n\n"
        "```bash\n$ deepff datasets \\\n    --data-dir here\n```\n\n"
        "```bash\npython -m pip install -e .\n```\n\n"
        "```console\n$ deepff summary\noutput\n```\n\n"
        "<!-- file: cfg/net.yaml -->\n```yaml\nlayers: []\n```\n"
    )
    blocks = parse_blocks(Path("check.md"), text)
    assert [b.action for b in blocks] == ["python", "skip", "shell", "skip", "show", "file"]
    assert _shell_commands(blocks[2].code) == ["deepff datasets --data-dir here"]
    assert blocks[5].target == "cfg/net.yaml"
    assert blocks[0].line == 2


def test_math_page_code_map_matches_the_source():
    """Each line of code the math page quotes exists verbatim in the function it names."""
    import importlib
    import inspect

    text = (DOCS / "math.md").read_text(encoding="utf-8")
    start = text.index("<!-- code-map -->")
    rows = [ln for ln in text[start:].splitlines()[1:] if ln.startswith("|")]
    checked = 0
    for row in rows[2:]:  # skip the header and the |---| rule
        cells = [c.strip() for c in row.strip("|").split("|")]
        fname = re.search(r"`(\w+)\.py`", cells[1])
        func = re.search(r"\[`([\w.]+)`\]", cells[2])
        code = re.search(r"`(.+)`", cells[3])
        assert fname and func and code, f"malformed code-map row: {row}"
        module = importlib.import_module(f"deepff.{fname.group(1)}")
        obj = module
        for part in func.group(1).split("."):
            obj = getattr(obj, part)
        source = " ".join(inspect.getsource(obj).split())
        assert " ".join(code.group(1).split()) in source, (
            f"math.md quotes `{code.group(1)}` from {fname.group(1)}.py {func.group(1)}, "
            "which no longer holds it")
        checked += 1
    assert checked >= 8


def test_mkdocs_build_strict(tmp_path):
    """`mkdocs build --strict`: nav, links, anchors, images and the API reference all resolve."""
    require_module("mkdocs", area="docs site (mkdocs)")
    require_module("material", area="docs site (mkdocs)")
    require_module("mkdocstrings_handlers.python", area="docs site (mkdocs)")
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    math_html = (site / "math" / "index.html").read_text(encoding="utf-8")
    assert 'class="arithmatex"' in math_html
    api = (site / "reference" / "network" / "index.html").read_text(encoding="utf-8")
    assert "deepff.network.FeedForward.backward" in api
    for png in sorted((DOCS / "img").glob("*.png")):
        assert (site / "img" / png.name).is_file()
