"""Make tests/data/legacy/: model files and translated outputs as the code of a given commit
writes them, so later code can be checked to load the same files and write the same pixels.

    python tests/data/make_legacy.py        # from the repository root; run at commit e2af638

Four tiny runs (one step each) through the trainer, so the model files carry the settings
the pipelines wrote at that commit: CycleGAN (both directions), pix2pix (test mode "train"),
pix2pix colorize_lab, SRGAN x2 (translated whole and in tiles). Inputs: three small images
(RGB, gray, RGBA). Outputs: PNGs under legacy/out/<case>/.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from i2i.infer import load_model
from i2i.training import make_settings, train

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_legacy import CASES, LEGACY as HERE  # noqa: E402  (the cases the test replays)


def photos(folder: Path, n: int, size: int, seed: int, mode: str = "RGB") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        low = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        Image.fromarray(low).resize((size, size), Image.BICUBIC).convert(mode).save(folder / f"img_{i}.png")
    return folder


def make_inputs(folder: Path) -> None:
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:36, 0:40]
    rgb = np.stack([x * 6, y * 7, (x + y) * 3], -1) + rng.normal(0, 12, (36, 40, 3))
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(folder / "rgb.png")
    Image.fromarray(np.clip(rgb[:20, :24, 1], 0, 255).astype(np.uint8)).save(folder / "gray.png")
    alpha = np.linspace(0, 255, 16 * 16).reshape(16, 16, 1)
    Image.fromarray(np.clip(np.dstack([rgb[:16, :16], alpha]), 0, 255).astype(np.uint8)).save(folder / "rgba.png")


def make_models(work: Path) -> None:
    torch.set_num_threads(1)
    gan = {"width": 4, "ndf": 4, "image_size": 32, "load_size": 36, "num_workers": 0, "max_steps": 1,
           "init_type": "xavier", "init_gain": 1.0, "device": "cpu"}
    runs = {
        "cyclegan": ("cyclegan", {"data": str(photos(work / "u/trainA", 2, 40, 1).parent), "netG": "resnet_6blocks",
                                  "norm": "batch", **gan}),
        "pix2pix": ("pix2pix", {"data": str(photos(work / "photos", 2, 40, 3)), "task": "sketch", "netG": "unet_32",
                                **gan}),
        "lab": ("pix2pix", {"data": str(work / "photos"), "task": "colorize_lab", "netG": "unet_32", **gan}),
        "sr": ("srgan", {"data": str(photos(work / "hr", 2, 48, 5)), "scale": 2, "width": 4, "num_blocks": 1,
                         "image_size": 32, "batch_size": 2, "num_workers": 0, "max_steps": 1, "device": "cpu"}),
    }
    photos(work / "u/trainB", 2, 40, 2)
    for name, (pipeline, values) in runs.items():
        config, options = make_settings(pipeline, {**values, "out": str(work / name)})
        train(pipeline, config, options)
        shutil.copy(work / name / "model.safetensors", HERE / f"{name}.safetensors")


def main() -> None:
    (HERE / "in").mkdir(parents=True, exist_ok=True)
    make_inputs(HERE / "in")
    with tempfile.TemporaryDirectory() as work:
        make_models(Path(work))
    for case, (model, load_kwargs, folder_kwargs) in CASES.items():
        translator = load_model(HERE / f"{model}.safetensors", device="cpu", precision="fp32", **load_kwargs)
        translator.translate_folder(HERE / "in", HERE / "out" / case, overwrite=True, progress=False, **folder_kwargs)


if __name__ == "__main__":
    main()
