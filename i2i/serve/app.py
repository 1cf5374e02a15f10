"""The web app: the page, its files and the HTTP API, on Starlette.

    GET  /                      the page (static/index.html; its script and style beside it)
    GET  /api/models            the models, each with its task, scale and directions
    POST /api/translate?model=NAME[&direction=AtoB][&tile=N]   image bytes in, PNG out (other parameters: 400);
                                an animation's or multi-page file's first frame, X-I2I-Frames: its count
    GET  /api/status[?job=ID]   the translation queue (the page says when its job waits)
    GET  /api/runs              the training runs under --runs
    GET  /api/run?name=NAME     a run's step, loss curves (SVG) and latest sample step
    GET  /api/run/sample?name=NAME   its latest sample grid (PNG)

Errors are JSON, {"error": "..."}: 400 a bad image or parameter, 404 an unknown model or
run, 413 an upload over the size limit, 422 an image over the pixel limit, 503 a model whose
file no longer loads (replaced by a broken one: the other models still serve). Models and runs
are found by the names the catalog listed; the page's files are read once, from the
package. Requests whose Host or Origin is not this server are refused (403): a web page
elsewhere cannot use the server through the browser of someone who runs it.
"""
from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import threading
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from i2i.errors import I2IError, ImageReadError, UsageError, one_line
from i2i.serve.catalog import Catalog
from i2i.serve.engine import Engine, ModelUnavailable
from i2i.serve.runs import latest_sample, run_details, run_summary

STATIC_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
                "style.css": "text/css; charset=utf-8"}
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TILE = re.compile(r"[0-9]{1,9}")  # ASCII digits only: "²".isdigit(), but int("²") fails
_TRANSLATE_QUERY = ("model", "direction", "tile")  # anything else is refused, not ignored (outscale=...)
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; "
                               "script-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class ApiError(Exception):
    """An error answered as {"error": message} with an HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def create_app(catalog: Catalog, engine: Engine, *, max_upload_bytes: int, max_pixels: int | None = None,
               hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "[::1]")) -> Starlette:
    """The ASGI app. `hosts`: the names the server may be reached by ("*": any)."""
    files = {name: resources.files("i2i.serve").joinpath("static", name).read_bytes() for name in STATIC_FILES}

    async def page(request: Request) -> Response:
        return _static(files, "index.html")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in files:
            raise ApiError(404, "no such file")
        return _static(files, name)

    async def models(request: Request) -> Response:
        listed = await run_in_threadpool(catalog.models)
        device = await run_in_threadpool(engine.device_name)
        return JSONResponse({"models": [entry.public() for entry in listed.values()], "device": device})

    async def translate(request: Request) -> Response:
        query = request.query_params
        if unknown := sorted(set(query) - set(_TRANSLATE_QUERY)):
            raise ApiError(400, f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                                f"/api/translate takes {', '.join(_TRANSLATE_QUERY)} (i2i translate has the others)")
        entry = await run_in_threadpool(catalog.model, query.get("model", ""))
        if entry is None:
            raise ApiError(404, f"unknown model {query.get('model', '')!r}; GET /api/models lists them")
        direction = query.get("direction") or entry.default_direction
        if direction not in entry.directions:
            raise ApiError(400, f"direction must be one of {', '.join(entry.directions)} for {entry.name}")
        tile = _tile(query.get("tile", "0"))
        job = request.headers.get("x-i2i-job", "")
        job = job if _JOB_ID.fullmatch(job) else f"anon-{id(request)}"
        data = await _body(request, max_upload_bytes)
        info: dict[str, Any] = {}
        try:
            png = await run_in_threadpool(engine.translate, entry, data, direction=direction, tile=tile, job=job,
                                          max_pixels=max_pixels, info=info)
        except ImageReadError as error:
            status = 422 if "image too large" in str(error) else 400  # the reader's pixel guard
            raise ApiError(status, one_line(error) + _form_hint(request)) from None
        except UsageError as error:
            raise ApiError(400, one_line(error)) from None
        except ModelUnavailable as error:  # the server's file, not the request: may work again once it is mended
            raise ApiError(503, one_line(error)) from None
        except asyncio.CancelledError:  # Ctrl-C stopped the server while this waited or ran
            print("i2i serve: stopping; a translation in progress was cancelled", file=sys.stderr, flush=True)
            return _json(503, {"error": "the server is stopping; this translation was cancelled"})
        # an animation or a multi-page file: its first frame was translated, as `i2i translate` says
        frames = {"X-I2I-Frames": str(info["frames"])} if info.get("frames", 1) > 1 else {}
        return Response(png, media_type="image/png", headers=frames)

    async def status(request: Request) -> Response:
        return JSONResponse(engine.status(request.query_params.get("job")))

    routes = [
        Route("/", page),
        Route("/static/{name}", static),
        Route("/api/models", models),
        Route("/api/translate", translate, methods=["POST"]),
        Route("/api/status", status),
        *_run_routes(catalog),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        # import torch and read the model headers now, while the page loads, not at the first click
        warm_up = threading.Thread(target=_warm_up, args=(catalog,), name="i2i-serve-warm-up", daemon=True)
        warm_up.start()
        yield
        # a process that exits while this thread is inside torch aborts ("terminate called without
        # an active exception", exit 134): a Ctrl-C in the first seconds waits for it
        warm_up.join(timeout=60)

    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={ApiError: _api_error, HTTPException: _http_error, I2IError: _i2i_error,
                                        Exception: _internal_error})
    return _Guard(app, hosts)


def _run_routes(catalog: Catalog) -> list[Route]:
    """The training-runs tab's endpoints: the runs the catalog lists, read-only, by name only."""

    async def runs(request: Request) -> Response:
        listed = await run_in_threadpool(catalog.runs)
        return JSONResponse({"runs": await run_in_threadpool(_runs_summary, listed)})

    async def run(request: Request) -> Response:
        entry = await _run_entry(request)
        return JSONResponse(await run_in_threadpool(run_details, entry.path))

    async def sample(request: Request) -> Response:
        entry = await _run_entry(request)
        found = await run_in_threadpool(latest_sample, entry.path)
        if found is None:
            raise ApiError(404, f"run {entry.name!r} has no samples yet")
        return Response(found, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def _run_entry(request: Request):
        name = request.query_params.get("name", "")
        entry = await run_in_threadpool(catalog.run, name)
        if entry is None:
            raise ApiError(404, f"unknown run {name!r}; GET /api/runs lists them")
        return entry

    return [Route("/api/runs", runs), Route("/api/run", run), Route("/api/run/sample", sample)]


class _Guard:
    """ASGI middleware: refuse a foreign Host (DNS rebinding) or Origin (another site's page
    posting to this server); add the security headers to every answer."""

    def __init__(self, app: Any, hosts: tuple[str, ...]):
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        host = headers.get("host", "")
        problem = None
        if "*" not in self.hosts and _hostname(host) not in self.hosts:
            problem = f"host {host!r} is not this server"
        origin = headers.get("origin")
        if origin is not None and origin.split("://", 1)[-1] != host:
            problem = f"requests from {origin} are not accepted"
        if problem:
            await _json(403, {"error": problem})(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      *[(k.lower().encode(), v.encode()) for k, v in _SECURITY_HEADERS.items()]]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _hostname(host: str) -> str:
    """The name in a Host header, without its port ("[::1]:80" -> "[::1]")."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def _static(files: dict[str, bytes], name: str) -> Response:
    return Response(files[name], media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})


def _tile(value: str) -> int:
    """The query's tile=, refused (400) by the rule `i2i translate --tile` and the Python API follow
    (imported here: i2i.infer.tiles imports torch, which the server loads after it starts)."""
    from i2i.infer.tiles import TILE_RULE, check_tile

    if not _TILE.fullmatch(value):
        raise ApiError(400, f"tile must be {TILE_RULE}")
    try:
        return check_tile(int(value))
    except UsageError as error:
        raise ApiError(400, one_line(error)) from None


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed `limit` bytes."""
    too_large = ApiError(413, f"upload too large: over the server's limit of {limit:,} bytes")
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "send the image file's bytes as the request body (curl --data-binary @photo.jpg), "
                            "not as a form")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    if not body:
        raise ApiError(400, "no image: send the image file's bytes as the request body")
    return bytes(body)


def _form_hint(request: Request) -> str:
    """For an unreadable body sent as a form (`curl -d @photo.jpg`, which also drops the file's line
    breaks and so damages every image): how to send the file as it is; else ""."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return ""
    return (" (it came as form data: curl -d/--data removes a file's line breaks; "
            "send the file as it is with --data-binary @photo.jpg)")


def _runs_summary(listed: dict) -> list[dict]:
    return [{"name": name, **run_summary(entry.path)} for name, entry in listed.items()]


def _warm_up(catalog: Catalog) -> None:
    try:
        catalog.models()
    except Exception as error:  # noqa: BLE001  the page's request will get it too
        print(f"i2i serve: cannot list the models: {one_line(error, typed=True)}", flush=True)


def _json(status: int, body: dict) -> JSONResponse:
    return JSONResponse(body, status_code=status)


async def _api_error(request: Request, error: ApiError) -> Response:
    return _json(error.status, {"error": str(error)})


async def _http_error(request: Request, error: HTTPException) -> Response:
    return _json(error.status_code, {"error": error.detail})


async def _i2i_error(request: Request, error: I2IError) -> Response:
    return _json(500, {"error": one_line(error)})


async def _internal_error(request: Request, error: Exception) -> Response:
    return _json(500, {"error": f"internal error: {one_line(error, 300, typed=True)}"})
