#!/usr/bin/env bash
# Training speed and peak memory side by side with the reference CycleGAN/pix2pix code, on
# this machine, in one run:
#
#     [REF_PYTHON=/path/to/python] benchmarks/reference_side_by_side.sh /path/to/pytorch-CycleGAN-and-pix2pix [STEPS] [cpu|gpu]
#
# The reference is the user's own checkout of junyanz/pytorch-CycleGAN-and-pix2pix (its
# train.py runs headless: no visdom, no HTML; it needs `pip install dominate`, and since upstream
# 2a7afba also `wandb`, imported unconditionally), run by REF_PYTHON (default: this python);
# nothing of it is copied here. Options the reference dropped in 2a7afba (--gpu_ids,
# --display_id) are passed only where its --help lists them. Both train on the same generated data (smooth noisy pictures, i2i.bench.picture):
# CycleGAN at 128 (load 143) and 256 (load 286), pix2pix at 256 (aligned A|B pairs), batch 1,
# the reference defaults on both sides. Reference: its own per-iteration "time:" print
# (set_input + optimize_parameters, data loading excluded), median after 3 warm-up iterations,
# and the peak RSS of its process. i2i: `i2i bench train` (the trainer's step on a batch
# already on the device, median after 2 warm-up steps) in fp32 and in the default precision.
# Translation: the reference's test.py (--model test, resnet_9blocks, instance norm) on 20
# 256x256 PNGs against `i2i translate` of the same weights (the reference's state dict loads
# into ours by its own key names), whole processes timed, start-up included.
# Ratios > 1 mean i2i is faster (or, for memory, that the reference needs more).
# On a shared machine run it when it is quiet, or twice, and compare the ratios.
set -euo pipefail
REF=$(cd "${1:?usage: $0 REFERENCE_CHECKOUT [STEPS] [cpu|gpu]}" && pwd)
STEPS=${2:-20}
WHERE=${3:-cpu}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/i2i-side-by-side-XXXXXX")
trap 'rm -rf "$WORK"' EXIT

python - "$REF" "$WORK" "$STEPS" "$WHERE" "$HERE" "${REF_PYTHON:-python}" <<'EOF'
import json, re, statistics, subprocess, sys
from pathlib import Path

import numpy as np

ref, work, steps, where, here = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ref_python = sys.argv[6]
from i2i.bench import picture, run_measured
from i2i.data.io import write_image

n = steps + 3
for i in range(n):
    write_image(work / "unpaired" / "trainA" / f"{i:04d}.png", picture(300, i))
    write_image(work / "unpaired" / "trainB" / f"{i:04d}.png", picture(300, 10_000 + i))
    write_image(work / "aligned" / "train" / f"{i:04d}.png",
                np.concatenate([picture(256, i), picture(256, 20_000 + i)], axis=1))

help_text = subprocess.run([ref_python, "train.py", "--help"], cwd=ref, capture_output=True, text=True).stdout
if "--dataroot" not in help_text:
    sys.exit(f"{ref}/train.py --help did not run (missing packages? pip install dominate): {help_text[-500:]}")
epochs = ["--n_epochs", "1", "--n_epochs_decay", "0"] if "--n_epochs" in help_text else ["--niter", "1", "--niter_decay", "0"]
device = []
if "--gpu_ids" in help_text:
    device = ["--gpu_ids", "0" if where == "gpu" else "-1"]
headless = ["--display_id", "0"] if "--display_id" in help_text else []


def reference(model: str, data: str, size: int) -> tuple[float, float]:
    """Median seconds per iteration after 3 warm-up ones, and peak RSS in MB, of the reference's train.py."""
    command = [ref_python, "train.py", "--dataroot", str(work / data), "--name", f"bench_{model}_{size}",
               "--model", model, "--crop_size", str(size), "--load_size", str(size * 286 // 256),
               *headless, "--no_html", "--print_freq", "1", "--max_dataset_size", str(n),
               "--checkpoints_dir", str(work / "checkpoints"), "--batch_size" if "--batch_size" in help_text
               else "--batchSize", "1", *epochs, *device]
    if model == "pix2pix":
        command += ["--direction", "AtoB", "--dataset_mode", "aligned"]
    _, rss_mb, code, text = run_measured(command, cwd=ref)
    if code != 0:
        sys.exit(f"the reference failed ({' '.join(command)}):\n{text[-2000:]}")
    times = [float(t) for t in re.findall(r"time: ([0-9.]+)", text)]
    return statistics.median(times[3:]), rss_mb


def ours(pipeline: str, size: int, precision: str) -> dict:
    command = ["i2i", "bench", "train", pipeline, "--image-size", str(size), "--steps", str(steps), "--warmup", "2",
               "--precision", precision, "--device", "cuda" if where == "gpu" else "cpu"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


print(f"{'workload':<16} {'reference s/step':>16} {'i2i fp32':>16} {'i2i default':>22} {'ref RSS':>9} {'i2i RSS':>9}")
for model, pipeline, data, size in (("cycle_gan", "cyclegan", "unpaired", 128), ("cycle_gan", "cyclegan", "unpaired", 256),
                                    ("pix2pix", "pix2pix", "aligned", 256)):
    ref_sec, ref_rss = reference(model, data, size)
    fp32, auto = ours(pipeline, size, "fp32"), ours(pipeline, size, "auto")
    print(f"{pipeline + ' ' + str(size):<16} {ref_sec:>16.3f} "
          f"{fp32['sec_per_step']:>9.3f} ({ref_sec / fp32['sec_per_step']:.2f}x) "
          f"{auto['sec_per_step']:>9.3f} {auto['precision']} ({ref_sec / auto['sec_per_step']:.2f}x) "
          f"{ref_rss:>7.0f}MB {auto['peak_rss_mb']:>7.0f}MB ({auto['peak_rss_mb'] / ref_rss:.2f}x)", flush=True)


def timed(command: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one whole process."""
    seconds, rss_mb, code, output = run_measured(command, cwd=cwd)
    if code != 0:
        sys.exit(f"failed: {' '.join(command)}:\n{output[-2000:]}")
    return seconds, rss_mb


import torch
from i2i.bench import make_model_file, make_network

images = 20
for i in range(images):
    write_image(work / "test256" / f"{i:04d}.png", picture(256, 30_000 + i))
(work / "checkpoints" / "bench_test").mkdir(parents=True, exist_ok=True)
torch.save(make_network("resnet_9blocks").state_dict(), work / "checkpoints" / "bench_test" / "latest_net_G.pth")
model_file = make_model_file(work / "resnet_9blocks.safetensors")
ref_sec, ref_rss = timed([ref_python, "test.py", "--dataroot", str(work / "test256"), "--name", "bench_test",
                          "--model", "test", "--netG", "resnet_9blocks", "--norm", "instance", "--no_dropout",
                          "--dataset_mode", "single", "--checkpoints_dir", str(work / "checkpoints"),
                          "--results_dir", str(work / "results"), "--num_test", str(images),
                          "--load_size", "256", "--crop_size", "256", *headless, *device], cwd=ref)
our_sec, our_rss = timed(["i2i", "translate", str(model_file), str(work / "test256"), str(work / "ours"),
                          "--device", "cuda" if where == "gpu" else "cpu"])
print(f"{'translate 256':<16} {ref_sec / images:>16.3f} {our_sec / images:>9.3f} per image, start-up included "
      f"({ref_sec / our_sec:.2f}x; {images} images) {ref_rss:>7.0f}MB {our_rss:>7.0f}MB ({our_rss / ref_rss:.2f}x)")
print(f"machine: {auto['cpu']} {' '.join(auto['cpu_flags'])} {auto['gpu'] or ''}, {auto['threads']} threads")
EOF
