"""The playground's web server: the page's files and a small JSON API, on 127.0.0.1 only.

Python's standard ``http.server`` with one thread per request. Every
request is checked before it does anything:

* the ``Host`` header must name this server (127.0.0.1 or localhost and its
  port) and an ``Origin``, when sent, must be this server's: a page from
  another site, even one whose DNS name was rebound to 127.0.0.1, is
  refused (403);
* bodies need a ``Content-Length`` within the limits (411, 413); JSON must
  parse to an object with only the documented fields (400);
* only the page's own files are served; a path that climbs out (``/../``)
  is refused (400), anything else unknown is 404;
* training runs whole epochs within a time and epoch budget per request.

Every refusal is a JSON ``{"error": message}`` with a 4xx status, never a
traceback, and the server keeps serving.

API (POST bodies are JSON; ``session`` is the id from ``POST /api/session``):

=========================  ==================================================
``GET /api/options``       data sets, features, activations, losses, limits
``POST /api/session``      a new session for this tab: ``{"session": id}``
``POST /api/build``        ``{session, config}``: data, network, first picture
``POST /api/train``        ``{session, epochs, max_ms}``: train, new picture
``POST /api/upload``       ``?session=id&name=file.csv``, body the CSV text
``POST /api/gradcheck``    ``{session}``: deepff.gradcheck_report of the net
``POST /api/predict``      ``{session, X}``: h^L for rows of features
``GET /api/export``        ``?session=id``: the model as a deepff .npz file
``GET /api/code``          ``?session=id``: Python code and YAML config
=========================  ==================================================
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from ..errors import DeepffError
from . import export
from .config import ACTIVATIONS, DEFAULTS, FEATURES, INITIALIZERS, LIMITS, LOSSES, OPTIMIZERS, ConfigError
from .datasets import DATASETS, load_table
from .sessions import SessionStore

__all__ = ["PlaygroundServer", "make_server", "static_files"]

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}
_CSP = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'"
_BODY_FIELDS = {"/api/session": set(), "/api/build": {"session", "config"},
                "/api/train": {"session", "epochs", "max_ms"}, "/api/gradcheck": {"session"},
                "/api/predict": {"session", "X"}}
_UPLOAD_NAME = re.compile(r"^[\w .()-]{1,100}$")


def static_files():
    """The page's files shipped in the package: URL path -> (bytes, content type) (dict)."""
    root = resources.files("deepff.playground") / "static"
    files = {}
    for entry in root.iterdir():
        suffix = os.path.splitext(entry.name)[1]
        if entry.is_file() and suffix in _TYPES:
            files["/" + entry.name] = (entry.read_bytes(), _TYPES[suffix])
    files["/"] = files["/index.html"]
    return files


def _error(status, message):
    exc = ConfigError(message)
    exc.status = status
    return exc


def _int_field(body, key, default, lo, hi):
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value) or not lo <= value <= hi:
        raise ConfigError(f"{key} must be an integer from {lo} to {hi}, got {value!r}")
    return int(value)


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "deepff-playground"
    timeout = 30              # a client that stalls mid-request frees its thread

    # ------------------------------------------------------------ plumbing
    def setup(self):
        super().setup()
        # headers and body go out in two writes: without this, Nagle's algorithm holds the body
        # until the client's delayed ACK, about 40 ms, and the page could not show 20 updates a second
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status, body, content_type, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", _CSP)
        for key, value in extra:
            self.send_header(key, value)
        if status >= 400:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status, obj):
        self._send(status, json.dumps(obj, allow_nan=False).encode("utf-8"), "application/json")

    def _check_origin(self):
        port = self.server.server_address[1]
        hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        host = self.headers.get("Host", "")
        if host.lower() not in hosts:
            raise _error(403, f"refused: Host {host!r} is not this server ({' or '.join(sorted(hosts))}); "
                              "the playground answers only pages it served itself")
        origin = self.headers.get("Origin")
        if origin is not None and origin.lower() not in {"http://" + h for h in hosts}:
            raise _error(403, f"refused: Origin {origin!r} is not this server; the playground answers only "
                              "pages it served itself")

    def _body(self, limit):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise _error(411, "send the body with a Content-Length (chunked bodies are not accepted)")
        length = self.headers.get("Content-Length")
        if length is None:
            raise _error(411, "a Content-Length header is required")
        if not length.isdigit():
            raise _error(400, f"bad Content-Length {length!r}")
        if int(length) > limit:
            raise _error(413, f"request body of {int(length)} bytes is over the limit of {limit} bytes")
        return self.rfile.read(int(length))

    def _json_body(self, path):
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise _error(415, f"send JSON (Content-Type: application/json), got {ctype or 'no Content-Type'!r}")
        raw = self._body(LIMITS["max_json_bytes"])
        try:
            body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant) if raw.strip() else {}
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise _error(400, f"bad JSON: {exc}") from None
        if not isinstance(body, dict):
            raise _error(400, f"the body must be a JSON object, got {type(body).__name__}")
        unknown = sorted(set(body) - _BODY_FIELDS[path])
        if unknown:
            valid = ", ".join(sorted(_BODY_FIELDS[path])) or "none"
            raise _error(400, f"{path}: unknown field {unknown[0]!r}; valid fields: {valid}")
        return body

    def _dispatch(self, handler):
        try:
            self._check_origin()
            handler()
        except ConfigError as exc:
            self._json(exc.status, {"error": str(exc)})
        except (DeepffError, ValueError) as exc:      # the engine's refusals name what is wrong
            self._json(400, {"error": " ".join(str(exc).split())})
        except Exception as exc:   # noqa: BLE001 - one line to the client and the log, and keep serving
            print(f"deepff playground: internal error on {self.path}: {type(exc).__name__}: {exc}", file=sys.stderr)
            self._json(500, {"error": f"internal error ({type(exc).__name__}); the server keeps running"})

    # --------------------------------------------------------------- routes
    def do_GET(self):  # noqa: N802 - http.server's name
        self._dispatch(self._get)

    def do_HEAD(self):  # noqa: N802
        self._dispatch(self._get)

    def do_POST(self):  # noqa: N802
        self._dispatch(self._post)

    def _not_allowed(self):
        raise _error(405, f"method {self.command} is not used here; the page uses GET and POST")

    def do_PUT(self):  # noqa: N802
        self._dispatch(self._not_allowed)

    do_DELETE = do_PATCH = do_OPTIONS = do_PUT  # noqa: N815

    def _route(self):
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        if ".." in path.split("/") or "\\" in path or "\x00" in path:
            raise _error(400, f"path {parts.path!r} reaches outside the page's files")
        return path, {k: v[-1] for k, v in parse_qs(parts.query).items()}

    def _get(self):
        path, query = self._route()
        if path in self.server.files:
            body, ctype = self.server.files[path]
            return self._send(200, body, ctype)
        if path == "/api/options":
            return self._json(200, self.server.options())
        if path == "/api/export":
            session = self.server.sessions.get(query.get("session"))
            with session.lock:
                data = export.model_bytes(session)
            name = f"playground-{session.config['dataset']}-{session.epochs}epochs.npz"
            return self._send(200, data, "application/octet-stream",
                              [("Content-Disposition", f'attachment; filename="{name}"')])
        if path == "/api/code":
            session = self.server.sessions.get(query.get("session"))
            with session.lock:
                return self._json(200, {"python": export.python_code(session), "yaml": export.config_yaml(session),
                                        "epochs": session.epochs})
        raise _error(404, f"no such page or API: {path!r}")

    def _post(self):
        path, query = self._route()
        if path == "/api/upload":
            return self._upload(query)
        if path not in _BODY_FIELDS:
            raise _error(404, f"no such API: {path!r}")
        body = self._json_body(path)
        if path == "/api/session":
            return self._json(200, {"session": self.server.sessions.create().sid})
        session = self.server.sessions.get(body.get("session"))
        with session.lock:
            if path == "/api/build":
                result = session.build(body.get("config", {}))
            elif path == "/api/train":
                epochs = _int_field(body, "epochs", 1, 1, LIMITS["max_epochs_per_request"])
                max_ms = _int_field(body, "max_ms", LIMITS["max_ms_per_request"], 1, LIMITS["max_ms_per_request"])
                result = session.train(epochs, max_ms)
            elif path == "/api/gradcheck":
                result = session.gradcheck()
            else:
                result = {"outputs": session.predict_output(body.get("X"))}
        self._json(200, result)

    def _upload(self, query):
        session = self.server.sessions.get(query.get("session"))
        name = query.get("name", "upload.csv")
        if not _UPLOAD_NAME.match(name) or not name.lower().endswith((".csv", ".tsv", ".txt")):
            raise _error(400, f"upload name {name!r}: give a plain file name ending in .csv, .tsv or .txt")
        raw = self._body(LIMITS["max_upload_bytes"])
        with tempfile.TemporaryDirectory(prefix="deepff-upload-") as tmp:
            path = os.path.join(tmp, name)
            with open(path, "wb") as fh:
                fh.write(raw)
            try:
                table = load_table(path)
            except DeepffError as exc:         # the reader names the file: name the upload, not the temp path
                raise _error(400, str(exc).replace(path, name).replace(tmp + os.sep, "")) from None
        if table.X.shape[0] > LIMITS["max_upload_rows"]:
            raise _error(413, f"{name} has {table.X.shape[0]} rows; the playground takes at most "
                              f"{LIMITS['max_upload_rows']}")
        with session.lock:
            session.table, session.upload_name = table, name
        self._json(200, {"name": name, "rows": int(table.X.shape[0]), "columns": table.feature_names,
                         "target": table.target_name})


class PlaygroundServer(ThreadingHTTPServer):
    """The playground's HTTP server (bound to 127.0.0.1).

    Parameters
    ----------
    port : int
        0 picks a free port (``server_address[1]`` tells which).
    idle_seconds : float
        Sessions unused this long are dropped.
    verbose : bool
        Log every request on stderr.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port=8765, idle_seconds=1800.0, verbose=False):
        self.files = static_files()
        self.sessions = SessionStore(idle_seconds=idle_seconds)
        self.verbose = verbose
        super().__init__(("127.0.0.1", port), _Handler)
        #: set once every activation has taken a training step (see :meth:`warm_up`)
        self.warmed = threading.Event()
        threading.Thread(target=self.warm_up, name="deepff-playground-warm-up", daemon=True).start()

    def warm_up(self):
        """Take one float64 training step with every activation, so a page's first steps are not slow.

        The optional compiled kernels (numba) load on first use, which can
        take a second per activation; without this a learner's first presses
        of play would stall on it.
        """
        from ..layers import Dense
        from ..model import Network

        X = np.array([[0.5, -1.0], [1.0, 2.0], [-0.3, 0.2], [2.0, 0.1]])
        try:
            for act in ACTIVATIONS:
                net = Network([Dense(3, act), Dense(1, "sigmoid")], loss="binary_cross_entropy", dtype="float64",
                              seed=0)
                net.fit(X, [0, 1, 0, 1], epochs=1, batch_size=2, optimizer="adam")
        except Exception as exc:  # noqa: BLE001 - only a speed-up: never stop the server for it
            print(f"deepff playground: warm-up skipped ({type(exc).__name__}: {exc})", file=sys.stderr)
        finally:
            self.warmed.set()

    @property
    def url(self):
        """The page's address (str)."""
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def options(self):
        """What the page offers: sets, features, activations, losses, ... and the limits (dict)."""
        return {"datasets": {k: {"task": t, "classes": c, "about": a} for k, (t, c, a) in DATASETS.items()},
                "features": list(FEATURES), "activations": ACTIVATIONS, "losses": LOSSES,
                "initializers": INITIALIZERS, "optimizers": OPTIMIZERS, "defaults": DEFAULTS, "limits": LIMITS}


def make_server(port=8765, idle_seconds=1800.0, verbose=False):
    """Bind the playground on 127.0.0.1:``port`` and return the server (call ``serve_forever``).

    Parameters
    ----------
    port : int, default 8765
        0 picks a free port (``server.url`` tells which).
    idle_seconds : float, default 1800
        Sessions unused this long are dropped.
    verbose : bool, default False
        Log every request on stderr.

    Returns
    -------
    PlaygroundServer
    """
    return PlaygroundServer(port, idle_seconds, verbose)
