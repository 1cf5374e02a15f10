"""Pretrained models by name: `pretrained/registry.json` maps a name to a file and its sha256.

A model shipped in the repository (`pretrained/<file>`) is used from there, offline. Any other
is downloaded once from its `url` into the cache (`$I2I_CACHE` or `~/.cache/i2i`), verified
against its sha256 and moved into place atomically; a bad download is deleted, never used.
"""
from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from i2i.atomic import atomic_path
from i2i.errors import I2IError

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
REGISTRY_FILE = PRETRAINED_DIR / "registry.json"


@dataclass(frozen=True)
class ZooEntry:
    """One registry row: where the model file is, how to check it, what it does."""

    name: str
    file: str
    sha256: str
    url: str = ""
    description: str = ""
    metrics: dict = field(default_factory=dict)


def cache_dir() -> Path:
    return Path(os.environ.get("I2I_CACHE", Path.home() / ".cache" / "i2i")) / "models"


def registry(path: Path = REGISTRY_FILE) -> dict[str, ZooEntry]:
    """All registered models by name (empty when the registry file is absent)."""
    if not path.is_file():
        return {}
    rows = json.loads(path.read_text(encoding="utf-8"))
    return {name: ZooEntry(name=name, **row) for name, row in rows.items()}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve(name: str, *, registry_path: Path = REGISTRY_FILE, progress: bool = True) -> Path:
    """The verified local path of a registered model, downloading it into the cache if needed."""
    models = registry(registry_path)
    if name not in models:
        known = ", ".join(sorted(models)) or "none"
        raise I2IError(f"{name!r} is neither a model file, a run folder nor a known model (known: {known})")
    entry = models[name]
    shipped, cached = registry_path.parent / entry.file, cache_dir() / entry.file
    for local in (shipped, cached):
        if local.is_file():
            _verify(local, entry)
            return local
    if not entry.url:
        raise I2IError(f"model {name!r}: {shipped} is missing and the registry gives no url to download it from")
    _download(entry, cached, progress=progress)
    return cached


def _verify(path: Path, entry: ZooEntry) -> None:
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise I2IError(f"{path}: sha256 {actual[:12]}... does not match the registry's {entry.sha256[:12]}... "
                       f"for {entry.name!r}; delete the file to fetch it again")


def _download(entry: ZooEntry, target: Path, *, progress: bool) -> None:
    from tqdm import tqdm

    try:
        with urllib.request.urlopen(entry.url, timeout=60) as response, atomic_path(target) as tmp:
            total = int(response.headers.get("Content-Length") or 0) or None
            digest = hashlib.sha256()  # hashed as it arrives, not read back
            with open(tmp, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=entry.name,
                                              disable=not progress) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            actual = digest.hexdigest()
            if actual != entry.sha256:
                raise I2IError(f"download of {entry.name!r} from {entry.url} is corrupt "
                               f"(sha256 {actual[:12]}..., expected {entry.sha256[:12]}...); nothing was kept")
    except (urllib.error.URLError, OSError) as error:
        raise I2IError(f"cannot download {entry.name!r} from {entry.url}: {error}") from None

