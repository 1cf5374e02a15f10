"""DiffAugment on little data: pix2pix on 50 photo -> sketch pairs, with and without --diffaug.

    python benchmarks/diffaug.py                          # 400 steps at 128 px, both runs
    python benchmarks/diffaug.py --steps 5 --size 64      # a smoke test (a minute or two)
    python benchmarks/diffaug.py --device cuda --steps 2000

What users get: `i2i train pix2pix` (the CLI, a fresh process per run, the same seed, the
reference defaults except `--netG unet_<size>` and `--image-size <size>`), then the model
file through `i2i.load_model`. The data: 60 photos drawn (with `--seed`) from `--photos`
(default: T91 + BSD200 in ../shared/data/sr), centre-cropped square and resized to the load
size (size * 286/256, so the random crops of training lose nothing), then
`i2i.data.derive.derive_pairs("sketch")`: A = photo, B = its XDoG sketch. 50 pairs train,
10 are held out. Held-out L1: the mean absolute difference of G(A) and B on the held-out
pairs' centre `size` crops, in [0, 1] pixel units (fp32 inference, the model's own test
mode: pix2pix's train mode with seeded dropout). "train L1" is the last logged G_L1 of the
run in the same units (on its random crop): a gap to the held-out figure is overfitting.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
POLICY = "color,translation,cutout"
SHARED = Path(os.environ.get("I2I_SHARED") or REPO.parent / "shared")
DEFAULT_PHOTOS = [SHARED / "data" / "sr" / "T91", SHARED / "data" / "sr" / "BSD200"]
LAMBDA_L1 = 100.0  # pix2pix's default L1 weight: G_L1 in metrics.jsonl is L1 (in [-1, 1]) times this


def choose_photos(folders: list[Path], count: int, min_side: int, seed: int) -> list[Path]:
    """`count` photos of `folders` at least `min_side` pixels on both sides, drawn with `seed`
    (from their files sorted by name, as if they were in one folder)."""
    from i2i.data.io import list_images

    found = sorted((p for folder in folders for p in list_images(folder)), key=lambda p: (p.name, str(p)))
    eligible = [p for p in found if min(Image.open(p).size) >= min_side]
    if len(eligible) < count:
        names = ", ".join(f"{folder}/" for folder in folders)
        sys.exit(f"{names} hold {len(eligible)} photos of at least {min_side} px, {count} needed")
    return random.Random(seed).sample(eligible, count)


def square(src: Path, dst: Path, side: int) -> None:
    """The photo's centre square, resized to `side` x `side`."""
    image = Image.open(src).convert("RGB")
    w, h = image.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    dst.parent.mkdir(parents=True, exist_ok=True)
    image.crop(box).resize((side, side), Image.LANCZOS).save(dst)


def make_pairs(photos: list[Path], work: Path, load_size: int, n_train: int) -> tuple[Path, Path]:
    """work/train and work/test, each with A/ (photos) and B/ (sketches)."""
    from i2i.data.derive import derive_pairs

    for i, photo in enumerate(photos):
        split = "train" if i < n_train else "test"
        square(photo, work / f"photos_{split}" / f"{photo.stem}.png", load_size)
    for split in ("train", "test"):
        result = derive_pairs("sketch", work / f"photos_{split}", work / split, overwrite=True)  # a rerun remakes them
        if result.problems:
            sys.exit("\n".join(result.problems))
    return work / "train", work / "test"


def train(data: Path, out: Path, args: argparse.Namespace, diffaug: str) -> float:
    """One `i2i train pix2pix` run; returns its wall-clock seconds."""
    command = [sys.executable, "-m", "i2i", "train", "pix2pix", "--data", str(data), "--out", str(out),
               "--netG", f"unet_{args.size}", "--image-size", str(args.size), "--max-steps", str(args.steps),
               "--seed", str(args.seed), "--device", args.device, "--num-workers", "0",
               "--log-every", str(min(50, args.steps)), *args.extra.split()]
    if diffaug:
        command += ["--diffaug", diffaug]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, check=False)
    if done.returncode:
        sys.exit(f"training failed ({done.returncode}): {' '.join(command)}")
    return time.perf_counter() - start


def centre(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return image[top:top + size, left:left + size]


def held_out_l1(run: Path, test: Path, size: int, device: str) -> float:
    """Mean |G(A) - B| over the held-out pairs' centre crops, [0, 1] units."""
    import i2i
    from i2i.data.io import list_images, read_image

    translator = i2i.load_model(run, device=device, precision="fp32")
    errors = []
    for path_a in list_images(test / "A"):
        a = centre(read_image(path_a).pixels, size).astype(np.float32) / 255.0
        b = centre(read_image(test / "B" / path_a.name).pixels, size).astype(np.float32) / 255.0
        fake = translator(torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))))
        b = torch.from_numpy(b.reshape(size, size, -1).transpose(2, 0, 1).copy())
        errors.append((fake.float() - b).abs().mean().item())
    return float(np.mean(errors))


def train_l1(run: Path) -> float:
    """The last logged G_L1 in [0, 1] pixel units."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1])["G_L1"] / LAMBDA_L1 / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, nargs="+", default=DEFAULT_PHOTOS,
                        help="photo folders (default: T91 and BSD200 under $I2I_SHARED/data/sr, "
                             "$I2I_SHARED defaulting to ../shared)")
    parser.add_argument("--work", type=Path, default=None, help="folder for pairs and runs (default: a temp folder)")
    parser.add_argument("--train-pairs", type=int, default=50)
    parser.add_argument("--test-pairs", type=int, default=10)
    parser.add_argument("--size", type=int, default=128, choices=(32, 64, 128, 256))
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--policy", default=POLICY)
    parser.add_argument("--extra", default="", help="more `i2i train` flags for both runs, e.g. '--threads 1'")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="i2i-diffaug-"))
    if work.exists() and any(work.iterdir()):
        sys.exit(f"{work}/ is not empty")
    load_size = args.size * 286 // 256
    photos = choose_photos(args.photos, args.train_pairs + args.test_pairs, load_size, args.seed)
    train_dir, test_dir = make_pairs(photos, work, load_size, args.train_pairs)
    rows = []
    for name, diffaug in (("off", ""), (args.policy, args.policy)):
        run = work / ("run_off" if not diffaug else "run_diffaug")
        seconds = train(train_dir, run, args, diffaug)
        rows.append((name, held_out_l1(run, test_dir, args.size, args.device), train_l1(run), seconds))

    print(f"\npix2pix photo -> sketch, {args.train_pairs} train / {args.test_pairs} held-out pairs, "
          f"{args.size} px, {args.steps} steps, seed {args.seed}, device {args.device} (work: {work})")
    print(f"{'diffaug':<26} {'held-out L1':>11} {'train L1':>9} {'seconds':>8}")
    for name, held_out, trained, seconds in rows:
        print(f"{name:<26} {held_out:>11.4f} {trained:>9.4f} {seconds:>8.0f}")


if __name__ == "__main__":
    main()
