"""Extracting a downloaded .zip or .tar(.gz/.bz2/.xz) safely, all or nothing.

Every member is checked before anything is written: no absolute paths, no `..`, no links that
leave the extracted folder, no device files, at most `max_members` members and `max_bytes`
bytes in all (a zip bomb declares sizes far beyond its own). Tar members then go through
Python's `data` extraction filter as well. Extraction happens in a hidden temp folder beside the
target, which is renamed into place at the end; a refused or broken archive leaves nothing.
"""
from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import Callable

from i2i.errors import I2IError, one_line

MAX_MEMBERS = 1_000_000
MAX_RATIO = 8            # extracted bytes per archive byte: images barely compress, bombs do
MIN_LIMIT = 1 << 20      # ... but tiny archives may always hold this much


def extract(archive: str | os.PathLike, target: str | os.PathLike, *, root: str = "",
            max_members: int = MAX_MEMBERS, max_bytes: int | None = None,
            check: Callable[[Path], None] | None = None) -> Path:
    """Extract the folder `root` of `archive` (all of it when "") to `target`, which must not exist.

    `max_bytes` defaults to MAX_RATIO times the archive's size. `check(folder)` may refuse the
    extracted folder (raise) before it is moved into place. Returns `target`.
    """
    archive, target = Path(archive), Path(target)
    if target.exists():
        raise I2IError(f"{target} already exists; delete it to extract {archive.name} again")
    limit = max_bytes if max_bytes is not None else max(MAX_RATIO * archive.stat().st_size, MIN_LIMIT)
    root = root.strip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".{target.name}.extract-{uuid.uuid4().hex[:12]}"
    temp.mkdir()
    try:
        if zipfile.is_zipfile(archive):
            names = _extract_zip(archive, temp, root, max_members, limit)
        elif tarfile.is_tarfile(archive):
            names = _extract_tar(archive, temp, root, max_members, limit)
        else:
            raise I2IError(f"{archive}: not a readable zip or tar archive (cut short, or another kind of file)")
        folder = temp / root if root else temp
        if not folder.is_dir():
            found = ", ".join(sorted({name.split("/")[0] for name in names})[:5]) or "nothing"
            raise I2IError(f"{archive}: no folder {root}/ in the archive (its top level: {found})")
        if check is not None:
            check(folder)
        os.rename(folder, target)
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise I2IError(f"{archive}: corrupt archive ({one_line(error, 200, typed=True)})") from None
    except OSError as error:
        raise I2IError(f"cannot extract {archive} into {target.parent}: {error.strerror or one_line(error, 200)}") from None
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return target


def _refuse(archive: Path, name: str, why: str) -> I2IError:
    shown = name if name.isprintable() else repr(name)
    return I2IError(f"{archive}: refusing to extract it: member {shown} {why}")


def _within(name: str, root: str) -> bool:
    return not root or name == root or name.startswith(root + "/")


def _check_path(archive: Path, name: str) -> str:
    """The member's normalised relative path, or an error for an absolute or escaping one."""
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise _refuse(archive, name, "has an absolute path")
    if ".." in text.split("/"):
        raise _refuse(archive, name, "leaves the folder (..)")
    return posixpath.normpath(text) if text.strip("/") else "."


def _check_count(archive: Path, count: int, max_members: int) -> None:
    if count > max_members:
        raise I2IError(f"{archive}: refusing to extract it: more than {max_members} members")


def _check_size(archive: Path, total: int, limit: int) -> None:
    if total > limit:
        raise I2IError(f"{archive}: refusing to extract it: its members hold more than {limit} bytes "
                       f"({MAX_RATIO}x the archive)")


def _extract_zip(archive: Path, dest: Path, root: str, max_members: int, limit: int) -> list[str]:
    """Check every member, extract those under `root`; returns all member names."""
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        _check_count(archive, len(infos), max_members)
        total, wanted, names = 0, [], []
        for info in infos:
            name = _check_path(archive, info.filename)
            names.append(name)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise _refuse(archive, info.filename, "is a symbolic link")
            total += info.file_size  # zipfile never inflates a member past its declared size
            _check_size(archive, total, limit)
            if _within(name, root):
                wanted.append(info)
        for info in wanted:
            zf.extract(info, dest)
    return names


def _extract_tar(archive: Path, dest: Path, root: str, max_members: int, limit: int) -> set[str]:
    """Check every member, extract those under `root`; returns all member names."""
    with tarfile.open(archive) as tar:
        total, count, wanted, names = 0, 0, [], set()
        for member in tar:
            count += 1
            _check_count(archive, count, max_members)
            name = _check_path(archive, member.name)
            try:
                tarfile.data_filter(member, str(dest))
            except tarfile.FilterError as error:
                raise _refuse(archive, member.name, f"is unsafe ({one_line(error, 150)})") from None
            if member.issym() or member.islnk():
                base = posixpath.dirname(name) if member.issym() else ""
                link = posixpath.normpath(posixpath.join(base, member.linkname))
                if not _within(link, root) or link == (root or "."):
                    raise _refuse(archive, member.name, f"links outside the extracted folder ({member.linkname})")
                if member.islnk() and link not in names:
                    raise _refuse(archive, member.name, f"is a hard link to a member not before it ({member.linkname})")
            total += member.size if member.isfile() else 0
            _check_size(archive, total, limit)
            names.add(name)
            if _within(name, root):
                wanted.append(member)
        tar.extractall(dest, members=wanted, filter="data")
    return names
