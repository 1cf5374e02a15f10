"""What the server offers, by name: models (shipped or cached zoo models, model files and run
folders under `--models`, runs' models) and training runs (run folders under `--runs`).

A request names a model or a run; it is looked up here among the names the server listed
itself, so no path from a request is ever opened. The folders are scanned again on each
listing (a run started after the server shows up), and each model file's header is read
once per modification time.
"""
from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from i2i import run_layout as layout
from i2i.errors import I2IError, UsageError, did_you_mean, one_line

_SKIPPED_FOLDERS = {layout.CHECKPOINTS, layout.SAMPLES, "__pycache__", "node_modules"}
_MAX_DEPTH = 4  # how deep below a --models or --runs folder models and runs are looked for


@dataclass(frozen=True)
class ModelEntry:
    """One listed model: its name, where it comes from and its model contract's headline."""

    name: str
    ref: str  # a zoo name, or the model file's absolute path
    path: Path  # the model file (its modification time tells when to reload)
    source: str  # "zoo", "file" or "run"
    pipeline: str
    task: str | None
    scale: int
    directions: tuple[str, ...]
    default_direction: str
    channels: tuple[int, int]

    def public(self) -> dict[str, Any]:
        """What /api/models shows: no server paths."""
        return {"name": self.name, "source": self.source, "pipeline": self.pipeline, "task": self.task,
                "scale": self.scale, "directions": list(self.directions),
                "default_direction": self.default_direction,
                "in_channels": self.channels[0], "out_channels": self.channels[1]}


@dataclass(frozen=True)
class RunEntry:
    """One listed training run folder."""

    name: str
    path: Path


class Catalog:
    """The models and runs of one server; safe to use from several threads."""

    def __init__(self, models: list[str] | tuple[str, ...] = (), runs: str | os.PathLike | None = None):
        self._lock = threading.Lock()
        self._headers: dict[tuple[Path, int], Any] = {}  # (path, mtime_ns) -> ModelHeader or error text
        self._warned: set[tuple[Path, int]] = set()
        self._roots = _check_model_args(models, self._headers)
        self._runs_root = None if runs is None else Path(runs).resolve()
        if self._runs_root is not None and not self._runs_root.is_dir():
            raise UsageError(f"{runs}: --runs must be a folder")
        self._models: dict[str, ModelEntry] = {}
        self._runs: dict[str, RunEntry] = {}

    # ------------------------------------------------------------------ listing

    def models(self) -> dict[str, ModelEntry]:
        """Every model by name, scanned now."""
        with self._lock:
            found = [*self._zoo_models(), *self._file_models(), *self._run_models()]
            self._models = _unique(found, key=lambda entry: entry.path)
            return dict(self._models)

    def runs(self) -> dict[str, RunEntry]:
        """Every run folder under --runs by name, scanned now."""
        with self._lock:
            self._runs = _unique([RunEntry(name, path) for name, path in self._run_folders()],
                                 key=lambda entry: entry.path)
            return dict(self._runs)

    def model(self, name: str) -> ModelEntry | None:
        """The listed model `name`; the folders are scanned again before giving up."""
        return self._models.get(name) or self.models().get(name)

    def run(self, name: str) -> RunEntry | None:
        """The listed run `name`; the folder is scanned again before giving up."""
        return self._runs.get(name) or self.runs().get(name)

    # ------------------------------------------------------------------ sources

    def _zoo_models(self) -> list[ModelEntry]:
        from i2i import zoo

        entries = []
        for name, row in zoo.registry().items():
            local = zoo.local_file(row)
            if local is not None:
                entry = self._entry(name, name, local, "zoo")
                if entry is not None:
                    entries.append(entry)
        return entries

    def _file_models(self) -> list[ModelEntry]:
        entries = []
        for root in self._roots:
            for name, path, source in _model_files(root):
                entry = self._entry(name, str(path), path, source)
                if entry is not None:
                    entries.append(entry)
        return entries

    def _run_models(self) -> list[ModelEntry]:
        entries = []
        for name, folder in self._run_folders():
            model = folder / layout.MODEL
            if model.is_file():
                entry = self._entry(name, str(model), model, "run")
                if entry is not None:
                    entries.append(entry)
        return entries

    def _run_folders(self) -> list[tuple[str, Path]]:
        if self._runs_root is None:
            return []
        return [(name, path) for name, path in _walk(self._runs_root, lambda folder: (folder / layout.METRICS).is_file())]

    def _entry(self, name: str, ref: str, path: Path, source: str) -> ModelEntry | None:
        """The entry of a model file, from its header (read once per modification time); a file
        that is not a usable model is left out, with one line on stderr the first time."""
        from i2i.checkpoint import read_header

        try:
            key = (path, path.stat().st_mtime_ns)
        except OSError:
            return None
        if key not in self._headers:
            try:
                self._headers[key] = read_header(path)
            except I2IError as error:
                self._headers[key] = one_line(error)
        header = self._headers[key]
        if isinstance(header, str):
            if key not in self._warned:
                self._warned.add(key)
                print(f"i2i serve: left out {header}", file=sys.stderr, flush=True)
            return None
        spec = header.spec
        return ModelEntry(name=name, ref=ref, path=path, source=source, pipeline=spec.pipeline, task=spec.task,
                          scale=spec.scale, directions=tuple(d for d in ("AtoB", "BtoA") if d in spec.directions),
                          default_direction=spec.default_direction, channels=(spec.in_channels, spec.out_channels))


def _check_model_args(models: list[str] | tuple[str, ...], headers: dict[tuple[Path, int], Any]) -> list[Path]:
    """The files and folders among the --models values; the others must name zoo models that
    are here (every local zoo model is listed anyway). A file named on its own must be a model:
    in a folder, one that is not is only left out. The headers this reads go into `headers`,
    the catalog's cache, so listing the models does not read those files again."""
    from i2i import zoo
    from i2i.checkpoint import read_header

    roots = []
    registry = None
    for value in models:
        path = Path(value)
        if path.exists():
            if path.is_file():
                mtime = path.stat().st_mtime_ns  # taken first: a file changed after this is read again
                try:
                    header = read_header(path)  # the path as given: the message names it so
                except I2IError as error:  # bad input, exit 1, as `i2i translate` says it
                    raise I2IError(one_line(error)) from None
                headers[(path.resolve(), mtime)] = header  # the key `Catalog._entry` looks for
            roots.append(path.resolve())
            continue
        registry = registry if registry is not None else zoo.registry()
        if value not in registry:
            hint = did_you_mean(value, registry) or f"known: {', '.join(sorted(registry)) or 'none'}"
            raise I2IError(f"{value}: no such model file or folder, nor a known model name ({hint})")
        if zoo.local_file(registry[value]) is None:
            raise I2IError(f"{value}: this model is not downloaded, and the server fetches nothing; "
                             f"download it first, e.g. with `i2i translate {value} image.png out/`")
    return roots


def _model_files(root: Path) -> list[tuple[str, Path, str]]:
    """(name, model file, "file" or "run") under a --models path: the path itself if it is a
    model file or a run folder, else the model files and run folders below it."""
    if root.is_file():
        return [(root.stem, root, "file")]
    if (root / layout.MODEL).is_file():
        return [(root.name, root / layout.MODEL, "run")]
    found = []
    for name, folder in _walk(root, lambda folder: (folder / layout.MODEL).is_file()):
        found.append((name, folder / layout.MODEL, "run"))
    for folder, subfolders, files in _folders(root):
        for file in sorted(files):
            path = folder / file
            if file.endswith(".safetensors") and not file.startswith(".") and not (
                    file == layout.MODEL and folder != root):
                found.append((path.relative_to(root).with_suffix("").as_posix(), path, "file"))
    return found


def _walk(root: Path, is_match) -> list[tuple[str, Path]]:
    """(name, folder) of the folders under `root` (itself included) that `is_match`; a match's
    sub-folders are not searched. The name is the path relative to `root` (root: its name)."""
    if is_match(root):
        return [(root.name, root)]
    return [(folder.relative_to(root).as_posix(), folder) for folder, _, _ in _folders(root)
            if folder != root and is_match(folder)]


def _folders(root: Path):
    """os.walk below `root`, in order, without hidden folders, run folders' insides, or more
    than _MAX_DEPTH levels."""
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        depth = len(here.relative_to(root).parts)
        inside_run = here != root and ((here / layout.MODEL).is_file() or (here / layout.METRICS).is_file())
        subfolders[:] = [] if inside_run or depth >= _MAX_DEPTH else sorted(
            s for s in subfolders if not s.startswith(".") and s not in _SKIPPED_FOLDERS)
        yield here, subfolders, files


def _unique(entries: list, key) -> dict[str, Any]:
    """Entries by name: the first of each file only, and a name taken twice gets " (2)"."""
    seen, named = set(), {}
    for entry in entries:
        if key(entry) in seen:
            continue
        seen.add(key(entry))
        name, n = entry.name, 1
        while name in named:
            n += 1
            name = f"{entry.name} ({n})"
        named[name] = entry if name == entry.name else _renamed(entry, name)
    return named


def _renamed(entry: Any, name: str) -> Any:
    import dataclasses

    return dataclasses.replace(entry, name=name)
