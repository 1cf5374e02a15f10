"""Finding and loading a model: a model file, a training run folder or a zoo name."""
from __future__ import annotations

import os
from pathlib import Path

from i2i import run_layout as layout
from i2i.errors import I2IError, UsageError
from i2i.infer.model import check_seed
from i2i.infer.translator import Translator
from i2i.spec import DIRECTIONS


def resolve_model_path(path_or_name: str | os.PathLike) -> Path:
    """A model file, a run folder (its model.safetensors), or a zoo name -> a model file path."""
    if not isinstance(path_or_name, (str, os.PathLike)) or not str(path_or_name):
        raise UsageError(f"model must be a path or a model name, not {path_or_name!r}")
    path, text = Path(path_or_name), str(path_or_name)
    bare_name = not (text.endswith(".safetensors") or os.sep in text or "/" in text)
    if path.is_dir():
        model = path / layout.MODEL
        if model.is_file():
            return model
        if bare_name and _is_zoo_name(text):  # e.g. the output folder of `i2i translate NAME in/ NAME`
            return zoo_model_path(text)
        raise I2IError(f"{path}: no {layout.MODEL} in this folder (is it a training run folder?)")
    if path.is_file():
        return path
    if not bare_name:
        raise I2IError(f"{path}: model file not found")
    return zoo_model_path(text)


def _is_zoo_name(name: str) -> bool:
    from i2i import zoo

    try:
        return name in zoo.registry()
    except I2IError:  # a broken registry: the folder's own message says more
        return False


def zoo_model_path(name: str) -> Path:
    """Hook for the pretrained zoo (issue 7): a registry name -> a verified local model file.

    `resolve_model_path` calls only this; an unknown name is a one-line I2IError.
    """
    from i2i import zoo

    return zoo.resolve(name)


def load_model(path_or_name: str | os.PathLike, device: str = "auto", precision: str = "auto",
               direction: str | None = None, test_mode: str | None = None, seed: int = 0) -> Translator:
    """Load a generator from a model file / run folder / zoo name, ready to translate.

    CycleGAN files hold both generators: `direction` picks G_A (AtoB) or G_B (BtoA); None
    is the model's default direction (the one it was trained for). Only that one network
    is built. `test_mode` and `seed`: see `Translator`.
    """
    from i2i.checkpoint import load_model as load_model_file
    from i2i.checkpoint import read_header

    check_seed(seed)  # now, not at the first call
    path = resolve_model_path(path_or_name)
    header = read_header(path)
    spec = header.spec
    direction = direction or spec.default_direction
    if direction not in DIRECTIONS:
        raise UsageError(f"direction must be AtoB or BtoA, not {direction!r}")
    if direction not in spec.directions:
        raise UsageError(f"{path}: this {spec.pipeline} model translates {', '.join(spec.directions)} only")
    chosen = spec.directions[direction]
    if chosen not in header.archs:
        raise I2IError(f"{path}: no network {chosen!r} in this model file "
                       f"(it has: {', '.join(header.archs) or 'none'})")
    model = load_model_file(path, names=[chosen])
    return Translator(model.networks[chosen], spec, direction=direction, device=device, precision=precision,
                      source=f"{path} ({chosen})", test_mode=test_mode, seed=seed)
