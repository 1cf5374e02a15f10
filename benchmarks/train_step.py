"""Seconds per training step of the default CycleGAN 256 and pix2pix 256, per precision.

    python benchmarks/train_step.py                     # both pipelines, fp32 and auto, CPU
    python benchmarks/train_step.py --pipelines cyclegan --precisions fp32 --steps 5
    python benchmarks/train_step.py --device cuda --precisions fp32,bf16,fp16

A table around `i2i.bench.time_train_steps` (what `i2i bench train` prints as JSON): the
pipelines' reference defaults (CycleGAN resnet_9blocks + PatchGAN, width 64, instance norm;
pix2pix unet_256 + PatchGAN, batch norm, dropout; batch 1, 256x256 crops), the trainer's own
step (both optimisers, fused Adam, GradScaler, EMA) on a random batch already on the device,
so data loading is not included. Warm-up steps are not timed; the median of the timed steps
is printed. On a shared machine, run the precisions in several rounds (--rounds) and compare
the rounds' ratios rather than single figures.
"""
from __future__ import annotations

import argparse
import sys

from i2i.bench import machine, time_train_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipelines", default="cyclegan,pix2pix")
    parser.add_argument("--precisions", default="fp32,auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=256,
                        help="crop size; pix2pix's unet_256 takes multiples of 256 only")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole table, interleaved")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    info = machine(args.device)
    print(f"device: {args.device} ({info['gpu'] or info['cpu']}, flags {' '.join(info['cpu_flags'])}); "
          f"torch {info['torch']}")
    print(f"{'round':<6} {'pipeline':<10} {'precision':<9} {'s/step (median)':>16} {'min':>8} {'max':>8} {'threads':>8}")
    for round_ in range(1, args.rounds + 1):
        for name in args.pipelines.split(","):
            for precision in args.precisions.split(","):
                r = time_train_steps(name, image_size=args.size, steps=args.steps, warmup=args.warmup,
                                     device=args.device, precision=precision, threads=args.threads)
                print(f"{round_:<6} {name:<10} {r['precision']:<9} {r['sec_per_step']:>16.3f} "
                      f"{r['sec_per_step_min']:>8.3f} {r['sec_per_step_max']:>8.3f} {r['threads']:>8}", flush=True)


if __name__ == "__main__":
    from i2i.errors import I2IError

    try:
        main()
    except I2IError as error:  # e.g. a --size the network cannot take: i2i's one line
        sys.exit(f"error: {error}")
