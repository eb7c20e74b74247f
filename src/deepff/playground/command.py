"""The ``deepff playground`` command: serve the playground page and open it in the browser."""

from __future__ import annotations

import sys

__all__ = ["add_parser", "run"]


def _port(text):
    import argparse

    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535 (0 picks a free one), got {text!r}")
    return int(text)


def add_parser(subparsers):
    """Add the ``playground`` subcommand to the ``deepff`` command's subparsers.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
    """
    p = subparsers.add_parser("playground", help="build a network in the browser and watch it learn")
    p.add_argument("--port", type=_port, default=8765, help="port on 127.0.0.1 (default 8765; 0 picks a free one)")
    p.add_argument("--no-browser", action="store_true", help="print the address, do not open a browser")
    p.add_argument("--verbose", action="store_true", help="log every request on stderr")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def run(args):
    """Serve until Ctrl-C.

    Parameters
    ----------
    args : argparse.Namespace
        With ``port``, ``no_browser`` and ``verbose``.

    Returns
    -------
    int
        0 once stopped.
    """
    from .server import make_server

    try:
        server = make_server(args.port, verbose=args.verbose)
    except OSError as exc:
        raise OSError(f"cannot serve on 127.0.0.1:{args.port}: {exc.strerror or exc}; "
                      "choose another --port (0 picks a free one)") from None
    print(f"deepff playground: serving on {server.url} (Ctrl-C to stop)", flush=True)
    if not args.no_browser:
        import webbrowser

        if not webbrowser.open(server.url):
            print("deepff playground: no browser found; open the address above yourself", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("deepff playground: stopped", flush=True)
    finally:
        server.server_close()
    return 0
