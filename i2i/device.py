"""Device and precision choices, made once here for the trainer and for inference."""
from __future__ import annotations

import functools
import platform

import torch

from i2i.errors import UsageError

PRECISIONS = ("fp32", "bf16", "fp16")


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


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 in hardware (AVX-512 BF16 or AMX); elsewhere it is emulated, ~100x slower."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return platform.machine() == "arm64"  # Apple silicon
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(name: str, device: torch.device) -> str:
    """`auto`: bf16 on CUDA with bf16 support and on CPUs with native bf16, else fp32."""
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16"
        if device.type == "cpu" and cpu_has_native_bf16():
            return "bf16"
        return "fp32"
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
        "cpu bf16": "native" if cpu_has_native_bf16() else "emulated (slow)",
        "cuda bf16": str(torch.cuda.is_available() and torch.cuda.is_bf16_supported()),
    }
