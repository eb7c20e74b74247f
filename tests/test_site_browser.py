"""The documentation as a reader sees it: every page of the built site in headless Chromium.

The site is built with ``mkdocs build --strict`` into a temporary folder, served
by ``http.server`` on 127.0.0.1, and every HTML page the build wrote (whatever
pages the nav holds today; nothing is listed by hand) is opened in Debian's
Chromium through Playwright. The checks:

* the math is typeset: every ``arithmatex`` element holds a MathJax container,
  none is a TeX error, and the math page has as many as its HTML holds;
* no raw TeX shows: the rendered text outside code holds no ``\\(``, ``\\[``,
  ``$$`` or ``\\command``;
* no request leaves 127.0.0.1 (every request of every page is recorded; one to
  another host is aborted and counted), and no local request fails;
* the console shows no JavaScript error;
* every image loads, and every internal link (page, file and ``#anchor``) resolves;
* the built HTML names no script, stylesheet or font on another host.

Screenshots of the math page and of a tutorial page are written to a temporary
folder (or to ``$DEEPFF_SCREENSHOTS``); the figures (pages, math elements,
requests, errors, run time) are printed in the run's "figures" section.
Runtime: about 5 s to build, about 1 s per page.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from _needs import require, require_module

AREA = "docs in a browser"
ROOT = Path(__file__).resolve().parents[1]
for _name in ("mkdocs", "material", "mkdocstrings_handlers.python", "mathjax"):
    require_module(_name, area=AREA)
sync_api = require_module("playwright.sync_api", area=AREA)
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
require(CHROMIUM is not None, area=AREA, reason="no chromium on PATH (apt-get install -y chromium)")

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
MATH_PAGE = "math/"
TUTORIAL_PAGE = "tutorial/classic-toy/"
#: The math page cannot quietly lose its equations: it must hold at least this many.
MIN_MATH_ON_MATH_PAGE = 40
#: Raw TeX in rendered text: a delimiter, or a backslash command that MathJax would have consumed.
RAW_TEX = re.compile(r"\\[()\[\]]|\$\$|\\[A-Za-z]{2,}")
#: A script, stylesheet or font in the built HTML/CSS that names an absolute http(s) URL.
EXTERNAL_ASSET = re.compile(
    r"<script\b[^>]*\bsrc=[\"']?(?:https?:)?//"
    r"|<link\b[^>]*\bhref=[\"']?(?:https?:)?//"
    r"|@import\s+(?:url\()?[\"']?(?:https?:)?//"
    r"|@font-face[^}]*url\([\"']?(?:https?:)?//", re.IGNORECASE)

# What the page shows, read in the page: typeset math, text outside code, images, links, ids.
PAGE_FACTS_JS = """
async () => {
  const arith = [...document.querySelectorAll('.arithmatex')];
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll('script, style, pre, code, kbd, samp, textarea, noscript, template, mjx-container')
       .forEach(e => e.remove());
  const images = await Promise.all([...document.images].map(async img => {
    img.loading = 'eager';
    let decoded = true;
    try { await img.decode(); } catch (e) { decoded = false; }
    return {src: img.currentSrc || img.src, ok: decoded && img.naturalWidth > 0};
  }));
  return {
    math: arith.length,
    typeset: arith.filter(e => e.querySelector('mjx-container')).length,
    errors: document.querySelectorAll('mjx-merror, [data-mjx-error]').length,
    text: clone.textContent,
    images: images,
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
  };
}
"""
# MathJax typesets after the load event: wait until every arithmatex element holds its output,
# or stop waiting at once where MathJax never loaded (after "load", its startup object would exist).
ALL_TYPESET_JS = """
() => !(window.MathJax && window.MathJax.startup)
      || [...document.querySelectorAll('.arithmatex')].every(e => e.querySelector('mjx-container'))
"""


@dataclass
class Walk:
    """What the browser met on every page of the site."""

    origin: str
    pages: dict = field(default_factory=dict)  # url -> facts from PAGE_FACTS_JS
    requests: int = 0
    external: list = field(default_factory=list)  # (page, url)
    failed: list = field(default_factory=list)  # (page, url, why): local requests that failed
    console: list = field(default_factory=list)  # (page, message)
    screenshots: dict = field(default_factory=dict)
    seconds: float = 0.0


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the site with ``mkdocs build --strict``; return (folder, seconds)."""
    folder = tmp_path_factory.mktemp("site")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(folder)],
        cwd=ROOT, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return folder, time.perf_counter() - start


@pytest.fixture(scope="module")
def server(site):
    """Serve the built site on 127.0.0.1 (a free port) from a thread; yield its origin."""
    handler = functools.partial(_QuietHandler, directory=str(site[0]))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def page_urls(folder, origin):
    """Every HTML page of the built site, as the URL a reader opens (``.../index.html`` as ``.../``)."""
    urls = []
    for html in sorted(folder.rglob("*.html")):
        rel = html.relative_to(folder).as_posix()
        urls.append(f"{origin}/{rel[:-len('index.html')] if rel.endswith('index.html') else rel}")
    return urls


def _shots_dir(tmp_path_factory):
    chosen = os.environ.get("DEEPFF_SCREENSHOTS")
    if chosen:
        Path(chosen).mkdir(parents=True, exist_ok=True)
        return Path(chosen)
    return tmp_path_factory.mktemp("screenshots")


def _watch(context, walk, current):
    """Record every request of ``context``; abort those to another host; collect failures and errors."""
    def route(r):
        url = r.request.url
        walk.requests += 1
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and not url.startswith(walk.origin + "/"):
            walk.external.append((current[0], url))
            r.abort()
        else:
            r.continue_()

    def response(resp):
        if resp.url.startswith(walk.origin + "/") and resp.status >= 400:
            walk.failed.append((current[0], resp.url, f"HTTP {resp.status}"))

    def failed(req):
        if req.url.startswith(walk.origin + "/"):
            walk.failed.append((current[0], req.url, req.failure or "failed"))

    context.route("**/*", route)
    context.on("response", response)
    context.on("requestfailed", failed)
    context.on("console", lambda msg: msg.type == "error" and walk.console.append((current[0], msg.text)))
    context.on("weberror", lambda err: walk.console.append((current[0], f"uncaught: {err.error}")))


@pytest.fixture(scope="module")
def walk(site, server, tmp_path_factory):
    """Open every page of the site in headless Chromium and record what happens."""
    result = Walk(origin=server)
    shots = _shots_dir(tmp_path_factory)
    start = time.perf_counter()
    current = [""]
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            _watch(context, result, current)
            page = context.new_page()
            for url in page_urls(site[0], server):
                current[0] = url
                page.goto(url, wait_until="load")
                try:
                    page.wait_for_function(ALL_TYPESET_JS, timeout=20_000)
                except sync_api.TimeoutError:
                    pass  # the math test counts what is left untypeset
                page.wait_for_load_state("networkidle")
                result.pages[url] = page.evaluate(PAGE_FACTS_JS)
                for name, where in (("math", MATH_PAGE), ("tutorial", TUTORIAL_PAGE)):
                    if url == f"{server}/{where}":
                        result.screenshots[name] = shots / f"{name}.png"
                        page.screenshot(path=str(result.screenshots[name]), full_page=True)
        finally:
            browser.close()
    result.seconds = time.perf_counter() - start
    return result


def _page(walk, where):
    return walk.pages.get(f"{walk.origin}/{where}")


def _split(url):
    """``(url without fragment, fragment)``, with ``.../index.html`` read as ``.../``."""
    base, _, fragment = url.partition("#")
    if base.endswith("/index.html"):
        base = base[:-len("index.html")]
    return base, unquote(fragment)


def broken_links(walk):
    """Internal links whose page or file does not answer 200, or whose ``#anchor`` is not on its page."""
    broken, fetched = [], {}
    for url, facts in walk.pages.items():
        for href in facts["links"]:
            if not href.startswith(walk.origin + "/"):
                continue
            base, fragment = _split(href)
            target = walk.pages.get(base)
            if target is None:
                if base not in fetched:
                    try:
                        with urllib.request.urlopen(base, timeout=10) as resp:
                            fetched[base] = resp.status == 200
                    except (urllib.error.URLError, OSError):
                        fetched[base] = False
                if not fetched[base]:
                    broken.append(f"{url} -> {href} (no such page or file)")
            elif fragment and fragment not in target["ids"]:
                broken.append(f"{url} -> {href} (no #{fragment} on that page)")
    return broken


def broken_images(walk):
    return [f"{url} -> {img['src']}" for url, facts in walk.pages.items() for img in facts["images"] if not img["ok"]]


def raw_tex(walk):
    """``(page, snippet)`` for each piece of TeX left visible in the rendered text outside code."""
    found = []
    for url, facts in walk.pages.items():
        for m in RAW_TEX.finditer(facts["text"]):
            found.append((url, facts["text"][max(0, m.start() - 30):m.end() + 30].replace("\n", " ")))
    return found


def external_assets(folder):
    """``(file, snippet)`` for every script, stylesheet or font the built HTML/CSS loads from another host."""
    found = []
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".html", ".css"):
            text = path.read_text(encoding="utf-8", errors="replace")
            found += [(path.relative_to(folder).as_posix(), text[m.start():m.start() + 120])
                      for m in EXTERNAL_ASSET.finditer(text)]
    return found


def figures(walk, build_s):
    """The one-line summary of the walk printed in the run's "figures" section."""
    math = _page(walk, MATH_PAGE) or {"math": 0, "typeset": 0}
    links = sum(sum(h.startswith(walk.origin + "/") for h in f["links"]) for f in walk.pages.values())
    images = sum(len(f["images"]) for f in walk.pages.values())
    return (
        f"docs in Chromium: {len(walk.pages)} pages visited, math elements typeset "
        f"{sum(f['typeset'] for f in walk.pages.values())}/{sum(f['math'] for f in walk.pages.values())} "
        f"(math page {math['typeset']}/{math['math']}), {walk.requests} requests, "
        f"{len(walk.external)} external requests, {len(walk.failed)} failed local requests, "
        f"{len(walk.console)} console errors, {len(raw_tex(walk))} raw TeX fragments, "
        f"{len(broken_links(walk))}/{links} broken internal links, {len(broken_images(walk))}/{images} broken images; "
        f"build {build_s:.1f} s, browser {walk.seconds:.1f} s")


@pytest.fixture(scope="module")
def walked(site, walk, report_figure):
    """The walk, its figures reported once (before any assert can fail)."""
    report_figure(figures(walk, site[1]))
    for name, path in sorted(walk.screenshots.items()):
        report_figure(f"docs in Chromium: screenshot of the {name} page: {path}")
    return walk


def test_every_page_was_opened(site, walked):
    html = list(site[0].rglob("*.html"))
    assert len(walked.pages) == len(html) >= 40
    assert f"{walked.origin}/{MATH_PAGE}" in walked.pages


def test_math_is_typeset_on_every_page(site, walked):
    math = _page(walked, MATH_PAGE)
    in_html = (site[0] / MATH_PAGE / "index.html").read_text(encoding="utf-8").count('class="arithmatex"')
    assert math["math"] == in_html >= MIN_MATH_ON_MATH_PAGE
    assert math["typeset"] == math["math"]
    untypeset = {url: f["math"] - f["typeset"] for url, f in walked.pages.items() if f["typeset"] != f["math"]}
    assert not untypeset, f"math left as TeX: {untypeset}"
    errors = {url: f["errors"] for url, f in walked.pages.items() if f["errors"]}
    assert not errors, f"MathJax reports TeX errors: {errors}"


def test_no_raw_tex_is_visible(walked):
    found = raw_tex(walked)
    assert not found, f"{len(found)} raw TeX fragments in rendered text, e.g. {found[:5]}"


def test_no_request_leaves_the_site(walked):
    assert walked.requests > len(walked.pages)  # the recorder saw the pages' own requests
    assert not walked.external, f"{len(walked.external)} requests to another host, e.g. {walked.external[:5]}"
    assert not walked.failed, f"{len(walked.failed)} local requests failed, e.g. {walked.failed[:5]}"


def test_no_console_errors(walked):
    assert not walked.console, f"{len(walked.console)} console errors, e.g. {walked.console[:5]}"


def test_every_image_loads_and_every_internal_link_resolves(walked):
    images = sum(len(f["images"]) for f in walked.pages.values())
    assert images >= 1
    assert not broken_images(walked), broken_images(walked)[:10]
    broken = broken_links(walked)
    assert not broken, f"{len(broken)} broken internal links, e.g. {broken[:10]}"


def test_screenshots_were_taken(walked):
    assert set(walked.screenshots) == {"math", "tutorial"}
    for path in walked.screenshots.values():
        assert path.stat().st_size > 10_000


def test_no_script_stylesheet_or_font_from_another_host(site):
    found = external_assets(site[0])
    assert not found, f"{len(found)} assets named on another host, e.g. {found[:5]}"


def test_external_asset_pattern_catches_cdn_references():
    """The pattern of the test above: it sees a CDN script, stylesheet, import and font; not a plain link."""
    caught = ['<script src="https://unpkg.com/mathjax@3/es5/tex-mml-chtml.js"></script>',
              '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">',
              "@import url('https://fonts.googleapis.com/css2?family=Inter');",
              "@font-face{font-family:X;src:url(//cdn.example/x.woff2)}"]
    passed = ['<a href="https://pytorch.org/docs/">PyTorch</a>', '<script src="../javascripts/mathjax.js">',
              '<link rel="stylesheet" href="assets/stylesheets/main.css">']
    assert all(EXTERNAL_ASSET.search(s) for s in caught)
    assert not any(EXTERNAL_ASSET.search(s) for s in passed)
