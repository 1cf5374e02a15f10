"""Model files and training checkpoints.

A model file is self-describing: one `.safetensors` whose tensors are named
`<network>.<state-dict key>` and whose metadata holds, as JSON, each network's
architecture (`i2i.nn.create` name and kwargs) and the model contract (`i2i.spec.ModelSpec`).
So `i2i translate model.safetensors in/ out/` needs nothing else.

Training checkpoints (optimisers, schedulers, RNG states, ...) are `torch.save` files
read back with `weights_only=True`. Foreign `.pth` files are only ever read that way.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from i2i import run_layout as layout
from i2i.atomic import atomic_path, write_bytes, write_errors
from i2i.errors import I2IError, one_line
from i2i.spec import ModelSpec, from_legacy_settings

MODEL_FORMAT = "i2i-model/1"


@dataclass
class ModelHeader:
    """A model file's metadata: each network's architecture and the model contract."""

    archs: dict[str, dict]
    spec: ModelSpec
    path: Path

    @property
    def pipeline(self) -> str:
        return self.spec.pipeline


@dataclass
class ModelFile:
    """What a model file holds: built networks (eval mode) and the model contract."""

    networks: dict[str, nn.Module]
    spec: ModelSpec
    path: Path | None = None

    @property
    def pipeline(self) -> str:
        return self.spec.pipeline


def save_model(path: str | os.PathLike, networks: dict[str, nn.Module], spec: ModelSpec) -> None:
    """Write networks (each built by `i2i.nn.create`, so it has `.arch`) and their spec atomically.
    A file `load_model` could not read back (a network without `.arch`, a spec naming a network
    not given) is refused before anything is written."""
    from safetensors.torch import save

    for name, net in networks.items():
        if not isinstance(getattr(net, "arch", None), dict):
            raise I2IError(f"network {name!r} ({type(net).__name__}) has no .arch: build it with i2i.nn.create "
                           "(a network of your own: register it with @i2i.nn.register), so the file can rebuild it")
    missing = sorted(set(spec.directions.values()) - set(networks))
    if missing:
        raise I2IError(f"the spec's directions {dict(spec.directions)} name network {missing[0]!r}, which is not "
                       f"among those given ({', '.join(networks) or 'none'}); pass it, or a spec with "
                       "dataclasses.replace(spec, directions=..., default_direction=...)")
    tensors: dict[str, torch.Tensor] = {}
    archs: dict[str, dict] = {}
    for name, net in networks.items():
        archs[name] = dict(net.arch)
        for key, value in net.state_dict().items():
            tensors[f"{name}.{key}"] = value.detach().to("cpu").contiguous()
    metadata = {
        "format": MODEL_FORMAT,
        "pipeline": spec.pipeline,
        "networks": json.dumps(archs),
        "spec": json.dumps(spec.to_dict()),
    }
    write_bytes(path, _sorted_metadata(save(tensors, metadata=metadata)))


def _sorted_metadata(data: bytes) -> bytes:
    """The safetensors file with its metadata keys in sorted order: safetensors writes them in
    a random order, so two identical runs gave model files of different sha256. The header is
    rewritten at its own length (padded with spaces, as the format allows), or left as it was."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    metadata = header.pop("__metadata__", None)
    if metadata is None:
        return data
    text = json.dumps({"__metadata__": dict(sorted(metadata.items())), **header}, separators=(",", ":"),
                      ensure_ascii=False).encode()
    if len(text) > size:
        return data
    return data[:8] + text.ljust(size) + data[8 + size:]


#: What to do with foreign weights (reference CycleGAN/pix2pix, BasicSR, Real-ESRGAN) given as a model.
_IMPORT_HINT = "foreign weights are converted first: i2i models import FILE --out MODEL.safetensors"


def read_header(path: str | os.PathLike) -> ModelHeader:
    """The metadata of an i2i model file, parsed; a one-line I2IError for anything else.

    Files written before the model contract existed hold an untyped "settings" dict instead
    of "spec"; they get the spec inference derived from it then (`spec.from_legacy_settings`).
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise I2IError(f"{path}: model file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            keys = list(f.keys())
    except Exception as error:  # safetensors raises several types for a bad header
        with open(path, "rb") as f:
            pytorch = f.read(2) in (b"PK", b"\x80\x02")  # torch.save's zip archive, or its legacy pickle
        run = layout.run_of_checkpoint(path)
        if pytorch and run is not None:
            raise I2IError(f"{path}: a training checkpoint (for --resume), not a model file; the run's model, "
                           f"written with each checkpoint, is {run / layout.MODEL}") from None
        if pytorch:
            raise I2IError(f"{path}: a PyTorch checkpoint, not an i2i model file; {_IMPORT_HINT}") from None
        raise I2IError(f"{path}: not a safetensors model file ({one_line(error, 300)})") from None
    if metadata.get("format") != MODEL_FORMAT:
        raise I2IError(f"{path}: not an i2i model file (no '{MODEL_FORMAT}' metadata); {_IMPORT_HINT}")
    try:
        archs = _archs(json.loads(metadata["networks"]))
        for name, arch in archs.items():
            _check_repeats(name, arch, sum(key.startswith(f"{name}.") for key in keys))
        if "spec" in metadata:
            spec = ModelSpec.from_dict(json.loads(metadata["spec"]))
        else:
            spec = from_legacy_settings(metadata["pipeline"], json.loads(metadata.get("settings", "{}")), archs)
    except I2IError as error:
        raise I2IError(f"{path}: {one_line(error)}") from None
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as error:  # RecursionError: JSON nested too deep
        raise I2IError(f"{path}: bad model metadata ({one_line(error, 200, typed=True)})") from None
    missing = sorted(set(spec.directions.values()) - set(archs))
    if missing:
        raise I2IError(f"{path}: its spec names network {missing[0]!r}, which the file does not hold")
    return ModelHeader(archs=archs, spec=spec, path=path)


def _archs(value: object) -> dict[str, dict]:
    """The metadata's `networks`: name -> {"name": registered network, options...}."""
    if not isinstance(value, dict) or not value or not all(
            isinstance(arch, dict) and isinstance(arch.get("name"), str) for arch in value.values()):
        raise ValueError("networks must map each network to its architecture")
    return value


def load_model(path: str | os.PathLike, names: list[str] | None = None) -> ModelFile:
    """Rebuild the networks of a model file (all, or `names`) and load their weights strictly.

    Only the wanted networks' tensors are read, and their initial weights are not drawn
    (the stored ones replace them).
    """
    from safetensors import safe_open

    import i2i.nn

    header = read_header(path)
    path = header.path
    networks: dict[str, nn.Module] = {}
    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
        for name, arch in header.archs.items():
            if names is not None and name not in names:
                continue
            _check_shapes(path, name, arch, {k: f.get_slice(k).get_shape() for k in keys if k.startswith(f"{name}.")})
            net = i2i.nn.rebuild(arch)
            prefix = f"{name}."
            try:
                state = {k[len(prefix):]: f.get_tensor(k) for k in keys if k.startswith(prefix)}
            except Exception as error:
                raise I2IError(f"{path}: cannot read the weights of {name!r} ({one_line(error, 300)})") from None
            try:
                net.load_state_dict(state, strict=True)
            except RuntimeError as error:
                raise I2IError(f"{path}: weights of {name!r} do not fit its architecture ({one_line(error, 300)})") from None
            networks[name] = net.eval()
    return ModelFile(networks=networks, spec=header.spec, path=path)


def _check_shapes(path: Path, name: str, arch: dict, stored: dict[str, list[int]]) -> None:
    """Compare the file's tensor shapes with what `arch` builds, on the meta device (nothing is
    allocated), so hostile metadata (a huge width) costs nothing; one line naming the tensor."""
    import i2i.nn

    try:
        with torch.device("meta"):
            expected = {f"{name}.{k}": list(v.shape) for k, v in i2i.nn.rebuild(arch).state_dict().items()}
    except I2IError as error:
        raise I2IError(f"{path}: network {name!r}: {one_line(error)}") from None  # one line whatever the builder says
    except (TypeError, ValueError, RuntimeError) as error:  # RuntimeError: a size that overflows on meta
        raise I2IError(f"{path}: network {name!r}: bad architecture ({one_line(error, 200, typed=True)})") from None
    for key in sorted(set(expected) | set(stored)):
        if key not in stored:
            raise I2IError(f"{path}: tensor {_shown(key)} is missing (its architecture {arch['name']} has it)")
        if key not in expected:
            raise I2IError(f"{path}: unexpected tensor {_shown(key)} (its architecture {arch['name']} has none)")
        if list(stored[key]) != expected[key]:
            raise I2IError(f"{path}: tensor {key} is {list(stored[key])} in the file, but its architecture "
                           f"{arch['name']} ({', '.join(f'{k}={_shown(str(v))}' for k, v in arch.items() if k != 'name')}) "
                           f"builds {expected[key]}")


# Options of i2i.nn builders that repeat a block (resnet/srresnet/rrdbnet num_blocks, patchgan n_layers).
_REPEAT_OPTIONS = ("num_blocks", "n_layers")


def _check_repeats(name: str, arch: dict, tensors: int) -> None:
    """Refuse more repeated blocks than the file holds tensors for the network (each block has one
    or more), before anything builds them: building costs ~2 ms a block even on the meta device,
    so metadata claiming num_blocks=10**9 would hang the loader."""
    for option in _REPEAT_OPTIONS:
        count = arch.get(option)
        if isinstance(count, int) and not isinstance(count, bool) and count > tensors:
            raise I2IError(f"network {name!r}: {option}={count}, but the file holds only {tensors} tensors for it")


def _shown(text: str) -> str:
    """A name from a file as a message shows it: as is, or quoted with escapes (a newline, a
    control character) so the message stays one line."""
    return text if text.isprintable() else repr(text)


def save_training_state(path: str | os.PathLike, state: dict) -> None:
    """Write a full training checkpoint atomically (a crash mid-write leaves the old one)."""
    with write_errors(path), atomic_path(path) as tmp, open(tmp, "wb", buffering=0) as f:
        recorder = _WriteRecorder(f)
        try:
            torch.save(state, recorder)
        except RuntimeError:
            if recorder.error is not None:  # torch reports a failed write as "unexpected pos"
                raise recorder.error from None
            raise


class _WriteRecorder:
    """A file for torch.save that keeps the OS error (a full disk) behind torch's RuntimeError."""

    def __init__(self, f) -> None:
        self.file, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.file.write(data)
        except OSError as error:
            self.error = self.error or error
            raise

    def __getattr__(self, name: str):
        return getattr(self.file, name)


def load_training_state(path: str | os.PathLike) -> dict:
    """Read a training checkpoint with `weights_only=True` (no code runs from the file)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise I2IError(f"{path}: corrupt or foreign training checkpoint ({one_line(error, 300)})") from None
