"""How far the default precision (auto) drifts from fp32 in training, per pipeline.

    python benchmarks/precision_drift.py                       # all three, 300 steps, 64 px
    python benchmarks/precision_drift.py --pipelines pix2pix --steps 100

Each pipeline trains three times through the real trainer on the sample photos
(datasets/samples/photos, 14 images; CycleGAN: photos -> their grayscale versions, pix2pix:
--task sketch, SRGAN: x4, stage psnr): fp32 with seed 0, auto with seed 0, and fp32 with
seed 1. The drift of auto from fp32 is then set against the drift that changing only the
seed causes -- the spread the fp32 result itself has -- because GAN training amplifies any
difference, rounding included, and two fp32 runs on different seeds end far apart too.

Printed per pipeline: the precision auto chose, each loss curve's drift (mean relative
difference after a moving average over --window steps), the final generators' outputs on 4
held-out photos (mean and largest absolute difference in [0, 1], PSNR of one against the
other), for auto-vs-fp32 and for seed-vs-seed.

The tolerance (exit status 1 if a pipeline misses it): the auto run must stay closer to
fp32 than a change of seed moves it -- output difference and worst loss-curve drift at most
1.0x the seed-to-seed figures (plus 0.01 on the curves' drift, for losses the seed hardly
moves). Networks are the reference's at reduced width (--width, default 32) so the
benchmark runs in minutes on a CPU; measured figures: benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO / "datasets" / "samples" / "photos"


def rgb8(pixels: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 from a decoded image's pixels (gray replicated, 16-bit scaled)."""
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    return np.repeat(pixels, 3, axis=-1) if pixels.shape[-1] == 1 else pixels


def prepare(work: Path) -> dict[str, Path]:
    """Training folders made from the sample photos, and 4 held-out photos as inputs."""
    from i2i.data.io import read_image, write_image

    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    train, held = photos[:-4], photos[-4:]
    for p in train:
        image = rgb8(read_image(p).pixels)
        write_image(work / "unpaired" / "trainA" / f"{p.stem}.png", image)
        gray = (image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32))
        write_image(work / "unpaired" / "trainB" / f"{p.stem}.png",
                    np.repeat(gray.round().astype(np.uint8)[..., None], 3, axis=-1))
        (work / "photos").mkdir(parents=True, exist_ok=True)
        shutil.copy(p, work / "photos" / p.name)
    for p in held:
        write_image(work / "held" / f"{p.stem}.png", rgb8(read_image(p).pixels))
    return {"cyclegan": work / "unpaired", "pix2pix": work / "photos", "srgan": work / "photos"}


def held_inputs(work: Path, size: int):
    """The held-out photos, centre-cropped to `size`, as a batch in [0, 1]."""
    import torch

    from i2i.data.io import read_image

    out = []
    for p in sorted((work / "held").iterdir()):
        image = read_image(p).pixels
        h, w = image.shape[:2]
        top, left = (h - size) // 2, (w - size) // 2
        out.append(torch.from_numpy(image[top:top + size, left:left + size].copy()).permute(2, 0, 1).float() / 255)
    return torch.stack(out)


def recipe(pipeline: str, steps: int, width: int, size: int) -> dict:
    """Each pipeline's reference settings at `size` px and `width`, `steps` long."""
    common = {"max_steps": steps, "checkpoint_every": steps, "sample_every": steps}
    if pipeline == "cyclegan":
        return {**common, "netG": "resnet_9blocks", "width": width, "ndf": width, "image_size": size,
                "load_size": size * 286 // 256}
    if pipeline == "pix2pix":
        return {**common, "netG": f"unet_{size}", "width": width, "ndf": width, "image_size": size,
                "load_size": size * 286 // 256, "task": "sketch"}
    return {**common, "width": width, "num_blocks": 16, "image_size": size, "scale": 4, "batch_size": 16}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipelines", default="cyclegan,pix2pix,srgan")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--window", type=int, default=25, help="moving average of the loss curves (steps)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    import torch

    from i2i.bench import compare_runs, machine, train_run

    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine("cpu")
    print(f"CPU: {info['cpu']} (flags {' '.join(info['cpu_flags'])}), {info['threads']} threads; "
          f"{args.steps} steps at {args.size} px, width {args.width}")
    results, failed = {}, []
    with tempfile.TemporaryDirectory(prefix="i2i-drift-") as folder:
        work = Path(folder)
        data = prepare(work)
        for pipeline in args.pipelines.split(","):
            settings = recipe(pipeline, args.steps, args.width, args.size)
            runs = {label: train_run(pipeline, data[pipeline], work / pipeline / label,
                                     {**settings, "precision": precision, "seed": seed})
                    for label, precision, seed in (("fp32", "fp32", 0), ("auto", "auto", 0), ("seed1", "fp32", 1))}
            lr_size = args.size // 4 if pipeline == "srgan" else args.size
            inputs = held_inputs(work, lr_size)
            auto = compare_runs(runs["fp32"], runs["auto"], inputs, args.window)
            seed = compare_runs(runs["fp32"], runs["seed1"], inputs, args.window)
            ok = (auto["output_mean_abs"] <= seed["output_mean_abs"]
                  and auto["worst_curve"] <= seed["worst_curve"] + 0.01)
            results[pipeline] = {"auto_precision": runs["auto"]["precision"], "auto_vs_fp32": auto,
                                 "seed_vs_seed": seed, "within_tolerance": ok}
            if not ok:
                failed.append(pipeline)
            print(f"\n{pipeline}: auto = {runs['auto']['precision']}   {'OK' if ok else 'DRIFTS TOO FAR'}")
            print(f"  {'':<14} {'output mean':>12} {'output max':>11} {'PSNR dB':>8} {'worst curve':>12}  curves")
            for label, r in (("auto vs fp32", auto), ("seed vs seed", seed)):
                curves = " ".join(f"{k} {v:.3f}" for k, v in r["curves"].items())
                print(f"  {label:<14} {r['output_mean_abs']:>12.4f} {r['output_max_abs']:>11.3f} "
                      f"{r['output_psnr_db']:>8.2f} {r['worst_curve']:>12.3f}  {curves}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "settings": vars(args) | {"json": str(args.json)},
                                         "results": results}, indent=1, default=str))
    if failed:
        print(f"\nbeyond the tolerance: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
