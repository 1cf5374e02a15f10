"""Training-loader throughput: decode + resize_and_crop 286->256 + flip, 0/1/2 workers.

Writes a temporary unpaired dataset (400x300 photos-like images, half JPEG, half PNG),
then times a DataLoader over `UnpairedDataset` with the reference CycleGAN transform at
batch size 1, as the reference trains. One item is a pair, so it decodes two images.

    python benchmarks/loader.py [--images 48] [--epochs 2] [--augment]

`--augment` also times the per-call overhead of the GPU batch augmentation (our plain
torch flips/rot90 vs kornia's AugmentationSequential) on the CPU (and CUDA if present).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from i2i.device import cpu_model


def make_images(root: Path, count: int) -> None:
    """Smooth gradients plus noise, so that JPEG/PNG sizes look like photos' rather than noise's."""
    from i2i.data.io import write_image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:300, 0:400]
    for side in ("trainA", "trainB"):
        for i in range(count):
            base = np.stack([x * 255 / 400, y * 255 / 300, (x + y) * 255 / 700], axis=-1)
            pixels = np.clip(base + rng.normal(0, 12, base.shape) + rng.integers(0, 60), 0, 255).astype(np.uint8)
            write_image(root / side / f"{i:03d}.{'jpg' if i % 2 else 'png'}", pixels)


def time_loader(root: Path, workers: int, epochs: int) -> tuple[float, int]:
    from torch.utils.data import DataLoader

    from i2i.data.augment import cpu_transform
    from i2i.data.datasets import UnpairedDataset

    dataset = UnpairedDataset(root, transform=cpu_transform("resize_and_crop", 286, 256))
    loader = DataLoader(dataset, batch_size=1, shuffle=True, num_workers=workers, persistent_workers=workers > 0)
    iterator = iter(loader)
    next(iterator)  # worker start-up and first decode are not throughput
    count, start = 0, time.perf_counter()
    for _ in iterator:
        count += 1
    for _ in range(epochs - 1):
        for _ in loader:
            count += 1
    return time.perf_counter() - start, count


def time_augment(device: str, batch: int, repeats: int = 50) -> dict[str, float]:
    """Milliseconds per call: our GpuAugment vs kornia containers, flips + rot90 on a pair."""
    import kornia.augmentation as K

    from i2i.data.augment import GpuAugment

    a = torch.rand(batch, 3, 256, 256, device=device)
    b = torch.rand(batch, 3, 256, 256, device=device)
    ours = GpuAugment(flip=True, rot90=True)
    kornia = K.AugmentationSequential(
        K.RandomHorizontalFlip(), K.RandomVerticalFlip(), K.RandomRotation90(times=(0, 3)),
        data_keys=["input", "input"],
    )
    results = {}
    for name, fn in (("torch (GpuAugment)", lambda: ours(a, b)), ("kornia AugmentationSequential", lambda: kornia(a, b))):
        for _ in range(3):
            fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        results[name] = (time.perf_counter() - start) / repeats * 1000
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48, help="images per side")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--augment", action="store_true", help="also time GPU augmentation overhead")
    args = parser.parse_args()

    print(f"CPU: {cpu_model()} ({torch.get_num_threads()} torch threads), torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_images(root, args.images)
        print(f"loader: UnpairedDataset, 400x300 JPEG/PNG, resize_and_crop 286->256 + flip, batch 1, {args.images} pairs x {args.epochs} epochs")
        for workers in args.workers:
            seconds, count = time_loader(root, workers, args.epochs)
            print(f"  workers={workers}: {count / seconds:7.1f} pairs/s  ({2 * count / seconds:7.1f} images/s, {1000 * seconds / count:6.1f} ms/pair)")
    if args.augment:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        for device in devices:
            for batch in (1, 16):
                timings = time_augment(device, batch)
                text = ", ".join(f"{name} {ms:.3f} ms" for name, ms in timings.items())
                print(f"augment pair 256x256 {device} batch {batch}: {text}")


if __name__ == "__main__":
    main()
