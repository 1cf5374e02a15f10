"""Running the app under uvicorn: on a socket we bind ourselves (port 0 picks a free one, and
a taken port is one clear line), in the foreground for `i2i serve` or in a thread."""
from __future__ import annotations

import ipaddress
import socket
import sys
import threading
import time
from typing import Any

import uvicorn

from i2i.errors import I2IError
from i2i.serve.app import create_app
from i2i.serve.catalog import Catalog
from i2i.serve.engine import Engine

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    """Whether `host` is only reachable from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; a one-line I2IError if that is not possible."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError as error:
        sock.close()
        reason = "is in use (pick another with --port)" if port and error.errno in (98, 48) else error.strerror
        raise I2IError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def make_server(models: list[str] | tuple[str, ...] = (), runs: str | None = None, *, host: str = "127.0.0.1",
                device: str = "auto", precision: str = "auto", max_upload_bytes: int = 100 << 20,
                max_pixels: int | None = None) -> uvicorn.Server:
    """A uvicorn server for the app (not started); bad --models / --runs / --device are one-line errors."""
    if device not in ("auto", "cpu"):  # checked now, not at the first request (this imports torch)
        from i2i.device import resolve_device

        resolve_device(device)
    catalog = Catalog(models, runs)
    engine = Engine(device=device, precision=precision)
    hosts = LOOPBACK_NAMES + ((host,) if is_loopback(host) else ("*",))
    return uvicorn_server(create_app(catalog, engine, max_upload_bytes=max_upload_bytes, max_pixels=max_pixels,
                                     hosts=hosts))


def uvicorn_server(app: Any) -> uvicorn.Server:
    """uvicorn for `app`: warnings only (no line per request), a short graceful shutdown."""
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                         timeout_graceful_shutdown=5))


def serve(models: list[str] | tuple[str, ...] = (), runs: str | None = None, *, host: str = "127.0.0.1",
          port: int = 7860, device: str = "auto", precision: str = "auto", max_upload_mb: int = 100) -> None:
    """`i2i serve`: print the address, serve until Ctrl-C."""
    server = make_server(models, runs, host=host, device=device, precision=precision,
                         max_upload_bytes=max_upload_mb << 20)
    sock = bind(host, port)
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    exposed = not is_loopback(host)
    try:  # from the first line on, Ctrl-C is the way to stop: a client may act on the address at once
        print(f"i2i serve: http://{shown}:{sock.getsockname()[1]}/  (models load when first used; Ctrl-C stops)",
              flush=True)
        if exposed:
            print(f"warning: listening on {host}: anyone who can reach this port can translate with these models "
                  "and see these runs", file=sys.stderr, flush=True)
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down, then raises the signal again: that was the way to stop
        pass
    print("i2i serve: stopped", flush=True)


class ServerThread:
    """A server running in a background thread (tests, notebooks): `.url`, `.stop()`."""

    def __init__(self, server: uvicorn.Server, host: str = "127.0.0.1", port: int = 0):
        self.server, self.sock = server, bind(host, port)
        self.url = f"http://{host}:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=server.run, kwargs={"sockets": [self.sock]}, daemon=True,
                                       name="i2i-serve")
        self.thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise I2IError("the server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
