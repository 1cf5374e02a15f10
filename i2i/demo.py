"""`i2i demo`: the whole toolkit in a few minutes on a CPU, with nothing to download.

Trains two small pix2pix models on the sample photos shipped in `datasets/samples/photos/`
(photo -> pencil sketch, grayscale -> colour), translates the photos with them through the
same API as `i2i translate`, and writes `OUT/index.html`: inputs, outputs, targets and loss
curves. Small on purpose (U-Net 64 of width 16, 64 px crops): it shows the machinery working,
not the quality a real run reaches.
"""
from __future__ import annotations

import html
import os
import shutil
from pathlib import Path

from i2i.errors import UsageError
from i2i.shipped import shipped_path

SAMPLES = shipped_path("datasets", "samples", "photos")

# pix2pix task -> title: each trains one model on the same photos
TASKS = {
    "sketch": "photo → pencil sketch",
    "colorize": "grayscale → colour",
}


def demo_settings(task: str, photos: Path, run: Path, steps: int, device: str, seed: int, threads: int = 0) -> dict:
    """The flat training settings of one demo model (what `i2i train pix2pix` would take)."""
    return {
        "data": str(photos), "out": str(run), "task": task,
        "netG": "unet_64", "width": 16, "ndf": 16, "n_layers_D": 2,
        # 64 px crops at the photos' own scale, so the model sees what it translates later
        "image_size": 64, "preprocess": "crop", "batch_size": 4, "max_steps": steps,
        "lr": 1e-3, "lr_policy": "linear", "num_workers": 0, "device": device, "precision": "fp32",
        "seed": seed, "threads": threads, "checkpoint_every": steps, "sample_every": max(1, steps // 4),
        "log_every": max(1, steps // 40),
    }


def run_demo(out: str | os.PathLike = "demo", *, photos: str | os.PathLike | None = None, steps: int = 400,
             device: str = "auto", seed: int = 0, overwrite: bool = False, threads: int = 0) -> Path:
    """Train the demo models, translate the photos, write OUT/index.html; returns its path.

    `threads` > 0: torch's CPU threads for the training runs and the translation (0: torch's
    default, one per core); torch's setting is restored afterwards.
    """
    import torch

    from i2i.data.io import list_images
    from i2i.device import torch_threads

    out = Path(out)
    photos = Path(photos) if photos is not None else SAMPLES
    if not photos.is_dir() or not list_images(photos):
        raise UsageError(f"{photos}/ has no photos for the demo")
    if threads < 0:
        raise UsageError(f"threads must be >= 0 (0: one per core), got {threads}")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise UsageError(f"{out}/ exists and is not empty; pass --overwrite or choose another --out")
        shutil.rmtree(out)
    with torch_threads(threads):
        print(f"[demo] threads: {torch.get_num_threads()}", flush=True)
        return _train_and_translate(out, photos, steps, device, seed, torch.get_num_threads())


def _train_and_translate(out: Path, photos: Path, steps: int, device: str, seed: int, threads: int) -> Path:
    from i2i.infer import load_model
    from i2i.training import make_settings, train

    results = {}
    for task, title in TASKS.items():
        print(f"[demo] training {title} ({steps} steps)", flush=True)
        run = out / "runs" / task
        config, options = make_settings("pix2pix", demo_settings(task, photos, run, steps, device, seed, threads))
        train("pix2pix", config, options)
        print(f"[demo] translating {photos} with it", flush=True)
        translator = load_model(run, device=device, precision="fp32")
        summary = translator.translate_folder(photos, out / task, ext="png", progress=False)
        results[task] = (run, summary)
    page = _write_page(out, photos, results)
    print(f"[demo] done: open {page}", flush=True)
    return page


def _write_page(out: Path, photos: Path, results: dict) -> Path:
    """One table per task: input, model output, and the run's loss curves."""
    from i2i.atomic import write_text
    from i2i.data.datasets import gray
    from i2i.data.io import from_tensor, list_images, read_image, to_tensor, write_image
    from i2i.data.sketch import sketch
    from i2i.report import loss_charts, read_metrics

    inputs = out / "inputs"
    targets = out / "targets"
    rows = {task: [] for task in TASKS}
    for path in list_images(photos):
        image = read_image(path)
        name = f"{path.stem}.png"
        write_image(inputs / "photo" / name, image.pixels)
        gray_pixels = gray(image.pixels)
        write_image(inputs / "gray" / name, gray_pixels)
        write_image(targets / "sketch" / name, from_tensor(sketch(to_tensor(image)[None])[0]))
        rows["sketch"].append((f"inputs/photo/{name}", f"sketch/{name}", f"targets/sketch/{name}"))
        rows["colorize"].append((f"inputs/gray/{name}", f"colorize/{name}", f"inputs/photo/{name}"))
    parts = ["<!doctype html><meta charset='utf-8'><title>i2i demo</title>",
             "<style>body{font-family:sans-serif;margin:2em}img{width:128px;image-rendering:pixelated}"
             "td{padding:2px;text-align:center}</style>",
             "<h1>i2i demo</h1><p>Two pix2pix models trained on the sample photos in a few minutes on this "
             "machine. Columns: input, model output, target.</p>"]
    for task, title in TASKS.items():
        run, summary = results[task]
        charts = loss_charts(read_metrics(run), ("G_GAN", "G_L1", "D_real", "D_fake"))
        parts.append(f"<h2>{html.escape(title)}</h2><p>{summary.done} images translated; "
                     f"training run: <a href='runs/{task}/index.html'>runs/{task}/</a></p>{charts}<table>")
        parts.append("<tr><th>input</th><th>output</th><th>target</th></tr>")
        for cells in rows[task]:
            parts.append("<tr>" + "".join(f"<td><img src='{html.escape(c)}'></td>" for c in cells) + "</tr>")
        parts.append("</table>")
    page = out / "index.html"
    write_text(page, "\n".join(parts))
    return page
