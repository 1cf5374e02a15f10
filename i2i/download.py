"""Fetching one file over HTTP(S): resume, progress, sha256 check, atomic. i2i's only downloader.

`fetch(url, target)` creates `target` only once the whole file has arrived and its sha256 is the
expected one. Bytes arrive in `target.partial`: a dropped connection, a timeout or Ctrl-C leaves it
there, and the next call asks the server for the rest only (HTTP Range). A failure is one line.

Where a publisher gives no hash, the caller pins the one the first download had (`pin`) and
passes it as the expected hash afterwards (`pinned_sha256`): later downloads must be the same file.

`$I2I_MIRROR` (a base URL) fetches every file from a mirror instead, at the same path:
`I2I_MIRROR=http://mirror.lan` turns `http://host/cyclegan/x.pth` into `http://mirror.lan/cyclegan/x.pth`.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from i2i import __version__
from i2i.atomic import write_text
from i2i.errors import I2IError, one_line
from i2i.progress import Ticker, line, watched

try:  # advisory lock against two processes appending to one .partial file (POSIX)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

DEFAULT_TIMEOUT = 60.0
CHUNK = 1 << 20


def sha256_of(path: str | os.PathLike) -> str:
    """The sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def mirrored(url: str) -> str:
    """`url` on the `$I2I_MIRROR` host (same path), or `url` itself when no mirror is set."""
    mirror = os.environ.get("I2I_MIRROR", "").strip()
    if not mirror:
        return url
    return mirror.rstrip("/") + urllib.parse.urlsplit(url).path


def fetch(url: str, target: str | os.PathLike, *, sha256: str | None = None, sha256_prefix: str = "",
          hash_source: str = "the registry", timeout: float = DEFAULT_TIMEOUT, progress: bool = True,
          label: str = "") -> str:
    """Download `url` to `target` (resuming `target.partial`) and return the file's sha256.

    `sha256`: the expected hash (None: not known); `sha256_prefix`: its first hex digits, as
    BasicSR puts them in file names; `hash_source` says in a mismatch message where the expected
    hash came from. A mismatch deletes the partial file: the next call starts afresh.
    """
    target = Path(target)
    label = label or target.name
    url = mirrored(url)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https", "file"):
        raise I2IError(f"cannot download {label}: {url!r} is not an http(s) URL")
    partial = target.with_name(target.name + ".partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        out = open(partial, "ab")
    except OSError as error:
        raise I2IError(f"cannot download {label}: cannot write {partial} ({error.strerror or error})"
                       f"{_home_hint(partial)}") from None
    with out:
        _lock(out, partial, label)
        try:
            restart = _receive(url, out, partial, label, timeout, progress)
        except I2IError:
            if out.tell() == 0:  # nothing arrived (404, refused, no network): nothing to resume either
                partial.unlink(missing_ok=True)
            raise
    if restart:  # the server refused the range we asked for: the partial file is not a prefix of it
        partial.unlink(missing_ok=True)
        return fetch(url, target, sha256=sha256, sha256_prefix=sha256_prefix, hash_source=hash_source,
                     timeout=timeout, progress=progress, label=label)
    actual = sha256_of(partial)
    expected = (sha256 or "").lower()
    if (expected and actual != expected) or not actual.startswith(sha256_prefix.lower()):
        partial.unlink(missing_ok=True)
        wanted = f"{expected[:12]}..." if expected else f"{sha256_prefix}... (the prefix in its file name)"
        raise I2IError(f"download of {label} from {url} is corrupt: sha256 {actual[:12]}..., expected {wanted} "
                       f"from {hash_source}; nothing was kept")
    os.replace(partial, target)
    return actual


def pinned_sha256(record: str | os.PathLike) -> str | None:
    """The sha256 a first download recorded in `record` (a small JSON file), or None."""
    value = read_record(record).get("sha256")
    return value if isinstance(value, str) else None


def pin(record: str | os.PathLike, url: str, sha256: str, **extra) -> None:
    """Record a download's url and sha256 (and `extra` values) in `record`, atomically."""
    write_text(record, json.dumps({"url": url, "sha256": sha256, **extra}, indent=1) + "\n")


def read_record(record: str | os.PathLike) -> dict:
    """A record's values ({} when there is none); a damaged record is one line naming it."""
    return read_json_object(record, "unreadable download record ({reason}); delete it",
                            "unreadable download record (not a JSON object); delete it")


def read_json_object(path: str | os.PathLike, unreadable: str, not_object: str) -> dict:
    """The JSON object a small file holds ({} when there is no file), for download records and
    registries; a damaged file is one line naming it: `unreadable` (its `{reason}` says why, e.g.
    bad JSON) or `not_object` (JSON, but not an object)."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise I2IError(f"{path}: {unreadable.format(reason=one_line(error, 200))}") from None
    if not isinstance(values, dict):
        raise I2IError(f"{path}: {not_object}")
    return values


def _lock(out, partial: Path, label: str) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(out.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise I2IError(f"another process is downloading {label} into {partial}; wait for it to finish") from None


def _receive(url: str, out, partial: Path, label: str, timeout: float, progress: bool) -> bool:
    """Append the rest of `url` to `out`. True when the server refused the range (start afresh)."""
    from tqdm import tqdm

    offset = out.seek(0, os.SEEK_END)
    request = urllib.request.Request(url, headers={"User-Agent": f"i2i/{__version__}"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    received, total = offset, None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = getattr(response, "status", None) or 200
            if offset and status == 206:
                start, total = _content_range(response.headers.get("Content-Range", ""))
                if start != offset:
                    raise I2IError(f"cannot download {label}: {url} answered bytes from {start}, not from {offset}; "
                                   f"delete {partial}")
            else:  # a whole file: the server ignored the range (or none was asked for)
                out.truncate(0)
                received, total = 0, _int(response.headers.get("Content-Length"))
            on_terminal = progress and watched()
            log = _LogLines(label, total) if progress and not on_terminal else None
            with tqdm(total=total, initial=received, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                      disable=not on_terminal, file=sys.stderr, dynamic_ncols=True, leave=False) as bar:
                read = getattr(response, "read1", response.read)  # what has arrived: a stall loses nothing
                while chunk := read(CHUNK):
                    _write(out, chunk, partial, label)
                    received += len(chunk)
                    bar.update(len(chunk))
                    if log is not None:
                        log.update(received)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            return True
        raise I2IError(f"cannot download {label}: {url} answered {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            raise I2IError(f"cannot download {label}: no answer from {_host(url)} within {timeout:g} s") from None
        raise I2IError(f"cannot download {label} from {url}: {one_line(reason, 200) if isinstance(reason, BaseException) else reason} "
                       "(no network? models and data already here work offline)") from None
    except TimeoutError:
        raise I2IError(f"cannot download {label}: {_host(url)} stopped sending for {timeout:g} s "
                       f"({_bytes(received)} of {_bytes(total)} here; run again to resume)") from None
    except (http.client.HTTPException, ConnectionError) as error:
        raise I2IError(f"cannot download {label}: the connection broke ({one_line(error, 100, typed=True)}) after "
                       f"{_bytes(received)} of {_bytes(total)}; run again to resume") from None
    except OSError as error:  # e.g. an SSL error
        raise I2IError(f"cannot download {label} from {url}: {one_line(error, 200, typed=True)}") from None
    if total is not None and received < total:
        raise I2IError(f"cannot download {label}: the connection closed after {_bytes(received)} of {_bytes(total)}; "
                       "run again to resume")
    return False


class _LogLines:
    """Download progress for a log or a pipe (`i2i.progress`): a line at the start, then one
    every `EVERY` seconds."""

    def __init__(self, label: str, total: int | None) -> None:
        self.label, self.total, self.ticker = label, total, Ticker()
        line(f"{label}: downloading {_bytes(total)}")

    def update(self, received: int) -> None:
        if self.ticker.due():
            line(f"{self.label}: {_bytes(received)} of {_bytes(self.total)} after {self.ticker.elapsed:.0f} s")


def home() -> Path:
    """Where i2i keeps what it downloads: `$I2I_HOME`, else the old `$I2I_CACHE`, else the user
    cache dir (`$XDG_CACHE_HOME/i2i`, `~/.cache/i2i`)."""
    for variable in ("I2I_HOME", "I2I_CACHE"):
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "i2i"


def _home_hint(path: Path) -> str:
    """"; set I2I_HOME to a writable folder" where `path` lies in i2i's cache (a read-only home
    in a container, a shared cache), the one setting that moves it."""
    return "; set I2I_HOME to a writable folder" if home() in path.parents else ""


def _write(out, chunk: bytes, partial: Path, label: str) -> None:
    try:
        out.write(chunk)
    except OSError as error:  # a full disk: one line naming the file
        raise I2IError(f"cannot download {label}: cannot write {partial} ({error.strerror or error})") from None


def _content_range(value: str) -> tuple[int, int | None]:
    """(first byte, total size or None) of a `Content-Range: bytes START-END/TOTAL` header."""
    try:
        span, _, size = value.removeprefix("bytes ").partition("/")
        return int(span.split("-")[0]), (None if size.strip() == "*" else int(size))
    except ValueError:
        return -1, None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


def _bytes(count: int | None) -> str:
    if count is None:
        return "an unknown size"
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return str(count)
