"""`i2i serve`: a local web app and HTTP endpoint for translating images and watching runs.

    catalog.py  what the server offers, by name: models and runs (no request path is opened)
    engine.py   image bytes -> PNG bytes through `i2i translate`'s code, one job at a time
    runs.py     a run's curves and latest samples, read-only
    app.py      the Starlette app: the page, the API, its errors and its guards
    server.py   uvicorn on a socket we bind; in the foreground or in a thread
    static/     the page, its script and style (shipped with the package: nothing from a CDN)

Starlette and uvicorn are an optional extra (`pip install -e ".[serve]"`); nothing here
imports them until the server is started, so `i2i --help` stays fast without them.
"""
from __future__ import annotations

from i2i.errors import I2IError

INSTALL_HINT = 'i2i serve needs the web extra: pip install -e ".[serve]" (or: pip install "i2i[serve]")'


def serve(models: list[str] | tuple[str, ...] = (), runs: str | None = None, *, host: str = "127.0.0.1",
          port: int = 7860, device: str = "auto", precision: str = "auto", max_upload_mb: int = 100) -> None:
    """Start the server and serve until Ctrl-C (see `i2i.serve.server.serve`)."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise I2IError(INSTALL_HINT) from None
    from i2i.serve.server import serve as run

    run(models, runs, host=host, port=port, device=device, precision=precision, max_upload_mb=max_upload_mb)
