"""deepff playground: build a network in the browser and watch backpropagation learn.

``deepff playground`` serves a page on 127.0.0.1 (:mod:`.server`); every
number on it is computed here, by deepff's own engine: the network is a
:class:`deepff.Network` built from a classic spec (:mod:`.config`), trained by
:meth:`deepff.Network.fit` (:mod:`.sessions`), checked by
:func:`deepff.gradcheck_report` and saved by :func:`deepff.save`
(:mod:`.export`). The page (``static/``) only draws.

Nothing here is imported by the rest of deepff.
"""

__all__ = ["make_server"]


def make_server(port=8765, idle_seconds=1800.0, verbose=False):
    """Bind the playground on 127.0.0.1:``port``; call ``serve_forever`` on the result.

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
    deepff.playground.server.PlaygroundServer
    """
    from .server import make_server as _make

    return _make(port, idle_seconds, verbose)
