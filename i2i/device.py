"""Device and precision choices, made once here for the trainer and for inference."""
from __future__ import annotations

import contextlib
import functools
import platform
import time
from collections.abc import Iterator
from typing import Any, Callable, TypeVar

import torch

from i2i.errors import UsageError

PRECISIONS = ("fp32", "bf16", "fp16")
Choice = TypeVar("Choice")


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU; an unavailable device is a one-line error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise UsageError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device {name!r} asked for, but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"device {name!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError(f"device {name!r} asked for, but MPS is not available here")
    return device


#: the CPU flags that decide the speed of training and inference (printed by `i2i bench`)
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags, from /proc/cpuinfo (Linux); empty where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 in hardware (AVX-512 BF16 or AMX); elsewhere it is emulated, ~100x slower."""
    if not cpu_flags():
        return platform.machine() == "arm64"  # Apple silicon
    return any(flag in cpu_flags() for flag in NATIVE_BF16_FLAGS)


def auto_precision(device_type: str, *, native_cpu_bf16: bool = False, cuda_bf16: bool = False) -> str:
    """What `precision="auto"` means, for training and inference alike: the fast precision that
    keeps the numerics safe on this hardware.

    CPU: bf16 where it is native (AVX-512 BF16, AMX), fp32 elsewhere (AVX2-only CPUs emulate bf16
    about 100x slower: never bf16 there). CUDA: bf16 where the GPU computes it (Ampere and later),
    else fp16 (with a GradScaler when training). Other devices (MPS): fp32.
    """
    if device_type == "cpu":
        return "bf16" if native_cpu_bf16 else "fp32"
    if device_type == "cuda":
        return "bf16" if cuda_bf16 else "fp16"
    return "fp32"


def resolve_precision(name: str, device: torch.device) -> str:
    """`name`, or for `auto` this hardware's choice (`auto_precision`); one-line errors."""
    if name == "auto":
        return auto_precision(
            device.type,
            native_cpu_bf16=device.type == "cpu" and cpu_has_native_bf16(),
            cuda_bf16=device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False))
    if name not in PRECISIONS:
        raise UsageError(f"unknown precision {name!r} (use auto, {', '.join(PRECISIONS)})")
    if name == "fp16" and device.type == "cpu":
        raise UsageError("fp16 autocast needs a GPU; use bf16 or fp32 on the CPU")
    return name


def autocast(device: torch.device, precision: str):
    """The autocast context for a precision (a no-op context for fp32)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype is not None)


def cpu_model() -> str:
    """The CPU's model name (printed beside every speed figure: machines differ)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> dict[str, str]:
    """What `i2i info` prints: versions, device, threads, bf16 support."""
    import importlib.metadata as md

    from i2i import __version__

    def version(dist: str) -> str:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return "not installed"

    device = resolve_device("auto")
    if device.type == "cuda":
        device_text = f"cuda ({torch.cuda.get_device_name(device)}, {torch.cuda.device_count()} device(s))"
    else:
        device_text = device.type
    return {
        "i2i": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": version("torchvision"),
        "kornia": version("kornia"),
        "albumentations": version("albumentations"),
        "device": device_text,
        "cpu": cpu_model(),
        "threads": str(torch.get_num_threads()),
        "cpu flags": " ".join(f for f in SPEED_FLAGS if f in cpu_flags()) or "unknown",
        "cpu bf16": "native" if cpu_has_native_bf16() else "emulated (slow)",
        "cuda bf16": str(torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)),
    }


def fastest(candidates: list[Choice], use: Callable[[Choice], Any], run: Callable[[], Any],
            margin: float = 0.1) -> Choice:
    """The candidate under which `run` is fastest, after `use(candidate)` sets it up.

    On a shared machine, load comes in bursts longer than one run, so the expected winner
    (the first candidate) stays unless another one beats it by `margin` in each of 3 rounds; a
    round runs the candidates back to back, so a burst slows them alike. Round 0 warms up
    (oneDNN builds its kernels per shape). Inference's precision and layout and training's
    layout are chosen this way.
    """
    expected, rivals = candidates[0], list(candidates[1:])
    best = dict.fromkeys(rivals, float("inf"))
    for round_ in range(4):
        times = {}
        for candidate in [expected, *rivals]:
            use(candidate)
            start = time.perf_counter()
            run()
            times[candidate] = time.perf_counter() - start
        if round_:  # a rival is out at its first loss: fp32 often runs only twice
            rivals = [c for c in rivals if times[c] < (1 - margin) * times[expected]]
            for c in rivals:
                best[c] = min(best[c], times[c])
            if not rivals:
                break
    return min(rivals, key=best.__getitem__) if rivals else expected


@contextlib.contextmanager
def torch_threads(threads: int = 0) -> Iterator[None]:
    """torch's thread count set to `threads` for the block (0: left as it is), and given back
    after it, whatever the block set: it is one setting for the whole process."""
    before = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
