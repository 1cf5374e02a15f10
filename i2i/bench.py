"""`i2i bench`: how fast this machine trains and translates, as one JSON line each.

    i2i bench train cyclegan --image-size 128 --steps 5
    i2i bench translate --image-size 256 --images 20

train: the trainer's own step (`i2i.training.trainer.Stepper`: learning rate, the pipeline's
step, GradScaler, fused Adam, EMA) with the pipeline's reference defaults and the default
precision, on random batches already on the device (data loading is not timed); warm-up
steps are not timed; the median step is reported, with the fastest and slowest.

translate: random PNGs written to a temporary folder, then `i2i translate` in a fresh
process, disk to disk, start-up included: what a user waits for. The model is a
resnet_9blocks (width 64, instance norm, random weights), the reference CycleGAN generator.

Both print the machine beside the figures (CPU model and the flags that decide the speed, or
the GPU; torch threads; precision), because figures mean nothing without them.
benchmarks/train_step.py and benchmarks/translate.py build on these functions.
"""
from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from i2i import run_layout as layout


def machine(device: Any = None) -> dict[str, Any]:
    """CPU model and speed flags, torch threads and version, and the GPU when `device` is CUDA."""
    import torch

    from i2i.device import SPEED_FLAGS, cpu_flags, cpu_model

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_flags": [flag for flag in SPEED_FLAGS if flag in cpu_flags()],
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gpu": None,
    }
    if device is not None and torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def peak_rss_mb(children: bool = False) -> float:
    """The peak resident memory of this process (or of its waited-for children), in MB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    kilobytes = resource.getrusage(who).ru_maxrss  # Linux: KB; macOS: bytes
    return round(kilobytes / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def run_measured(command: list[str], cwd: str | os.PathLike | None = None) -> tuple[float, float, int, str]:
    """Run `command` as a whole process: (wall seconds, its peak RSS in MB, exit code, its
    stdout and stderr together). The peak is the kernel's own count for that child alone."""
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        log.seek(0)
        output = log.read()
    rss_kb = usage.ru_maxrss / (1024 if sys.platform == "darwin" else 1)  # Linux: KB; macOS: bytes
    return seconds, round(rss_kb / 1024, 1), os.waitstatus_to_exitcode(status), output


# ----------------------------------------------------------------------------- training


def train_settings(pipeline: str, image_size: int = 0, batch_size: int = 0, precision: str = "",
                   config_file: str | Path | None = None, **overrides: Any) -> tuple[Any, Any]:
    """The pipeline's reference defaults (TrainConfig, Options), 3-channel images, with a
    settings file's and these changes (0 / "": the default); what `i2i train PIPELINE` would use."""
    from i2i.pipelines import get_pipeline
    from i2i.training import make_settings

    values = {k: v for k, v in {"image_size": image_size, "batch_size": batch_size,
                                "precision": precision, **overrides}.items() if v}
    config, options = make_settings(pipeline, values, config_file=config_file)
    cls = get_pipeline(pipeline)
    cls.resolve(options, config, quiet=True)  # stage defaults (srgan: 96 px HR patches, lr)
    for side in ("in_channels", "out_channels"):
        if hasattr(options, side) and not getattr(options, side):
            setattr(options, side, 3)
    return config, options


def time_train_steps(pipeline: str, *, image_size: int = 0, batch_size: int = 0, steps: int = 5, warmup: int = 2,
                     device: str = "auto", precision: str = "", threads: int = 0, channels_last: str = "",
                     config_file: str | Path | None = None, **overrides: Any) -> dict[str, Any]:
    """Seconds per training step of `pipeline` (see the module docstring), and apart from it
    the seconds of the device augmentation that makes each step's batch (`augment_sec`: flips,
    srgan's Real-ESRGAN degradations); one JSON-able dict."""
    import torch

    from i2i.device import resolve_device, resolve_precision
    from i2i.training.layout import example_batch
    from i2i.training.trainer import Stepper, out_of_memory_as_error

    if steps < 1 or warmup < 0:
        from i2i.errors import UsageError

        raise UsageError(f"--steps must be >= 1 and --warmup >= 0, got {steps} and {warmup}")
    if threads > 0:
        torch.set_num_threads(threads)
    config, options = train_settings(pipeline, image_size, batch_size, precision, config_file,
                                     channels_last=channels_last, **overrides)
    where = resolve_device(device if device != "auto" else config.device)
    resolved = resolve_precision(config.precision, where)
    with out_of_memory_as_error("--batch-size or --image-size"):
        stepper = Stepper(pipeline, config, options, where, resolved, steps_per_epoch=warmup + steps,
                          total_steps=warmup + steps)
        example = example_batch(options, config, where)
        times, augment_times = [], []
        for i in range(warmup + steps):
            _wait_for(where)
            started = time.perf_counter()
            batch = stepper.pipe.augment(example)
            _wait_for(where)
            augmented = time.perf_counter()
            losses, _ = stepper(batch, i)
            torch.stack([torch.as_tensor(v, dtype=torch.float32).reshape(()) for v in losses.values()]).tolist()
            if i >= warmup:
                times.append(time.perf_counter() - augmented)
                augment_times.append(augmented - started)
    median, augment = statistics.median(times), statistics.median(augment_times)
    return {
        "bench": "train", "pipeline": pipeline, "image_size": config.image_size, "batch_size": config.batch_size,
        "steps": steps, "warmup": warmup, "sec_per_step": round(median, 4),
        "sec_per_step_min": round(min(times), 4), "sec_per_step_max": round(max(times), 4),
        "images_per_sec": round(config.batch_size / median, 3),
        "augment_sec": round(augment, 4), "augment_share_of_step": round(augment / median, 4),
        "peak_rss_mb": peak_rss_mb(),
        "device": str(where), "precision": resolved, "precision_asked": config.precision,
        "channels_last": stepper.channels_last, "channels_last_asked": config.channels_last, **machine(where),
    }


def _wait_for(device: Any) -> None:
    """Let the queued GPU work finish, so a timer measures it (a CPU has none queued)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- translation


def picture(size: int, seed: int) -> np.ndarray:
    """A smooth picture with noise: PNG sizes like a photo's, not like flat colour."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([x, y, (x + y) / 2], axis=-1) * 200 + rng.uniform(0, 40, 3)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def write_pictures(folder: Path, count: int, size: int, first_seed: int = 0) -> None:
    """`count` PNGs of `picture`, named 0000.png, 0001.png, ..."""
    from i2i.data.io import write_image

    for i in range(count):
        write_image(folder / f"{i:04d}.png", picture(size, first_seed + i))


def make_network(name: str = "resnet_9blocks") -> Any:
    """resnet_9blocks (width 64) or "tiny" (resnet_6blocks, width 4), instance norm, random
    weights as the reference initialises them (normal, 0.02)."""
    import torch

    import i2i.nn

    torch.manual_seed(0)
    arch, width = ("resnet_6blocks", 4) if name == "tiny" else (name, 64)
    return i2i.nn.init_weights(i2i.nn.create(arch, width=width, norm="instance"), "normal", 0.02)


def make_model_file(path: Path, name: str = "resnet_9blocks") -> Path:
    """A self-describing model file of `make_network(name)`, as a CycleGAN run writes it."""
    from i2i.checkpoint import save_model
    from i2i.spec import ModelSpec, SizeRequirements

    net = make_network(name)
    save_model(path, {"G": net}, ModelSpec(pipeline="cyclegan", size=SizeRequirements(multiple=net.size_multiple)))
    return path


def time_translate(*, image_size: int = 256, images: int = 20, device: str = "auto", precision: str = "auto",
                   model: str = "resnet_9blocks", extra_args: tuple[str, ...] = ()) -> dict[str, Any]:
    """`i2i translate` of `images` random PNGs in a fresh process, start-up included; one
    JSON-able dict (peak_rss_mb is the child's)."""
    from i2i.device import resolve_device, resolve_precision
    from i2i.errors import I2IError, UsageError
    from i2i.training.trainer import out_of_memory_as_error

    if images < 1 or image_size < 1:
        raise UsageError(f"--images and --image-size must be >= 1, got {images} and {image_size}")
    where = resolve_device(device)
    preferred = resolve_precision(precision, where)  # fp16 on a CPU: exit 2 here, not from the child
    with tempfile.TemporaryDirectory(prefix="i2i-bench-") as folder:
        work = Path(folder)
        with out_of_memory_as_error("--image-size"):
            write_pictures(work / "in", images, image_size)
        model_file = make_model_file(work / "model.safetensors", model)
        command = [sys.executable, "-m", "i2i", "translate", str(model_file), str(work / "in"), str(work / "out"),
                   "--device", device, "--precision", precision, *extra_args]
        seconds, rss_mb, code, output = run_measured(command)
        written = len(list((work / "out").glob("*.png")))
        if code != 0 or written != images:
            last = output.strip().splitlines()[-1] if output.strip() else "no output"
            raise I2IError(f"i2i translate failed in the benchmark (exit {code}, {written} of {images} "
                           f"images written): {last}")
    return {
        "bench": "translate", "model": model, "image_size": image_size, "images": images,
        "sec_per_image": round(seconds / images, 4), "images_per_sec": round(images / seconds, 3),
        "seconds": round(seconds, 3), "peak_rss_mb": rss_mb, "device": str(where),
        "precision": precision, "precision_preferred": preferred,  # auto: measured on the CPU
        **machine(where),
    }


# ----------------------------------------------------------------------------- precision drift


def train_run(pipeline: str, data: Path, out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Train `pipeline` on `data` into the run folder `out` through the real trainer; returns
    its loss curves (name -> one value per logged step) and the precision it ran in."""
    import json

    import yaml

    from i2i.training import make_settings, train

    config, options = make_settings(pipeline, {"data": str(data), "out": str(out), "log_every": 1,
                                               "num_workers": 0, **settings})
    train(pipeline, config, options)
    records = [json.loads(line) for line in (out / layout.METRICS).read_text().splitlines()]
    skip = {"step", "epoch", "lr", "sec_per_step", "data_sec", "images_per_sec"}
    curves = {k: [r[k] for r in records] for k in records[0] if k not in skip}
    saved = yaml.safe_load((out / layout.CONFIG).read_text())
    return {"curves": curves, "precision": saved["precision_resolved"], "model": out / layout.MODEL}


def outputs_of(model_file: Path, inputs: Any) -> Any:
    """The model file's default generator on `inputs` (N x C x H x W in [0, 1]) in fp32, in [0, 1]."""
    import torch

    from i2i.infer import load_model

    translator = load_model(model_file, device="cpu", precision="fp32")
    with torch.no_grad():
        return torch.stack([translator.translate_tensor(x[None])[0] for x in inputs])


def curve_drift(a: list[float], b: list[float], window: int) -> float:
    """Mean relative difference of two loss curves after a moving average over `window`
    steps (GAN losses swing from step to step; their trend is what training follows)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    kernel = np.ones(max(1, min(window, len(x)))) / max(1, min(window, len(x)))
    xs, ys = np.convolve(x, kernel, mode="valid"), np.convolve(y, kernel, mode="valid")
    return float(np.mean(np.abs(xs - ys) / np.maximum(np.maximum(np.abs(xs), np.abs(ys)), 1e-3)))


def compare_runs(first: dict[str, Any], second: dict[str, Any], inputs: Any, window: int) -> dict[str, Any]:
    """How far two runs of the same recipe ended apart: the drift of each loss curve
    (`curve_drift`), the largest one, and the final generators' outputs on `inputs`: mean and
    largest absolute difference in [0, 1] and their PSNR against each other (dB)."""
    import math

    curves = {k: round(curve_drift(first["curves"][k], second["curves"][k], window), 4)
              for k in first["curves"] if k in second["curves"]}
    a, b = outputs_of(first["model"], inputs), outputs_of(second["model"], inputs)
    mse = float(((a - b) ** 2).mean())
    return {"curves": curves, "worst_curve": max(curves.values()),
            "output_mean_abs": round(float((a - b).abs().mean()), 5), "output_max_abs": round(float((a - b).abs().max()), 4),
            "output_psnr_db": round(10 * math.log10(1 / mse), 2) if mse > 0 else math.inf}
