"""Atomic file writes: a temp file in the same folder, then rename. Readers never see half a file."""
from __future__ import annotations

import contextlib
import os
import re
import uuid
from pathlib import Path
from typing import Iterator

from i2i.errors import I2IError, UsageError

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
    # 18 more bytes than the name: a name near the 255-byte limit gets its temp name shortened
    name = os.fsdecode(os.fsencode(path.name)[:200])
    tmp = path.with_name(f".{name}.{uuid.uuid4().hex[:12]}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temp files `atomic_path` left in `folder` when its process was killed
    (kill -9 skips the cleanup); the caller must know no writer is still using them."""
    folder = Path(folder)
    stale = [p for p in folder.iterdir() if p.is_file() and TEMP_NAME.fullmatch(p.name)] if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


@contextlib.contextmanager
def write_errors(path: str | os.PathLike) -> Iterator[None]:
    """A failed write (a full disk, a read-only folder) as one line naming the file."""
    try:
        yield
    except OSError as error:
        raise I2IError(f"{path}: cannot write the file ({error.strerror or error})") from None


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
