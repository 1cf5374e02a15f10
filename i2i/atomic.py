"""Atomic file writes: a temp file in the same folder, then rename. Readers never see half a file."""
from __future__ import annotations

import contextlib
import errno
import os
import re
import uuid
from pathlib import Path
from typing import Iterator

from i2i.errors import I2IError, UsageError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

#: a full disk, a full quota, a read-only file system
_NO_ROOM = {getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EROFS") if hasattr(errno, name)}
#: what `atomic_path` names its temp files: `.<name>.<12 hex digits>.tmp`
TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path next to `path`; on success it replaces `path`, on any error it is removed.

    The temp name is hidden and ends in `.tmp`, so folder listings (`list_images`) never pick
    it up. It is created here with the usual permissions (0666 less the umask), so write into
    it: writers that make their own temp file (tempfile, safetensors' save_file) leave 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{temp_stem(path.name)}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    if fcntl is None:  # Windows renames no open file
        os.close(fd)
        fd = None
    try:
        if fd is not None:
            _lock(fd)  # while it is held, `remove_stale_temp_files` leaves the file alone
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if fd is not None:
            os.close(fd)


def _lock(fd: int) -> bool:
    """An exclusive OS lock on `fd` if nobody holds one (the kernel drops it with the process);
    False if another holds it. Without fcntl (Windows) every file counts as unlocked."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError:  # a file system without flock (Lustre mounted noflock: ENOSYS): write unlocked
        return True


def remove_stale_temp_files(folder: str | os.PathLike, targets: set[str] | None = None) -> list[Path]:
    """Delete the temp files `atomic_path` left in `folder` when its process was killed
    (kill -9 skips the cleanup); those a live writer holds locked are left alone. `targets`:
    only the temp files of these names (a folder that is not i2i's own, e.g. where one output
    file goes)."""
    folder = Path(folder)
    candidates = [p for p in folder.iterdir() if TEMP_NAME.fullmatch(p.name) and p.is_file() and
                  (targets is None or _target_of(p.name) in targets)] if folder.is_dir() else []
    stale = []
    for path in candidates:
        try:
            if fcntl is None:  # Windows: a file in use cannot be deleted, which says the same
                path.unlink()
                stale.append(path)
                continue
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError:  # gone (its writer finished), in use, or not ours to open
            continue
        try:
            if _lock(fd):
                path.unlink(missing_ok=True)
                stale.append(path)
        finally:
            os.close(fd)
    return stale


def temp_stem(name: str) -> str:
    """What a temp file of `name` is named after: the name, cut to 200 bytes (a temp name is
    18 bytes longer, and a name near the 255-byte limit would not fit)."""
    return os.fsdecode(os.fsencode(name)[:200])


def _target_of(temp_name: str) -> str:
    """The `temp_stem` of the file a temp file was to become ('.a.png.0123456789ab.tmp' -> 'a.png')."""
    return temp_name[1:-len(".0123456789ab.tmp")]


class WriteError(I2IError):
    """A file that could not be written: one line naming it, and the OS error's `errno`."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.errno = code

    @property
    def no_room(self) -> bool:
        """The disk is full or read-only: every later write would fail the same way."""
        return self.errno in _NO_ROOM


@contextlib.contextmanager
def write_errors(path: str | os.PathLike) -> Iterator[None]:
    """A failed write (a full disk, a read-only folder) as one line naming the file."""
    try:
        yield
    except OSError as error:
        raise WriteError(f"{path}: cannot write the file ({error.strerror or error})", error.errno) from None


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a file atomically; a failure is one I2IError line and leaves the old file."""
    with write_errors(path), atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically (as `write_bytes`)."""
    write_bytes(path, text.encode("utf-8"))


def check_output_file(out: str | os.PathLike, suffix: str, source: str | os.PathLike | None = None, *,
                      overwrite: bool = False) -> Path:
    """`out` as a Path, refused in one line unless its name ends in `suffix` (so an image or a
    model is never taken for it), it is another file than `source` (the file it is made from:
    writing it would destroy the source), and it does not exist yet, unless `overwrite`."""
    out = Path(out)
    if source is not None:
        source = Path(source)
        if out.resolve() == source.resolve() or (out.exists() and source.exists() and os.path.samefile(out, source)):
            raise UsageError(f"{out}: this is the input file ({source}); choose another output")
    if out.suffix.lower() != suffix:
        raise UsageError(f"{out}: the output file's name must end in {suffix}")
    if out.exists() and not overwrite:
        raise UsageError(f"{out} exists; pass --overwrite to replace it")
    return out
