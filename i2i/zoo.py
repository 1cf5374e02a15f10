"""Pretrained models by name: `pretrained/registry.json` (and `$I2I_REGISTRY`) -> a verified model file.

A registry row names a file and says how to check it (sha256) and, for a model not shipped in
`pretrained/`, where to get it (url). `format` says what the url serves: "i2i", an i2i model file
(safetensors with its architecture), or "pth", a foreign generator state dict (the reference
CycleGAN/pix2pix `latest_net_G.pth`, a BasicSR/Real-ESRGAN file) that is converted after download
into an i2i model file with the row's `arch` (an `i2i.nn` network) and `spec` (the model contract
beyond what the network tells: pipeline, pixel ranges, test mode). Rows also say `license` and `source`.

Downloads go to `$I2I_HOME/models` (default `~/.cache/i2i`; the old `$I2I_CACHE` still works),
resume where they stopped, and are checked against the row's sha256, or, where the publisher gives
none, against the hash the first download had (pinned in `<file>.json` beside the model, which also
holds the model file's own hash, checked at every use). After that a model works offline. A converted
file whose network or contract is not what its row makes now (a row corrected since) is converted
again, saying so in one line: from its own weights (offline) when only the contract changed, else
from the checkpoint downloaded again (only the converted file is kept).

A converted file holds one generator, "G". It translates AtoB unless the row's spec says otherwise:
the reference trained facades_label2photo, map2sat and day2night pix2pix with --direction BtoA (their
datasets' A sides are photos, aerial photos and night scenes), so those rows say
`"directions": {"BtoA": "G"}, "default_direction": "BtoA"`, and `--ab-split` feeds them the right half.

Names are the publishers' own. The reference publishes sat2map, map2sat and facades_label2photo as
both a CycleGAN and a pix2pix model: those carry a `-cyclegan` / `-pix2pix` suffix, on both sides,
so that neither silently wins (an unknown name suggests the close ones).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping
from urllib.parse import urlsplit

from i2i.download import DEFAULT_TIMEOUT, fetch, home, pin, read_json_object, read_record, sha256_of
from i2i.errors import I2IError, did_you_mean, one_line
from i2i.shipped import shipped_path

if TYPE_CHECKING:
    from i2i.spec import ModelSpec

__all__ = ["ZooEntry", "registry", "lookup", "resolve", "pull", "where", "local_file", "home", "cache_dir", "sha256_of",
           "convert_checkpoint", "list_rows"]

PRETRAINED_DIR = shipped_path("pretrained")
REGISTRY_FILE = PRETRAINED_DIR / "registry.json"
FORMATS = ("i2i", "pth")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
_HEX = re.compile(r"[0-9a-f]*")
# ModelSpec fields a row may set; channels, scale and size multiple come from the network itself.
_FIELD_TYPES = {"file": str, "url": str, "description": str, "format": str, "sha256_prefix": str, "license": str,
                "source": str, "size": int, "metrics": dict, "spec": dict}
_SPEC_FIELDS = {"pipeline", "directions", "default_direction", "input_range", "output_range", "color_space",
                "task", "test_mode"}


@dataclass(frozen=True)
class ZooEntry:
    """One registry row: where the model file is, how to check it, what it is."""

    name: str
    file: str = ""
    """The i2i model file's name: in the registry's folder when shipped, else in the cache
    (a row without one gets `<name>.safetensors`)."""
    sha256: str | None = None
    """Of the file at `url` (for format "i2i": the model file itself); None: pinned at first download."""
    url: str = ""
    description: str = ""
    metrics: dict = field(default_factory=dict)
    format: str = "i2i"
    """"i2i": the url serves an i2i model file; "pth": a foreign state dict, converted after download."""
    size: int = 0
    """About how many bytes the download is (its weights), for `i2i models list`; 0: not known."""
    sha256_prefix: str = ""
    """The first hex digits of the sha256, as BasicSR puts them in its file names (checked)."""
    arch: dict | None = None
    """"pth": the `i2i.nn` network (name and options) its weights load into, strictly."""
    spec: dict = field(default_factory=dict)
    """"pth": ModelSpec fields beyond the network's own channels, scale and size multiple."""
    license: str = ""
    source: str = ""
    home: Path = PRETRAINED_DIR
    """The folder of the registry file the row came from (where a shipped file lives)."""


def cache_dir() -> Path:
    """Downloaded (and converted) model files."""
    return home() / "models"


def registry(path: str | os.PathLike | None = None) -> dict[str, ZooEntry]:
    """All registered models by name: `path` alone, or the shipped registry and then
    `$I2I_REGISTRY` (a user's own file, whose rows add to or replace the shipped ones)."""
    if path is not None:
        return _read_registry(Path(path))
    entries = _read_registry(REGISTRY_FILE)
    if os.environ.get("I2I_REGISTRY"):
        user = Path(os.environ["I2I_REGISTRY"]).expanduser()
        if not user.is_file():
            raise I2IError(f"{user}: registry file not found ($I2I_REGISTRY)")
        entries.update(_read_registry(user))
    return entries


def lookup(name: str, registry_path: str | os.PathLike | None = None) -> ZooEntry:
    """The row of `name` (exact, else the one name equal but for case); unknown: one line with the
    close names."""
    models = registry(registry_path)
    if name in models:
        return models[name]
    folded = [n for n in models if n.lower() == name.lower()]
    if len(folded) == 1:
        return models[folded[0]]
    hint = did_you_mean(name, models) or f"known: {', '.join(sorted(models)) or 'none'}"
    raise I2IError(f"{name!r} is neither a model file, a run folder nor a known model ({hint})")


def where(entry: ZooEntry) -> str:
    """"shipped" (in the registry's folder), "cached" (downloaded) or "download" (not here)."""
    return _located(entry)[0]


def local_file(entry: ZooEntry) -> Path | None:
    """The model file of `entry` if it is here (shipped, else downloaded), unchecked; None if not."""
    return _located(entry)[1]


def _located(entry: ZooEntry) -> tuple[str, Path | None]:
    """`where` and `local_file` from one look at the disk."""
    shipped, cached = entry.home / entry.file, cache_dir() / entry.file
    if shipped.is_file():
        return "shipped", shipped
    return ("cached", cached) if cached.is_file() else ("download", None)


def resolve(name: str, *, registry_path: str | os.PathLike | None = None, progress: bool = True,
            timeout: float = DEFAULT_TIMEOUT) -> Path:
    """The verified local model file of a registered name, downloaded (and converted) on first use."""
    entry = lookup(name, registry_path)
    place, file = _located(entry)
    if place == "shipped":
        if entry.sha256:
            _verify(file, entry.sha256, entry, "the registry")
        return file
    if place == "cached" and entry.format != "pth" and (entry.sha256 or _record_path(entry).is_file()):
        # appeared whole (renamed into place) and checkable: nothing to wait for; a file without the registry's
        # hash gets its download record just after the rename, so until then it is waited for, under the lock
        _verify_cached(entry, file)
        return file
    with _cache_lock(entry, progress):  # another process may be downloading or converting it now
        place, file = _located(entry)
        if file is None:
            return pull(entry, progress=progress, timeout=timeout)
        _verify_cached(entry, file)
        if entry.format == "pth":
            _reconvert_if_stale(entry, file, progress=progress, timeout=timeout)
    return file


@contextlib.contextmanager
def _cache_lock(entry: ZooEntry, progress: bool) -> Iterator[None]:
    """Hold `$I2I_HOME/models/.<file>.lock` while a model is downloaded, converted or checked, so
    that jobs started together (a SLURM array, two cron jobs) wait for the one that fetches it
    and then use its file, instead of failing. The holder deletes the lock file as it lets go (a
    waiter then finds its file gone and makes a new one): the cache keeps no lock files, but for
    the empty one of a process killed while holding it (harmless: the kernel dropped its lock).
    A cache folder where none can be made (a read-only shared cache) is used unlocked."""
    try:
        import fcntl
    except ImportError:  # Windows: the downloader's own lock still refuses a second writer
        yield
        return
    path, waited = cache_dir() / f".{entry.file}.lock", False
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not waited:
                _say(progress, f"{entry.name}: another process is fetching or checking it in {cache_dir()}; waiting for it")
                waited = True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:  # Ctrl-C while waiting
                os.close(fd)
                raise
        except OSError:  # a file system without flock: as without the lock
            pass
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break  # the lock file is still the one at `path`
        except OSError:  # deleted by the holder we waited for
            pass
        os.close(fd)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def pull(entry: ZooEntry, *, progress: bool = True, timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Download `entry` into the cache (converting a foreign file), verified; returns the model file."""
    from i2i.checkpoint import read_header

    cached = cache_dir() / entry.file
    if not entry.url:
        raise I2IError(f"model {entry.name!r}: {entry.home / entry.file} is missing and the registry gives "
                       "no url to download it from")
    record = _record_path(entry)
    pinned = read_record(record).get("source_sha256")
    expected = entry.sha256 or pinned
    source = "the registry" if entry.sha256 else (f"the first download (recorded in {record}; delete that file "
                                                  "if the publisher changed the model)")
    if entry.format == "i2i":
        actual = fetch(entry.url, cached, sha256=expected, sha256_prefix=entry.sha256_prefix, hash_source=source,
                       timeout=timeout, progress=progress, label=entry.name)
        model_hash = actual
        try:
            read_header(cached)  # e.g. an error page served with status 200 and no known hash
        except I2IError as error:
            cached.unlink()
            raise I2IError(f"{entry.name}: the download from {entry.url} is not an i2i model file "
                           f"({one_line(error, 200)}); nothing was kept") from None
    else:
        download = home() / "downloads" / f"{entry.name}{Path(urlsplit(entry.url).path).suffix or '.pth'}"
        actual = fetch(entry.url, download, sha256=expected, sha256_prefix=entry.sha256_prefix, hash_source=source,
                       timeout=timeout, progress=progress, label=entry.name)
        try:
            convert_checkpoint(download, cached, entry)
        finally:
            download.unlink(missing_ok=True)
        model_hash = sha256_of(cached)
    pin(record, entry.url, model_hash, source_sha256=actual, format=entry.format)
    return cached


def convert_checkpoint(source: Path, target: Path, entry: ZooEntry) -> None:
    """A foreign generator state dict -> an i2i model file with the row's architecture and contract.

    Read and loaded as `i2i import` does (`i2i.importers`: strict, forgiving only the old
    PyTorch quirks the reference's own loader forgives), but into the row's `arch` as given: the
    registry names the architecture, so nothing is guessed from keys (the old InstanceNorm
    statistics look like BatchNorm's).
    """
    from i2i.importers import read_state_dict

    _convert_state(read_state_dict(source), target, entry)


def _convert_state(state: dict, target: Path, entry: ZooEntry) -> None:
    """Generator weights -> `target`, an i2i model file with the row's `arch` and `spec`: one
    conversion for a download and for a cached file made with an older row."""
    import i2i.nn
    from i2i.importers import load_generator

    net = i2i.nn.rebuild(entry.arch)
    mismatch = f"{entry.name}: the downloaded weights do not fit {entry.arch['name']}"
    load_generator(net, state, entry.spec, mismatch).save(target)


def list_rows() -> list[dict]:
    """What `i2i models list` shows: name, task, size, where and description of every model."""
    rows = []
    for entry in registry().values():
        place, file = _located(entry)
        task, size = _task_and_size(entry, file)
        rows.append({"name": entry.name, "task": task, "size": size, "where": place,
                     "description": entry.description, "metrics": entry.metrics})
    return rows


# --------------------------------------------------------------------------- helpers


def _read_registry(path: Path) -> dict[str, ZooEntry]:
    rows = read_json_object(path, "unreadable registry ({reason})", "a registry maps names to rows (a JSON object)")
    return {name: _entry(path, name, row) for name, row in rows.items()}


def _entry(path: Path, name: str, row: object) -> ZooEntry:
    """One checked row; anything wrong is one line naming the registry file and the row."""
    context = f"{path}: model {name!r}"
    if not _NAME.fullmatch(name):
        raise I2IError(f"{context}: a name is letters, digits and _ . + - only")
    if not isinstance(row, dict):
        raise I2IError(f"{context}: the row must be a JSON object")
    known = {f.name for f in dataclasses.fields(ZooEntry)} - {"name", "home"}
    unknown = sorted(set(row) - known)
    if unknown:
        raise I2IError(f"{context}: unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")
    entry = ZooEntry(name=name, home=path.parent, **{"file": f"{name}.safetensors", **row})
    wrong = [name for name, kind in _FIELD_TYPES.items() if not isinstance(getattr(entry, name), kind)]
    if wrong:
        raise I2IError(f"{context}: {', '.join(wrong)} must be {' / '.join(_FIELD_TYPES[w].__name__ for w in wrong)}")
    problems = []
    if not _NAME.fullmatch(entry.file) or entry.file.endswith(".json"):
        problems.append(f"file {entry.file!r} must be a plain file name")
    if entry.format not in FORMATS:
        problems.append(f"format must be one of {', '.join(FORMATS)}")
    if entry.sha256 is not None and not (isinstance(entry.sha256, str) and len(entry.sha256) == 64
                                         and _HEX.fullmatch(entry.sha256)):
        problems.append("sha256 must be 64 lower-case hex digits or null")
    if not _HEX.fullmatch(entry.sha256_prefix):
        problems.append("sha256_prefix must be lower-case hex digits")
    if entry.format == "pth" and not (isinstance(entry.arch, dict) and isinstance(entry.arch.get("name"), str)):
        problems.append('a "pth" model needs "arch": {"name": NETWORK, options...}')
    if set(entry.spec) - _SPEC_FIELDS:
        problems.append(f"spec may set only {', '.join(sorted(_SPEC_FIELDS))}")
    elif entry.format == "pth":
        problems += _pth_spec_problems(entry.spec)
    if problems:
        raise I2IError(f"{context}: {'; '.join(problems)}")
    return entry


def _pth_spec_problems(spec: dict) -> list[str]:
    """What is wrong with a "pth" row's spec, found when the registry is read, not after a download:
    a contract inference would refuse, or directions naming another network than the one, G, that
    the conversion makes (a generator trained BtoA: {"directions": {"BtoA": "G"}, "default_direction": "BtoA"})."""
    from i2i.spec import ModelSpec

    try:
        contract = ModelSpec.from_dict({"pipeline": "", **spec})
    except I2IError as error:
        return [one_line(error)]
    if set(contract.directions.values()) != {"G"}:
        return [f'spec directions must name the one network, "G", not {dict(contract.directions)}']
    return []


def _record_path(entry: ZooEntry) -> Path:
    return cache_dir() / f"{entry.file}.json"


def _verify(path: Path, expected: str, entry: ZooEntry, source: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise I2IError(f"{path}: sha256 {actual[:12]}... does not match {source}'s {expected[:12]}... "
                       f"for {entry.name!r}; delete the file to fetch it again")


def _verify_cached(entry: ZooEntry, cached: Path) -> None:
    """A cached model file must have the hash recorded when it was made (or the registry's)."""
    if entry.format == "i2i" and entry.sha256:
        _verify(cached, entry.sha256, entry, "the registry")
        return
    record = _record_path(entry)
    values = read_record(record)
    recorded = values.get("sha256")
    if not isinstance(recorded, str):
        raise I2IError(f"{cached}: no download record ({record}) to check it against; "
                       f"delete it and run `i2i models pull {entry.name}`")
    if values.get("url", entry.url) != entry.url:  # made from another registry's row (I2I_REGISTRY)
        raise I2IError(f"{cached} came from {values['url']}, but {entry.name!r} is {entry.url} now; "
                       f"delete it and {record.name} beside it, then run `i2i models pull {entry.name}`")
    _verify(cached, recorded, entry, f"the download record {record}")


def _reconvert_if_stale(entry: ZooEntry, cached: Path, *, progress: bool, timeout: float) -> None:
    """A converted file is made again when the row of its name changed since (map2sat-pix2pix's row
    learnt that the model translates BtoA): its own network and contract, in its metadata, are
    compared with what the row makes, so a file from any older row is caught, record or not.

    Only the converted file is kept (the download is deleted after conversion): a new contract is
    made from the file's own weights (offline; the same weights the download gave), a new
    architecture from the checkpoint downloaded again (checked against the hash pinned first)."""
    from i2i.checkpoint import load_model, read_header

    header = read_header(cached)
    made = header.archs.get("G", {})
    if not _same_arch(made, entry.arch):
        _say(progress, f"{entry.name}: {cached.name} was converted as {_shown(made)} with an older registry row, "
                       f"which now says {_shown(entry.arch)}; downloading the checkpoint again to convert it anew")
        pull(entry, progress=progress, timeout=timeout)
        return
    wanted = _converted_spec(header.spec, entry)
    changed = [f"{f.name} {_shown(getattr(header.spec, f.name))} -> {_shown(getattr(wanted, f.name))}"
               for f in dataclasses.fields(wanted) if getattr(header.spec, f.name) != getattr(wanted, f.name)]
    if not changed:
        return
    _say(progress, f"{entry.name}: {cached.name} was converted with an older registry row; converting its "
                   f"weights again with today's ({'; '.join(changed)})")
    _convert_state(load_model(cached, ["G"]).networks["G"].state_dict(), cached, entry)
    record = _record_path(entry)
    kept = {k: v for k, v in read_record(record).items() if k not in ("url", "sha256")}
    pin(record, entry.url, sha256_of(cached), **kept)


def _same_arch(made: dict, wanted: dict) -> bool:
    """Whether two architectures build the same network (an option left out is its default)."""
    import i2i.nn

    if made.get("name") != wanted["name"]:
        return False
    base = i2i.nn.defaults(wanted["name"])
    return {**base, **made} == {**base, **wanted}


def _converted_spec(made: ModelSpec, entry: ZooEntry) -> ModelSpec:
    """The contract `convert_checkpoint` gives the network of a file whose contract is `made`:
    the network's own channels, scale and sizes, and the row's spec fields."""
    from i2i.spec import ModelSpec

    network = ModelSpec(pipeline="", in_channels=made.in_channels, out_channels=made.out_channels,
                        scale=made.scale, size=made.size)
    return ModelSpec.from_dict({**network.to_dict(), **entry.spec})


def _shown(value: object) -> str:
    """A spec value as the registry writes it ({'BtoA': 'G'} -> {"BtoA": "G"})."""
    return json.dumps(dict(value) if isinstance(value, Mapping) else value, default=str)


def _say(progress: bool, line: str) -> None:
    """One progress line on stderr (where the download bar goes), unless progress is off."""
    if progress:
        print(line, file=sys.stderr, flush=True)


def _task_and_size(entry: ZooEntry, local: Path | None) -> tuple[str, str]:
    """("CycleGAN" / "pix2pix" / "SR x4" ..., "45.5 MB" here or "~45.5 MB" to download), without
    importing torch: a local file's own contract is read from its safetensors header."""
    pipeline = entry.spec.get("pipeline", "")
    scale = int((entry.arch or {}).get("scale", 1))
    size = f"~{_megabytes(entry.size)}" if entry.size else "?"
    if local is not None:
        size = _megabytes(local.stat().st_size)
        spec = _file_spec(local)
        pipeline, scale = spec.get("pipeline", pipeline), spec.get("scale", scale)
    task = f"SR x{scale}" if pipeline == "srgan" or scale > 1 else {"cyclegan": "CycleGAN"}.get(pipeline, pipeline)
    return task or "?", size


def _file_spec(path: Path) -> dict:
    """Pipeline and scale from an i2i model file's safetensors header ({} when it is not one);
    files older than the model contract have only the networks' architectures."""
    try:
        with open(path, "rb") as f:
            length = int.from_bytes(f.read(8), "little")
            metadata = json.loads(f.read(min(length, 1 << 24)))["__metadata__"]
        if "spec" in metadata:
            spec = json.loads(metadata["spec"])
            return {"pipeline": spec["pipeline"], "scale": int(spec.get("scale", 1))}
        archs = json.loads(metadata["networks"]).values()
        return {"pipeline": metadata["pipeline"], "scale": max(int(a.get("scale", 1)) for a in archs)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"
