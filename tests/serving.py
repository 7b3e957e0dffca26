"""A real server for tests: the app under the embedded server on a free loopback port."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def served(app) -> Iterator[str]:
    """Serve `app` with the `EmbeddedServer` that `inferloop up` uses; yield its base URL.

    The app's lifespan (background workers included) starts before the URL is
    yielded and has finished when the block exits.
    """
    from inferloop.app.embedded import EmbeddedServer

    server = EmbeddedServer(app, host="127.0.0.1", port=0)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
