"""Seconds per training step of the default CycleGAN 256 and pix2pix 256, per precision.

    python benchmarks/train_step.py                     # both pipelines, fp32 and bf16, CPU
    python benchmarks/train_step.py --pipelines cyclegan --precisions fp32 --steps 5
    python benchmarks/train_step.py --device cuda --precisions fp32,bf16,fp16

The reference defaults: CycleGAN resnet_9blocks + PatchGAN, width 64, instance norm;
pix2pix unet_256 + PatchGAN, width 64, batch norm, dropout; batch 1, 256x256 crops. One
step is the pipeline's full `step` (both generators and discriminators, both optimisers),
on a random batch already on the device, so data loading is not included. Warm-up steps
are not timed; the median of the timed steps is printed.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from i2i.device import autocast, cpu_has_native_bf16, cpu_model, resolve_device, resolve_precision
from i2i.pipelines import get_pipeline
from i2i.training import TrainConfig


def time_steps(name: str, device: torch.device, precision: str, size: int, warmup: int, steps: int) -> list[float]:
    cls = get_pipeline(name)
    options = cls.Options(in_channels=3, out_channels=3)
    config = TrainConfig(image_size=size)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    torch.manual_seed(0)
    pipe = cls(options, config, device, autocast=lambda: autocast(device, precision), scaler=scaler)
    batch = {"A": torch.rand(1, 3, size, size, device=device), "B": torch.rand(1, 3, size, size, device=device)}
    times = []
    for i in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        losses = pipe.step(batch)
        scaler.update()
        float(losses["G"])  # waits for the device
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipelines", default="cyclegan,pix2pix")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    print(f"device: {device} ({where}); torch {torch.__version__}; threads {torch.get_num_threads()}; "
          f"native bf16 on this CPU: {cpu_has_native_bf16()}")
    print(f"{'pipeline':<10} {'precision':<9} {'s/step (median)':>16} {'min':>8} {'max':>8}")
    for name in args.pipelines.split(","):
        for precision in args.precisions.split(","):
            precision = resolve_precision(precision, device)
            times = time_steps(name, device, precision, args.size, args.warmup, args.steps)
            print(f"{name:<10} {precision:<9} {statistics.median(times):>16.3f} {min(times):>8.3f} {max(times):>8.3f}",
                  flush=True)


if __name__ == "__main__":
    main()
