"""Kill -9 soak: a tiny CycleGAN run killed at random moments and resumed, against one that never stopped.

    python benchmarks/soak.py --kills 20 --steps 400

Each round starts `i2i train ... --resume` (without it while no config.yaml was written yet:
a kill during start-up leaves nothing to resume), waits a random time (1-6 s), and
sends SIGKILL; after the kills the run is resumed to the end. Then the same run trains
uninterrupted in another folder. Printed: how many resumes found a checkpoint to load,
whether any step is logged twice or missing in metrics.jsonl, whether any temp file is
left, and whether the final weights equal the uninterrupted run's (resume is exact on the
CPU). Exit status 1 if any check fails.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

TINY = ["--netG", "resnet_6blocks", "--width", "4", "--ndf", "4", "--image-size", "32", "--load-size", "36",
        "--num-workers", "0", "--log-every", "1", "--checkpoint-every", "2", "--seed", "0", "--device", "cpu"]


def dataset(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for side in ("trainA", "trainB"):
        (root / side).mkdir(parents=True)
        for i in range(4):
            low = rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)
            Image.fromarray(low).resize((40, 40), Image.BILINEAR).save(root / side / f"{i}.png")
    return root


def command(data: Path, run: Path, steps: int, resume: bool) -> list[str]:
    return [sys.executable, "-m", "i2i", "train", "cyclegan", "--data", str(data), "--out", str(run), *TINY,
            "--max-steps", str(steps), *(["--resume"] if resume else [])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    work = Path(tempfile.mkdtemp(prefix="i2i-soak-"))
    data, run = dataset(work / "data"), work / "run"
    loaded = killed = 0
    for round_ in range(args.kills):
        started = (run / "config.yaml").exists()  # a kill during start-up leaves nothing to resume
        proc = subprocess.Popen(command(data, run, args.steps, resume=started), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(1.0, 6.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        _, stderr = proc.communicate()
        loaded += bool(re.search(r"steps [1-9]\d* ->", stderr))
    final = subprocess.run(command(data, run, args.steps, resume=True), env=env, capture_output=True, text=True)
    reference = work / "reference"
    subprocess.run(command(data, reference, args.steps, resume=False), env=env, capture_output=True, check=True)

    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    temps = [p for p in run.rglob("*.tmp")]
    last = f"step_{args.steps}.pt"
    a = torch.load(run / "checkpoints" / last, weights_only=True)["networks"]
    b = torch.load(reference / "checkpoints" / last, weights_only=True)["networks"]
    equal = all(torch.equal(a[n][k], b[n][k]) for n in b for k in b[n])
    checks = {
        "final resume exit status 0": final.returncode == 0,
        "every step logged once (1..N)": steps == list(range(1, args.steps + 1)),
        "no temp file left": not temps,
        "final weights equal the uninterrupted run's": equal,
    }
    print(f"kills: {killed} of {args.kills} rounds (the others finished first); "
          f"rounds that resumed from a checkpoint: {loaded}")
    print(f"steps logged: {len(steps)} (duplicates {len(steps) - len(set(steps))}, "
          f"missing {len(set(range(1, args.steps + 1)) - set(steps))}); temp files left: {len(temps)}")
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    if not args.keep:
        shutil.rmtree(work)
    else:
        print(f"work folder: {work}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
