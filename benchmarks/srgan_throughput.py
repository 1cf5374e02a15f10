"""How fast the SRGAN data path feeds patches, and how fast a training step runs.

    PYTHONPATH=. python benchmarks/srgan_throughput.py --data ../shared/data/sr/T91 --workers 8
    PYTHONPATH=. python benchmarks/srgan_throughput.py --synthetic 64 --workers 12 --steps 50

Loader: the training DataLoader (`SRDataset` via `SRGAN.build_dataset`, seeded per sample as
the trainer does), HR patches with MATLAB-bicubic LR made per patch, in patches/s. Step:
`SRGAN.step` on the device (stage psnr, or gan with a random VGG19), in s/step.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def synthetic_photos(folder: Path, count: int, size: int = 320) -> Path:
    """`count` textured RGB PNGs (a stand-in when no photo folder is at hand)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    for i in range(count):
        channels = [127 + 100 * np.sin(x / rng.uniform(2, 20) + rng.uniform(0, 6)) * np.cos(y / rng.uniform(2, 20))
                    for _ in range(3)]
        image = np.clip(np.stack(channels, -1) + rng.normal(0, 6, (size, size, 3)), 0, 255)
        Image.fromarray(image.astype(np.uint8)).save(folder / f"{i:04d}.png")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="HR photo folder")
    parser.add_argument("--synthetic", type=int, default=0, help="make this many synthetic photos instead")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--steps", type=int, default=0, help="also time this many training steps")
    parser.add_argument("--stage", default="psnr", choices=["psnr", "gan"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="bf16")
    args = parser.parse_args()

    from torch.utils.data import DataLoader

    from i2i.device import autocast, resolve_device
    from i2i.pipelines.srgan import SRGAN
    from i2i.spec import spec_for_network
    from i2i.training import make_settings
    from i2i.training.data_order import RunOrder, SeededDataset, to_device

    tmp = Path(tempfile.mkdtemp(prefix="srgan_bench_"))
    data = args.data or str(synthetic_photos(tmp / "photos", args.synthetic or 64))
    values = {"data": data, "out": str(tmp / "run"), "stage": args.stage}
    if args.stage == "gan":
        import i2i.nn
        from i2i.checkpoint import save_model
        from i2i.losses import save_random_vgg19

        generator = i2i.nn.create("srresnet", scale=4)
        save_model(tmp / "psnr.safetensors", {"G": generator}, spec_for_network(generator, "srgan"))
        values.update(pretrained=str(tmp / "psnr.safetensors"),
                      vgg_weights=str(save_random_vgg19(tmp / "vgg19.safetensors", layer="conv5_4")))
    config, options = make_settings("srgan", values)
    SRGAN.resolve(options, config, quiet=True)
    dataset = SRGAN.build_dataset(options, config)
    loader = DataLoader(SeededDataset(dataset, 0), batch_sampler=RunOrder(len(dataset), config.batch_size, 0, True, 0, 0),
                        num_workers=args.workers, pin_memory=torch.cuda.is_available())
    batches = iter(loader)
    next(batches)  # workers started
    start = time.perf_counter()
    for _ in range(args.batches):
        next(batches)
    seconds = time.perf_counter() - start
    print(f"loader: {args.batches * config.batch_size / seconds:.0f} patches/s "
          f"({args.workers} workers, {len(dataset.items)} images, HR patch {config.image_size}, x{options.scale})")

    if args.steps:
        device = resolve_device(args.device)
        pipe = SRGAN(options, config, device, autocast=lambda: autocast(device, args.precision))
        for i in range(args.steps + 5):
            if i == 5:  # warm-up done (cudnn autotune, allocator)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            losses = pipe.step(to_device(next(batches), device))
        float(losses["G"])  # sync
        seconds = (time.perf_counter() - start) / args.steps
        print(f"step ({args.stage}, {device}, {args.precision}, batch {config.batch_size}): {seconds:.4f} s/step, "
              f"{config.batch_size / seconds:.0f} patches/s")


if __name__ == "__main__":
    main()
