"""Distributed training through torchrun: real 2-process gloo runs on the CPU, tiny networks.

What is checked: two processes with batch 1 compute the losses of one process with batch 2
(the same global batch) within a stated tolerance; rank 0 alone writes one metrics line per
step; a checkpoint holds both ranks' state; a rank killed mid-run makes the job exit
non-zero with one clear line; `--resume` continues from the last checkpoint and computes
the losses of the run that never stopped. Plus the one-line refusals that need no second
process, and a multi-GPU run (SyncBatchNorm, nccl) that skips without two CUDA devices.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from i2i.errors import UsageError
from i2i.training import make_settings, train
from i2i.training.data_order import RunOrder, steps_per_epoch
from test_train import one_thread, paired, unpaired  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
STEPS = 16
#: tiny CycleGAN, deterministic apart from the arithmetic: no random flips, no image pool
#: (a pool draws per process), instance norm (per image), no dropout, a constant learning rate
SETTINGS = {"netG": "resnet_6blocks", "width": 4, "ndf": 4, "image_size": 32, "load_size": 36, "num_workers": 0,
            "log_every": 1, "augment": "none", "pool_size": 0, "precision": "fp32", "lr_policy": "step",
            "lr_decay_iters": 1000, "max_steps": STEPS, "checkpoint_every": 2, "sample_every": 1000}
#: the stated tolerance. Per-rank batches and their averaged gradients are the one-process
#: batch's up to float rounding (a batch of 2 sums its gradients in another order), so the
#: first steps agree to rounding: every loss of steps 1-3 within 1e-3 relative (measured on an
#: AMD EPYC: at most 1e-4). GAN training then amplifies rounding (Adam's first updates are
#: about lr x sign(gradient), and gradients near zero flip sign; see test_pipelines_golden),
#: so over all 16 steps only the total generator loss is compared: within 5% (measured: 1.1%).
EARLY_STEPS, EARLY_RTOL, TOTAL_RTOL, ATOL = 3, 1e-3, 0.05, 1e-6


def _flags(values: dict) -> list[str]:
    return [f"--{k.replace('_', '-')}={v}" for k, v in values.items()]


#: for the resume test: random flips and a small image pool, drawn per process, so a resume
#: that gave a process another's pool or random streams would compute other losses
RANDOM = {"augment": "flip", "pool_size": 2}


def _torchrun(data: Path, run: Path, *extra: str, settings: dict = SETTINGS) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "i2i", "train", "cyclegan", "--data", str(data), "--out", str(run), *_flags(settings), *extra]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def _losses(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("sec_per_step", "data_sec", "images_per_sec")} for r in records]


def _worker(agent: int, rank: int) -> int | None:
    """The pid of torchrun's worker of `rank` (a child of the agent with RANK in its environment)."""
    for task in Path(f"/proc/{agent}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"RANK={rank}".encode() in environ:
                return int(pid)
    return None


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return unpaired(tmp_path_factory.mktemp("ddp") / "data", n=4)  # 4 images: whole global batches of 2


@pytest.fixture(scope="module")
def ddp_run(data, tmp_path_factory) -> tuple[Path, str]:
    run = tmp_path_factory.mktemp("ddp") / "run"
    code, output = _finish(_torchrun(data, run, "--batch-size=1"))
    assert code == 0, output[-3000:]
    return run, output


def test_two_processes_compute_the_losses_of_one_with_the_same_global_batch(ddp_run, data, tmp_path):
    run, output = ddp_run
    single = tmp_path / "single"
    config, options = make_settings("cyclegan", {"data": str(data), "out": str(single), **SETTINGS, "batch_size": 2})
    train("cyclegan", config, options)
    two, one = _losses(run), _losses(single)
    assert [r["step"] for r in two] == list(range(1, STEPS + 1))  # one line per step: rank 0 alone writes
    for a, b in zip(two, one):
        assert a.keys() == b.keys()
        for key in a if a["step"] <= EARLY_STEPS else ["G", "lr", "epoch"]:
            rtol = EARLY_RTOL if a["step"] <= EARLY_STEPS else TOTAL_RTOL
            assert a[key] == pytest.approx(b[key], rel=rtol, abs=ATOL), f"step {a['step']}: {key}"
    assert "2 processes" in output and output.count("done:") == 1
    state = torch.load(run / "checkpoints" / f"step_{STEPS}.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["other_ranks"]) == 1
    assert {"pipeline_state", "rng"} <= set(state["other_ranks"][0])
    assert not torch.equal(state["rng"]["torch"], state["other_ranks"][0]["rng"]["torch"])  # per-rank streams


def test_a_killed_rank_stops_the_job_with_one_line_and_resume_continues(data, tmp_path):
    settings = {**SETTINGS, **RANDOM}
    reference = tmp_path / "reference"
    code, output = _finish(_torchrun(data, reference, "--batch-size=1", settings=settings))
    assert code == 0, output[-3000:]
    run = tmp_path / "run"
    job = _torchrun(data, run, "--batch-size=1", settings=settings)
    metrics, victim, deadline = run / "metrics.jsonl", None, time.monotonic() + 240
    while time.monotonic() < deadline and job.poll() is None:
        logged = metrics.read_text().count("\n") if metrics.is_file() else 0
        if logged >= 3:
            victim = _worker(job.pid, 1)
            if victim:
                os.kill(victim, 9)
                break
        time.sleep(0.01)
    code, output = _finish(job)
    assert victim is not None, f"rank 1 was not killed before the run ended:\n{output[-2000:]}"
    assert code != 0
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "another process of this 2-process job stopped" in errors[0], output[-3000:]
    assert "--resume" in errors[0] and "Traceback" not in output.split("error:")[0]
    kept = sorted(int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("step_*.pt"))
    assert kept and kept[-1] < STEPS

    code, output = _finish(_torchrun(data, run, "--batch-size=1", "--resume", settings=settings))
    assert code == 0, output[-3000:]
    assert f"steps {kept[-1]} -> {STEPS}" in output
    # every step once, and the same as the run that never stopped: each process got back its
    # own image pool and random streams (flips, pool draws) from the checkpoint
    assert _losses(run) == _losses(reference)


def test_each_rank_takes_its_share_of_the_global_order():
    """Two ranks' batches of step k are the one-process batch of step k, split in two; an odd
    epoch is padded (its first samples again) so both ranks have a batch."""
    for n in (8, 7, 1):
        single = RunOrder(n, 4, seed=3, shuffle=True, epoch=0, batch=0)
        ranks = [RunOrder(n, 2, seed=3, shuffle=True, epoch=0, batch=0, rank=r, world_size=2) for r in (0, 1)]
        steps = steps_per_epoch(n, 2, 2)
        assert steps == -(-(n + n % 2) // 4)
        together = [[*a, *b] for a, b, _ in zip(*ranks, range(steps))]
        expected = [keys for keys, _ in zip(single, range(steps_per_epoch(n, 4)))]
        flat = [key for keys in together for key in keys]
        assert len(flat) == n + n % 2 and {i for _, i in flat} == set(range(n))
        if n % 2 == 0:
            assert together == expected
        assert all(len(a) == len(b) for a, b, _ in zip(*ranks, range(steps)))
    resumed = RunOrder(8, 2, seed=3, shuffle=True, epoch=1, batch=1, rank=1, world_size=2)
    full = RunOrder(8, 2, seed=3, shuffle=True, epoch=0, batch=0, rank=1, world_size=2)
    assert next(iter(resumed)) == [keys for keys, _ in zip(full, range(4))][3]


def test_sync_bn_on_the_cpu_is_one_line(tmp_path):
    data = paired(tmp_path / "data")
    config, options = make_settings("pix2pix", {"data": str(data), "out": str(tmp_path / "run"), "netG": "unet_32",
                                                "width": 4, "ndf": 4, "image_size": 32, "num_workers": 0,
                                                "max_steps": 1, "sync_bn": True, "device": "cpu"})
    with pytest.raises(UsageError, match="--sync-bn needs GPUs"):
        train("pix2pix", config, options)
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_two_gpus_with_sync_bn(tmp_path):
    data = paired(tmp_path / "data", n=4)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "i2i",
               "train", "pix2pix", "--data", str(data), "--out", str(tmp_path / "run"), "--netG", "unet_32",
               "--width", "4", "--ndf", "4", "--image-size", "32", "--num-workers", "0", "--max-steps", "4",
               "--log-every", "1", "--sync-bn", "--device", "cuda", "--batch-size", "2"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert [r["step"] for r in _losses(tmp_path / "run")] == [1, 2, 3, 4]
