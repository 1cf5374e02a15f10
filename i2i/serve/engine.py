"""Image bytes in, PNG bytes out, through the code `i2i translate` runs, one job at a time.

A request's image is decoded by `i2i.data.io` (the reader's guards: pixel limit, bad files),
translated by `i2i.infer.images.translate_batch` with the model's `translate_arrays` (what
`Translator.translate_folder` hands its folder runner) and encoded by `io.write_image`, so
the bytes are those of the file `i2i translate MODEL image.png out/` writes: 16-bit, gray
and RGBA come back as it writes them.

Models load when first asked for and stay loaded (again when their file changes, e.g. a run
saving a newer model). A model whose file no longer loads (replaced by a broken one, truncated,
deleted) is a `ModelUnavailable` that names it, without the server's paths; its old weights
are dropped and the other models serve on. Translations take turns on the device (one lock):
on a CPU two at once would only share the same cores, each slower, and hold twice the memory.
The queue is visible (`status`), so the page can say when a job waits.
"""
from __future__ import annotations

import functools
import sys
import threading
import time
from collections import OrderedDict
from typing import Any

from i2i.errors import I2IError, one_line
from i2i.serve.catalog import ModelEntry

TILE_PAD = 16  # `i2i translate`'s default --tile-pad


class ModelUnavailable(I2IError):
    """A listed model that cannot be loaded now: the server's fault, not the request's (the
    app answers 503), and in one line that names the model and what is wrong with its file."""


class Engine:
    """Loaded models, the turn-taking lock and the queue of jobs waiting for it."""

    def __init__(self, device: str = "auto", precision: str = "auto"):
        self.device, self.precision = device, precision
        self.turn = threading.Lock()  # held by the job that translates; the others wait for it
        self._state = threading.Lock()  # guards the fields below
        self._loaded: dict[tuple[str, str], tuple[int, Any]] = {}  # (ref, direction) -> (mtime_ns, Translator)
        self._jobs: OrderedDict[str, str] = OrderedDict()  # job id -> phase, in arrival order

    def device_name(self) -> str:
        """The device models run on ("cpu", "cuda:0", ...); imports torch."""
        from i2i.device import resolve_device

        return str(resolve_device(self.device))

    def status(self, job: str | None = None) -> dict[str, Any]:
        """The queue: how many jobs are in it, and where `job` stands: its phase and, while it
        waits, how many jobs that came before it still wait or translate (0 once it runs)."""
        with self._state:
            if job not in self._jobs:
                return {"jobs": len(self._jobs), "job": None}
            phase, ahead = self._jobs[job], 0
            if phase == "waiting":
                for other, other_phase in self._jobs.items():
                    if other == job:
                        break
                    ahead += other_phase != "encoding"  # encoding happens outside the turn
            return {"jobs": len(self._jobs), "job": {"position": ahead, "phase": phase}}

    def translate(self, entry: ModelEntry, data: bytes, *, direction: str, tile: int, job: str,
                  max_pixels: int | None = None, info: dict[str, Any] | None = None) -> bytes:
        """The PNG `i2i translate` writes for the image file `data` (errors: I2IError). `info`, if
        given, gets "frames": how many frames or pages the file held (the first is translated)."""
        from i2i.data import io
        from i2i.infer.images import translate_batch

        image = io.decode_bytes(data, max_pixels=max_pixels)  # before waiting: a bad file fails at once
        if info is not None:
            info["frames"] = image.frames
        self._set(job, "waiting")
        try:
            with self.turn:
                self._set(job, "loading model")
                translator = self._translator(entry, direction)
                self._set(job, "translating")
                translate = functools.partial(translator.translate_arrays, tile=tile, tile_pad=TILE_PAD)
                ((pixels, alpha),) = translate_batch([image], translate=translate)
            self._set(job, "encoding")
            return _png(pixels, alpha, image.icc)
        finally:
            with self._state:
                self._jobs.pop(job, None)

    def _set(self, job: str, phase: str) -> None:
        with self._state:
            self._jobs[job] = phase

    def _translator(self, entry: ModelEntry, direction: str) -> Any:
        """The loaded model for `entry` and `direction`, loaded (again) if its file is new."""
        from i2i.infer import load_model

        try:
            mtime = entry.path.stat().st_mtime_ns
        except OSError as error:
            raise ModelUnavailable(f"model {entry.name!r}: cannot read its file ({error.strerror})") from None
        key = (entry.ref, direction)
        loaded = self._loaded.get(key)
        if loaded is None or loaded[0] != mtime:
            self._loaded.pop(key, None)  # its file changed: never the old weights, whatever the new file holds
            started = time.perf_counter()
            try:
                translator = load_model(_model_file(entry), device=self.device, precision=self.precision,
                                        direction=direction)
            except I2IError as error:
                print(f"i2i serve: cannot load {entry.name} ({direction}): {one_line(error)}", file=sys.stderr,
                      flush=True)  # the whole story, paths included, for whoever runs the server
                raise ModelUnavailable(f"model {entry.name!r} cannot be loaded: {_reason(error, entry)}") from None
            self._loaded[key] = (mtime, translator)
            print(f"i2i serve: loaded {entry.name} ({direction}) on {translator.device} "
                  f"in {time.perf_counter() - started:.1f} s", flush=True)
        return self._loaded[key][1]


def _model_file(entry: ModelEntry) -> str:
    """The file to load: a zoo model's through the zoo (which checks its sha256, as for
    `i2i translate NAME`), but only while it is here: the server downloads nothing."""
    if entry.source != "zoo":
        return entry.ref
    if not entry.path.is_file():
        raise I2IError("its file is gone")  # said of the model by `_translator`
    from i2i.infer import zoo_model_path

    return str(zoo_model_path(entry.ref))


def _reason(error: I2IError, entry: ModelEntry) -> str:
    """What `error` says is wrong, without the model file's path (the API shows names only):
    "/srv/m/sr.safetensors: not a safetensors model file (...)" -> "not a safetensors model file (...)"."""
    path = str(entry.path)
    return one_line(error).removeprefix(f"{path}: ").replace(path, "its file")


def _png(pixels: Any, alpha: Any, icc: bytes | None) -> bytes:
    """The PNG `io.write_image` writes (the reader's only encoder), as bytes, with the upload's
    colour profile where it fits."""
    from i2i.data import io

    return io.encode_image(".png", pixels, alpha, icc=icc)
