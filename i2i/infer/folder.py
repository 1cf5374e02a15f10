"""The folder runner behind `Translator.translate_folder`: which files go where, and the
threads that keep the model busy.

The calling thread only plans and keeps count; thread pools decode ahead, compute and
encode behind (torch, Pillow and zlib release the GIL), as Real-ESRGAN keeps its reader
and writer threads apart from compute. Images of one size are batched; a bad file costs
one line naming it and the run goes on. A huge image going to a PNG skips the writers: the
model thread hands its rows to the file as the tiles are computed (`STREAM_PIXELS`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from i2i.atomic import WriteError, remove_stale_temp_files, temp_stem
from i2i.data import io
from i2i.device import torch_threads
from i2i.errors import I2IError, UsageError
from i2i.infer.images import output_size
from i2i.progress import EVERY, line, watched

OUTPUT_EXTENSIONS = ("png", "jpg", "same")

_READERS = 2  # decode threads (decoding releases the GIL)
_WRITERS = 2  # encode/write threads

# decoded images of one size -> (pixels, alpha) to write, one per image
BatchCall = Callable[[list[io.Image]], list[tuple[np.ndarray, np.ndarray | None]]]
# one decoded image (no alpha) -> its output rows handed to write_rows(rows, height), top to bottom
StreamCall = Callable[[io.Image, Callable[[np.ndarray, int], None]], None]

# The most pixels a side that the encoders behind these extensions take (libjpeg-turbo's
# JPEG_MAX_DIMENSION, libwebp's WEBP_MAX_DIMENSION; AVIF: what libavif decodes by default, so
# the file can be opened again): a larger output is refused before it is
# computed. PNG has no such limit (TIFF and BMP stop at 4 GiB of data, not at a side).
MAX_SIDE: dict[str, tuple[str, int]] = {".jpg": ("JPEG", 65500), ".jpeg": ("JPEG", 65500), ".webp": ("WebP", 16383),
                                         ".avif": ("AVIF", 32768)}

# Inputs this large (4096 x 4096) whose output is a PNG go to their file a row of tiles at a
# time (io.stream_png): the result of a huge image never exists whole in memory.
STREAM_PIXELS = 4096 * 4096


@dataclass
class Summary:
    """What a folder run did; `failures` holds the one-line messages."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    alpha_dropped: int = 0  # transparent images written to a format without alpha (JPEG, BMP)
    frames_dropped: int = 0  # inputs of several frames or pages, of which the first was translated

    def __str__(self) -> str:
        rate = f" ({self.done / self.seconds:.2f} images/s)" if self.done and self.seconds > 0 else ""
        dropped = (f"; the transparency of {self.alpha_dropped} image{'s' if self.alpha_dropped > 1 else ''} "
                   "was dropped (JPEG and BMP have none; a PNG output keeps it)") if self.alpha_dropped else ""
        frames = (f"; {self.frames_dropped} input{'s' if self.frames_dropped > 1 else ''} held several frames or pages "
                  "(an animation, a multi-page TIFF): the first was translated") if self.frames_dropped else ""
        return (f"done {self.done}, skipped {self.skipped}, failed {self.failed} "
                f"in {self.seconds:.1f} s{rate}{dropped}{frames}")


def run_folder(src: str | os.PathLike, dst: str | os.PathLike, compute: BatchCall, *, ext: str, suffix: str,
               batch_size: int, overwrite: bool, quality: int, workers: int | None, default_workers: int,
               split_threads: bool, progress: bool, ab_side: str | None = None,
               stream: StreamCall | None = None, scale: int = 1, outscale: float | None = None,
               keep_metadata: bool = False) -> Summary:
    """`Translator.translate_folder` (see there), given how a batch is computed and, for
    huge images going to PNG files (`STREAM_PIXELS`), how one is streamed to its file.

    `workers` model workers (or `default_workers`, never more than there are batches); with
    `split_threads` (the CPU), the torch threads are split between them for the run. `scale`:
    the model's (an output is the input's size times it), or `outscale` where one is asked for
    (`i2i.infer.images.output_size`), so that an output too large for its format (`MAX_SIDE`) or
    under 1 px fails before it is computed.
    """
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, not {batch_size}")
    if not 1 <= quality <= 100:
        raise UsageError(f"quality must be 1..100, not {quality}")
    if workers is not None and workers < 1:
        raise UsageError(f"workers must be >= 1, not {workers}")
    if ab_side not in (None, "A", "B"):
        raise UsageError(f"ab_side must be A or B, not {ab_side!r}")
    start = time.perf_counter()
    jobs, unwritable, note = _plan(src, dst, ext, suffix)
    if progress and note:  # the folder's HEIC photos would go without a word
        sys.stderr.write(f"note: {note}; translating the other {len(jobs)}\n")
    targets: dict[Path, set[str]] = {}
    for job in jobs:
        targets.setdefault(job.dst.parent, set()).add(temp_stem(job.dst.name))
    for folder, names in targets.items():  # what a killed run was writing (not a live one's)
        remove_stale_temp_files(folder, names)
    todo = [job for job in jobs if overwrite or not job.dst.exists()]
    if todo:
        _check_writable(todo[0].dst.parent)
    workers = min(workers or default_workers, max(1, -(-len(todo) // batch_size)))
    run = FolderRun(compute, batch_size=batch_size, workers=workers, quality=quality, progress=progress,
                    total=len(todo) + len(unwritable), ab_side=ab_side, stream=stream, scale=scale,
                    outscale=outscale, keep_metadata=keep_metadata)
    run.summary.skipped = len(jobs) - len(todo)
    for message in unwritable:  # in the total too, as the summary counts them
        run.fail(message)
    split = max(1, torch.get_num_threads() // workers) if split_threads else 0  # model workers start after this
    try:
        with torch_threads(split), _Heartbeat(run) if progress and run.bar.disable else contextlib.nullcontext():
            run.run(todo)
    except KeyboardInterrupt:  # Ctrl-C: a log should say what is there, and that a rerun continues
        run.bar.close()
        if progress:
            sys.stderr.write(f"stopped after {run.summary.done} of {len(todo)} images were written to {dst}; "
                             "run the same command again to continue (written images are skipped)\n")
        raise
    finally:
        run.bar.close()
    run.summary.seconds = time.perf_counter() - start
    if progress:
        print(run.summary, file=sys.stderr, flush=True)
    return run.summary


@dataclass
class _Job:
    src: Path
    dst: Path


class FolderRun:
    """One run's pools, its batches and writes in flight, its counts and its progress bar."""

    def __init__(self, compute: BatchCall, *, batch_size: int, workers: int, quality: int, progress: bool,
                 total: int, ab_side: str | None = None, stream: StreamCall | None = None, scale: int = 1,
                 outscale: float | None = None, keep_metadata: bool = False):
        from tqdm import tqdm

        self.compute, self.batch_size, self.workers, self.quality = compute, batch_size, workers, quality
        self.ab_side, self.total, self.stream, self.scale = ab_side, total, stream, scale
        self.outscale, self.keep_metadata = outscale, keep_metadata
        self.alpha_dropped: set[Path] = set()  # outputs whose format has no alpha: their inputs had one
        self.lock = threading.Lock()  # counts: the writer threads count their files as they are written
        self.prefetch = max(4, 2 * batch_size * workers)  # images decoded ahead or waiting for a batch
        self.summary = Summary()
        on_terminal = progress and watched()
        self.bar = tqdm(total=total, unit="img", disable=not on_terminal, file=sys.stderr,
                        dynamic_ncols=True)  # its rate is images/s
        self.runs: deque[tuple[list[tuple[_Job, io.Image]], Future]] = deque()
        self.writes: deque[tuple[_Job, Future]] = deque()

    def fail(self, message: str) -> None:
        """Count a failure and print its line (above the bar, if there is one); the bar moves on."""
        message = io.shown_path(message)  # one line, whatever a name holds
        with self.lock:
            self.summary.failed += 1
            self.summary.failures.append(message)
            self.bar.update(1)
        if self.bar.disable:
            sys.stderr.write(f"failed: {message}\n")  # one write, as the heartbeat's lines
            sys.stderr.flush()
        else:
            self.bar.write(f"failed: {message}", file=sys.stderr)

    def _done(self) -> None:
        """Count an image as written when it is, from the thread that wrote it: the progress line
        is right while the model thread waits for a slow batch and no one collects the writes."""
        with self.lock:
            self.summary.done += 1
            self.bar.update(1)

    def run(self, todo: list[_Job]) -> None:
        """Translate and write every job; return when all writes are done."""
        with ThreadPoolExecutor(_READERS, thread_name_prefix="i2i-read") as read_pool, \
                ThreadPoolExecutor(self.workers, thread_name_prefix="i2i-model") as self._model_pool, \
                ThreadPoolExecutor(_WRITERS, thread_name_prefix="i2i-write") as self._write_pool:
            reads: deque[tuple[_Job, Future]] = deque()
            try:
                self._read(iter(todo), read_pool, reads)
                self._finish(limit=0)
                self._collect(limit=0)
            finally:
                for _, future in [*reads, *self.runs, *self.writes]:
                    future.cancel()

    def _read(self, queue: Iterator[_Job], read_pool: ThreadPoolExecutor, reads: deque[tuple[_Job, Future]]) -> None:
        """Decode ahead; hand same-size images to the model in batches, in the order read."""
        groups: dict[tuple, list] = {}  # same-size images waiting for a full batch
        while True:
            while len(reads) < self.prefetch and (job := next(queue, None)) is not None:
                reads.append((job, read_pool.submit(io.read_image, job.src)))
            if not reads:
                break
            job, future = reads.popleft()
            try:
                image = future.result()
            except Exception as error:
                self.fail(io.file_problem(job.src, error))
                continue
            if self.ab_side is not None:
                image = _half(image, self.ab_side)
            if not self.keep_metadata:
                image = dataclasses.replace(image, exif=None)
            if image.alpha is not None and job.dst.suffix.lower() in io.NO_ALPHA_EXTENSIONS:  # not computed to be dropped
                if image.alpha.min() < np.iinfo(image.alpha.dtype).max:  # an opaque one loses nothing
                    self.alpha_dropped.add(job.dst)
                image = dataclasses.replace(image, alpha=None)
            if (problem := self._size_problem(job, image)) is not None:
                self.fail(problem)
                continue
            self.summary.frames_dropped += image.frames > 1  # said in the summary line
            if self._streams(job, image):
                self.runs.append(([(job, image)], self._model_pool.submit(self._stream_to_file, job, image)))
                self._finish(limit=self.workers)
                continue
            key = (image.pixels.shape, image.alpha is None)
            groups.setdefault(key, []).append((job, image))
            if len(groups[key]) >= self.batch_size:
                self._submit(groups.pop(key))
            elif sum(len(g) for g in groups.values()) > self.prefetch:
                self._submit(groups.pop(next(iter(groups))))  # the oldest group: bound memory
        for group in groups.values():
            self._submit(group)

    def _submit(self, group: list[tuple[_Job, io.Image]]) -> None:
        self.runs.append((group, self._model_pool.submit(self.compute, [image for _, image in group])))
        self._finish(limit=self.workers)  # one batch waits for each worker; the next is being read

    def _streams(self, job: _Job, image: io.Image) -> bool:
        height, width = image.pixels.shape[:2]
        return (self.stream is not None and image.alpha is None and job.dst.suffix.lower() == ".png"
                and height * width >= STREAM_PIXELS)

    def _size_problem(self, job: _Job, image: io.Image) -> str | None:
        """Why this image's output cannot be made (outscaled under 1 px) or encoded in its format
        (`MAX_SIDE`), known from its size, the model's scale and the outscale: one line now, not
        after the compute."""
        try:
            height, width = output_size(*image.pixels.shape[:2], self.scale, self.outscale)
        except UsageError as error:
            return f"{io.shown_path(job.src)}: {error}"
        name, limit = MAX_SIDE.get(job.dst.suffix.lower(), ("", 0))
        if not limit or max(height, width) <= limit:
            return None
        return (f"{io.shown_path(job.src)}: its output would be {width}x{height} px; {name} holds at most "
                f"{limit} px a side ({io.shown_path(job.dst)}); write it as PNG or TIFF")

    def _stream_to_file(self, job: _Job, image: io.Image) -> None:
        """Translate one huge image straight into its PNG file; None: nothing left to write."""
        assert self.stream is not None
        with io.stream_png(job.dst, image.icc, image.exif) as write_rows:
            self.stream(image, write_rows)

    def _finish(self, limit: int) -> None:
        """Hand the oldest batches' outputs to the writers until at most `limit` run."""
        while len(self.runs) > limit:
            group, future = self.runs.popleft()
            try:
                outputs = future.result()
            except Exception as error:  # one batch failing (e.g. out of memory) fails its images only
                self._stop_if_no_room(error)
                for job, _ in group:
                    self.fail(io.file_problem(job.src, error))
                continue
            if outputs is None:  # streamed to its file already
                self._done()
                continue
            for (job, image), (pixels, alpha) in zip(group, outputs):
                if job.dst in self.alpha_dropped:
                    self.summary.alpha_dropped += 1
                write = self._write_pool.submit(self._write, job.dst, pixels, alpha, image.icc, image.exif)
                self.writes.append((job, write))
            self._collect(limit=4 * self.batch_size * self.workers)

    def _write(self, path: Path, pixels: np.ndarray, alpha: np.ndarray | None, icc: bytes | None,
               exif: bytes | None) -> None:
        """Write one output with its input's colour profile (where it fits the output's channels)
        and EXIF (None unless keep_metadata); not the input image itself, whose pixels can go."""
        io.write_image(path, pixels, alpha, quality=self.quality, icc=icc, exif=exif)
        self._done()

    def _collect(self, limit: int) -> None:
        """Wait for the oldest writes until at most `limit` are pending, and take those finished:
        a failed write's line comes as soon as the model thread is free."""
        while self.writes and (len(self.writes) > limit or self.writes[0][1].done()):
            job, future = self.writes.popleft()
            try:
                future.result()  # counted as done by the writer thread
            except Exception as error:
                self._stop_if_no_room(error)
                self.fail(io.file_problem(job.src, error))

    def _stop_if_no_room(self, error: Exception) -> None:
        """A full or read-only disk fails every later write too: stop at the first, in one line,
        rather than compute the rest for nothing (what is written stays; a rerun continues)."""
        if isinstance(error, WriteError) and error.no_room:
            raise I2IError(f"{error}; stopped after {self.summary.done} images were written "
                           "(run the same command again, once there is room, to continue)") from None


def _check_writable(folder: Path) -> None:
    """One line now, not one per image after each is computed, for an output folder that cannot
    be written (read-only, no permission, full)."""
    probe = folder / f".i2i-write-test.{os.getpid()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise I2IError(f"{folder}/: cannot write there ({error.strerror or error}); nothing was translated") from None


def check_paths(src: str | os.PathLike, dst: str | os.PathLike, ext: str = "png", suffix: str = "") -> bool:
    """Refuse, in one line, a run whose paths or names cannot work, before a model loads or
    anything is listed; True if `dst` names the output file of the one image `src`.

    `dst` names that file when it has an image extension; an existing folder, a name without
    an extension or one ending in a slash is the output folder; another extension is a mistake
    (out.gif would become a folder). The output folder must be one, or be possible to make."""
    if ext not in OUTPUT_EXTENSIONS:
        raise UsageError(f"ext must be one of {', '.join(OUTPUT_EXTENSIONS)}, not {ext!r}")
    if any(part in suffix for part in ("/", "\\", "..")):  # outputs would leave dst or land on each other
        raise UsageError(f"--suffix must not contain '/', '\\' or '..', not {suffix!r}")
    given, src_given, src, dst = str(dst), str(src), Path(src), Path(dst)
    if not src.exists():
        broken = " (a symbolic link to nothing, or a loop of links)" if src.is_symlink() else ""
        hint = _TILDE_HINT if _unexpanded_tilde(src_given) else ""
        raise I2IError(f"{src}: no such file or folder{broken}{hint}")
    if tilde := _unexpanded_tilde(given):  # it would make a folder named ~ here
        raise UsageError(f"{given}: would make a folder named {tilde} here{_TILDE_HINT}")
    if not src.is_dir() and not src.is_file():  # reading it could block forever (a FIFO)
        raise I2IError(f"{src}: not a regular file or folder (a pipe, socket or device), not an image file")
    if src.is_dir() and _real(src) == _real(dst):
        raise UsageError(f"{dst}: the output folder is the input folder; give another one (a sub-folder works)")
    to_file = src.is_file() and bool(dst.suffix) and not given.endswith(("/", os.sep)) and not dst.is_dir()
    if to_file and dst.suffix.lower() not in io.IMAGE_EXTENSIONS:
        raise UsageError(f"{dst}: cannot write {dst.suffix} images; end the output file's name in one of "
                         f"{', '.join(sorted(io.IMAGE_EXTENSIONS))}, or give a folder (no extension, or a final /)")
    folder = dst.parent if to_file else dst
    existing = next((p for p in (folder, *folder.parents) if os.path.exists(p)), None)
    if existing is not None and not existing.is_dir():
        raise UsageError(f"{existing}: exists and is not a folder")
    return to_file


_TILDE_HINT = " (the shell did not expand ~: write it without quotes or use $HOME)"


def _unexpanded_tilde(typed: str) -> str:
    """The first part of a path as typed when it is a ~ the shell would have expanded ('~',
    '~user') had it not been quoted, and it names nothing here (i2i does not expand it, as most
    tools do not); else "". './~' is a folder named ~ asked for, not a quoted ~."""
    first = typed.replace(os.sep, "/").split("/")[0]
    quoted = first.startswith("~") and os.path.expanduser(first) != first and not os.path.lexists(first)
    return first if quoted else ""


def _plan(src: str | os.PathLike, dst: str | os.PathLike, ext: str,
          suffix: str) -> tuple[list[_Job], list[str], str]:
    """The (input, output) pairs, one message per input whose output another input takes
    or whose output name is too long for the file system (known now, not after the compute),
    and `io.unread_note` of the files found in formats i2i does not read (the one walk of SRC).
    No output may be an input: the run is refused before anything is written; so is a folder
    without images, where nothing would be done."""
    to_file = check_paths(src, dst, ext, suffix)
    src, dst = Path(src), Path(dst)
    unread: dict[str, int] = {}
    jobs, unwritable = _pairs(src, dst, ext, suffix, to_file, unread)
    limit = _name_max(dst.parent if to_file else dst)
    fitting: list[_Job] = []
    for job in jobs:
        if (size := len(os.fsencode(job.dst.name))) <= limit:
            fitting.append(job)
        else:
            unwritable.append(f"{io.shown_path(job.src)}: {io.shown_path(job.dst)}: cannot write the file "
                              f"(its name is {size} bytes; the file system allows {limit})")
    jobs = fitting
    if not jobs and not unwritable:
        raise I2IError(f"{src}: no images in this folder or its sub-folders"
                       f"{io.no_images_hint(src) or ' (' + ', '.join(sorted(io.IMAGE_EXTENSIONS)) + ')'}")
    inputs = {_real(job.src) for job in jobs}
    for job in jobs:
        if _real(job.dst) in inputs:
            raise UsageError(f"{io.shown_path(job.dst)}: this output would overwrite an input image; "
                             "choose another output")
    return jobs, unwritable, io.unread_note(unread)


def _pairs(src: Path, dst: Path, ext: str, suffix: str, to_file: bool,
           unread: dict[str, int] | None = None) -> tuple[list[_Job], list[str]]:
    if src.is_file():
        if to_file:  # OUTPUT names the output file
            return [_Job(src, dst)], []
        return [_Job(src, dst / _output_name(src, ext, suffix))], []
    skip = _real(dst)
    jobs: list[_Job] = []
    taken: dict[Path, Path] = {}
    collisions: list[str] = []
    for path in io.list_images(src, recursive=True, unread=unread):
        if skip in _real(path).parents:
            continue  # OUTPUT inside INPUT: never translate our own outputs on a rerun
        out = dst / path.relative_to(src).parent / _output_name(path, ext, suffix)
        if out in taken:  # true whether the other file is translated or fails
            collisions.append(f"{io.shown_path(path)}: {io.shown_path(out)} is also the output of "
                              f"{io.shown_path(taken[out])}; rename one (or use --ext same, or a --suffix)")
            continue
        taken[out] = path
        jobs.append(_Job(path, out))
    return jobs, collisions


def _name_max(folder: Path) -> int:
    """The longest file name (bytes) the file system of `folder`, or of the nearest folder
    above it that exists, allows; 255 (most file systems) where it does not say."""
    existing = next((p for p in (folder, *folder.parents) if p.is_dir()), Path("."))
    try:
        limit = os.pathconf(existing, "PC_NAME_MAX")
    except (AttributeError, ValueError, OSError):  # Windows has no pathconf
        return 255
    return limit if limit > 0 else 255


def _real(path: Path) -> Path:
    """The path with its links followed, as far as they go: a loop of links or one to nothing
    is left for the reader to report (one line naming it), where Path.resolve() raises."""
    return Path(os.path.realpath(path))


def _half(image: io.Image, side: str) -> io.Image:
    """The A (left) or B (right) half of a side-by-side pair; an odd last column is dropped,
    as the reference's aligned dataset does."""
    width = image.pixels.shape[1] // 2
    cut = slice(0, width) if side == "A" else slice(width, 2 * width)
    alpha = None if image.alpha is None else image.alpha[:, cut]
    return dataclasses.replace(image, pixels=image.pixels[:, cut], alpha=alpha)


class _Heartbeat:
    """Where no progress bar is drawn (stderr not a terminal: a log, a pipe), one progress
    line at least every `every` seconds, as long as the run lasts."""

    def __init__(self, run: FolderRun, every: float = EVERY) -> None:
        self.run, self.every = run, every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="i2i-progress", daemon=True)

    def _beat(self) -> None:
        start = time.perf_counter()
        while not self.stop.wait(self.every):
            summary = self.run.summary
            handled = summary.done + summary.failed
            line(f"progress: {handled}/{self.run.total} images ({summary.done} done, "
                 f"{summary.failed} failed) after {time.perf_counter() - start:.0f} s")

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _output_name(path: Path, ext: str, suffix: str) -> str:
    extension = path.suffix if ext == "same" else f".{ext}"
    return f"{path.stem}{suffix}{extension}"
