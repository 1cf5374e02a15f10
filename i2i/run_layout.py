"""The names of a training run folder's files, in one place.

    RUN/config.yaml            every setting
    RUN/model.safetensors      the inference model, rewritten at every checkpoint
    RUN/checkpoints/step_N.pt  full training state
    RUN/metrics.jsonl          one JSON object per logged step
    RUN/samples/step_N.png     sample grids
    RUN/index.html             the run page
    RUN/.lock                  held by the one process training in the folder

The trainer writes these (`i2i.training.run_folder.RunFolder`); inference takes a run folder
as a model, `i2i serve` lists runs and the model loader recognises a checkpoint given as a
model, all by these names. Plain names only: importing this costs nothing.
"""
from __future__ import annotations

import re
from pathlib import Path

CONFIG = "config.yaml"
MODEL = "model.safetensors"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
SAMPLES = "samples"
PAGE = "index.html"
LOCK = ".lock"


def checkpoint_name(step: int) -> str:
    return f"step_{step}.pt"


def sample_name(step: int) -> str:
    return f"step_{step}.png"


def step_of(path: Path, suffix: str = ".pt") -> int:
    """N for a file named step_N`suffix`, else -1."""
    match = re.fullmatch(r"step_(\d+)" + re.escape(suffix), path.name)
    return int(match.group(1)) if match else -1


def by_step(folder: Path, suffix: str) -> list[tuple[int, Path]]:
    """The step_N`suffix` files in `folder` as (N, path), oldest first; none if no folder."""
    found = [(step_of(path, suffix), path) for path in folder.glob(f"step_*{suffix}")]
    return sorted((step, path) for step, path in found if step >= 0)


def run_of_checkpoint(path: Path) -> Path | None:
    """The run folder of RUN/checkpoints/step_N.pt, or None for any other path."""
    if path.parent.name == CHECKPOINTS and step_of(path) >= 0:
        return path.parent.parent
    return None
