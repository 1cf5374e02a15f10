"""Folder inference speed and memory: `Translator.translate_folder`, disk to disk.

    python benchmarks/translate.py [--images 100] [--size 256] [--batch-size 1] [--device cpu]
                                   [--workers 1,2] [--configs bf16-cl,auto] [--tile 512]
                                   [--peak-sizes 4096] [--peak-models resnet_9blocks]
                                   [--skip-speed] [--skip-peak] [--peak-memory]

(`i2i bench translate` measures one configuration the way a user runs it, `i2i translate` in a
fresh process, start-up included; this script compares configurations inside one process.)

1. images/s for resnet_9blocks (width 64, random init) on the CPU, `--images` PNGs of
   `--size` px generated in a temp folder, read and written as files (decode ahead and
   write behind included), for fp32, fp32 + channels_last, bf16, bf16 + channels_last and
   what precision="auto" picks, side by side, with `--workers` model workers (default: what
   translate_folder picks, one per torch thread on the CPU). Target: <= 0.09 s per image
   (the reference test.py: 0.354 s per image plus ~4 s start-up).
   "model only" is the network alone, one call on all torch threads (best of 5): a figure
   that other load hardly moves.
2. `i2i --help` start-up (best of 5). Target: < 2 s.
3. Peak RSS (VmHWM of a fresh subprocess, one at a time) translating one square PNG of
   each `--peak-sizes` with each `--peak-models` ("tiny": resnet_6blocks width 4;
   "resnet_9blocks": width 64) and `--tile` (tile_pad 32; `--tile 0`: whole images, tiled
   automatically when they would not fit in the free memory). The PNGs are smooth pictures
   (noise blocks and a ramp), so a 13000x13000 one is about 0.6 MB.
   Target: under 2 GB for 13000x13000 with tiles (source and result as 8-bit arrays are
   about 1 GB of it; inputs of 4096x4096 and more now stream their result to the PNG a row
   of tiles at a time, so the result never exists whole). Beside it, the peak of each phase
   (setup: imports and the model; decode; translate, which includes the streamed encode;
   encode, for images written whole). `--peak-memory` measures only this, by default
   for 13000 and 6000 px with both models. To measure another checkout, run it with
   PYTHONPATH=/that/checkout.

Prints the CPU model: on a shared machine, rerun before comparing numbers.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from i2i.bench import make_network as make_net  # shared with `i2i bench translate`
from i2i.bench import picture


def big_picture(path: Path, size: int) -> None:
    """A size x size PNG that compresses as well as the issue's (13000 px: ~0.6 MB): noise
    blocks of 100 px plus a horizontal ramp."""
    import PIL.Image

    path.parent.mkdir(parents=True, exist_ok=True)
    small = np.random.default_rng(size).integers(0, 128, (max(1, size // 100),) * 2 + (3,), dtype=np.uint8)
    blocks = np.asarray(PIL.Image.fromarray(small).resize((size, size), PIL.Image.Resampling.NEAREST))
    ramp = (np.arange(size, dtype=np.uint32) * 128 // size).astype(np.uint8)
    PIL.Image.fromarray(blocks + ramp[None, :, None]).save(path)


def speed(args: argparse.Namespace, work: Path) -> None:
    import torch

    from i2i.data.io import write_image
    from i2i.infer import Translator

    src, warm = work / "in", work / "warm"
    for i in range(args.images):
        write_image(src / f"{i:04d}.png", picture(args.size, i))
    for i in range(3):
        write_image(warm / f"{i}.png", picture(args.size, 1000 + i))
    print(f"{args.images} PNGs of {args.size}x{args.size}, batch size {args.batch_size}, "
          f"device {args.device}, {torch.get_num_threads()} torch threads")
    print(f"{'config':<24} {'workers':>7} {'s/image':>8} {'images/s':>9} {'model only':>11}")
    configs = [("fp32", "fp32", False), ("fp32 + channels_last", "fp32", True),
               ("bf16", "bf16", False), ("bf16 + channels_last", "bf16", True), ("auto", "auto", None)]
    if args.device != "cpu":
        configs[-1:-1] = [("fp16", "fp16", False), ("fp16 + channels_last", "fp16", True)]
    wanted = args.configs.split(",") if args.configs else None
    for label, precision, channels_last in configs:
        if wanted and label.replace(" + channels_last", "-cl") not in wanted:
            continue
        try:
            translator = Translator(make_net(), device=args.device, precision=precision, channels_last=channels_last)
        except Exception as error:  # e.g. no bf16 on this CPU
            print(f"{label:<24} skipped: {error}")
            continue
        for workers in args.workers or [translator.default_workers()]:
            options = dict(batch_size=args.batch_size, workers=workers, overwrite=True, progress=False)
            translator.translate_folder(warm, work / "warm-out", **options)  # kernels built, `auto` decided
            summary = translator.translate_folder(src, work / "out", **options)
            assert summary.done == args.images and summary.failed == 0, summary
            if precision == "auto":  # decided at the first image
                label = f"auto ({translator.precision}{' + cl' if translator.channels_last else ''})"
            per_image = summary.seconds / summary.done
            print(f"{label:<24} {workers:7d} {per_image:8.3f} {1 / per_image:9.2f} "
                  f"{model_seconds(translator, args):11.3f}", flush=True)


def model_seconds(translator, args: argparse.Namespace) -> float:
    """The network alone on one batch, best of 5: a floor that load from other processes
    does not move (the folder time above includes decoding, encoding and any such load)."""
    import torch

    x = torch.rand(args.batch_size, 3, args.size, args.size)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        translator.translate_tensor(x)
        if translator.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best / args.batch_size


def startup() -> None:
    script = shutil.which("i2i") or str(Path(sys.executable).with_name("i2i"))
    command = [script] if Path(script).is_file() else [sys.executable, "-m", "i2i"]
    times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([*command, "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    name = " ".join(Path(c).name for c in command)
    print(f"{name} --help start-up: {min(times):.2f} s (best of 5; median {sorted(times)[2]:.2f} s)")


def peak(args: argparse.Namespace, work: Path) -> None:
    """One fresh subprocess per (size, model), one after the other."""
    print(f"peak RSS, tile {args.tile} (tile_pad 32), one PNG at a time, CPU:")
    for size in args.peak_sizes:
        image = work / "big" / f"{size}.png"
        big_picture(image, size)
        for name in args.peak_models:
            start = time.perf_counter()
            run = subprocess.run([sys.executable, __file__, "--peak-child", str(image), "--peak-models", name,
                                  "--tile", str(args.tile)], capture_output=True, text=True)
            seconds = time.perf_counter() - start
            result = run.stdout.strip() if run.returncode == 0 else f"failed ({run.returncode}): {run.stderr[-300:]}"
            print(f"  {size}x{size} ({image.stat().st_size / 1e3:.0f} KB PNG), {name}: {result} ({seconds:.0f} s)",
                  flush=True)
            for line in run.stderr.splitlines():
                if line.endswith("px tiles"):  # tiled automatically (--tile 0)
                    print(f"    {line}", flush=True)


def peak_child(image: Path, name: str, tile: int) -> None:
    """Runs in a fresh process, so its peak RSS is this case's only: the largest of its
    phases' (setup: imports and the model; decode; translate, with the encode when the result
    is streamed to the file; encode, when it is written whole), which are printed too, with
    the output file's size. (ru_maxrss cannot serve: resetting the peak per
    phase resets it too.)"""
    from i2i.data import io
    from i2i.infer import Translator

    phases = Phases()
    translator = Translator(make_net(name), device="cpu")
    read, write = io.read_image, io.write_image
    io.read_image = phases.around(read, "decode", "translate")  # the folder runner calls them through `io`
    io.write_image = phases.around(write, "encode", "end")
    try:
        summary = translator.translate_folder(image, image.parent / "out", tile=tile, tile_pad=32,
                                              overwrite=True, progress=False)
    finally:
        io.read_image, io.write_image = read, write
    phases.begin(None)
    assert summary.done == 1, summary
    config = f"{translator.precision}{' + cl' if translator.channels_last else ''}"
    output = (image.parent / "out" / image.name).stat().st_size
    print(f"{max(phases.peaks.values()):.2f} GB [{config}]; {phases}; output PNG {output / 1e6:.0f} MB")


class Phases:
    """Peak RSS per phase of a one-image folder run, from /proc/self/status (VmHWM, reset
    through /proc/self/clear_refs at each phase's start; Linux)."""

    def __init__(self):
        self.peaks: dict[str, float] = {}
        self.current: str | None = "setup"

    def begin(self, phase: str | None) -> None:
        with open("/proc/self/status") as f:
            peak = next(int(line.split()[1]) * 1024 / 1e9 for line in f if line.startswith("VmHWM"))
        if self.current is not None:
            self.peaks[self.current] = max(peak, self.peaks.get(self.current, 0.0))
        self.current = phase
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS

    def around(self, call, phase: str, after: str):
        def wrapped(*args, **kwargs):
            self.begin(phase)
            try:
                return call(*args, **kwargs)
            finally:
                self.begin(after)
        return wrapped

    def __str__(self) -> str:
        return ", ".join(f"{phase} {peak:.2f}" for phase, peak in self.peaks.items() if phase != "end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="for the speed table (start-up and peak RSS: CPU)")
    parser.add_argument("--workers", type=lambda text: [int(n) for n in text.split(",")],
                        help="model workers to compare, e.g. 1,2 (default: what translate_folder picks)")
    parser.add_argument("--configs", help="a subset, e.g. bf16-cl,auto (of fp32, fp32-cl, bf16, bf16-cl, "
                                          "fp16, fp16-cl, auto)")
    parser.add_argument("--peak-sizes", type=lambda text: [int(n) for n in text.split(",")],
                        help="square image sizes for the peak RSS figure (default 4096; --peak-memory: 13000,6000)")
    parser.add_argument("--peak-models", type=lambda text: text.split(","),
                        help="tiny and/or resnet_9blocks (default resnet_9blocks; --peak-memory: both)")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-peak", action="store_true")
    parser.add_argument("--peak-memory", action="store_true", help="only the peak RSS figures")
    parser.add_argument("--peak-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_child:
        peak_child(args.peak_child, args.peak_models[0], args.tile)
        return
    big = args.peak_memory
    args.peak_sizes = args.peak_sizes or ([13000, 6000] if big else [4096])
    args.peak_models = args.peak_models or (["tiny", "resnet_9blocks"] if big else ["resnet_9blocks"])
    from i2i.device import cpu_model

    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores)")
    if args.device.startswith("cuda"):
        import torch

        print(f"GPU: {torch.cuda.get_device_name(args.device)}")
    if not big:
        startup()
    with tempfile.TemporaryDirectory(prefix="i2i-bench-") as folder:
        work = Path(folder)
        if not (args.skip_speed or big):
            speed(args, work)
        if not args.skip_peak:
            peak(args, work)


if __name__ == "__main__":
    main()
