"""Which memory layout a run's networks train in: `--channels-last auto|on|off`.

channels_last (NHWC) is the fast path for convolutions on GPUs under half precision, so
`auto` takes it there without measuring. On a CPU no rule holds: on a 2-core Zen 4 (AVX-512
BF16) it makes the SRGAN step 11-17% faster, the pix2pix step 1-8% and the CycleGAN step 17%
slower (benchmarks/README.md), so `auto` times the first generator's forward and backward pass
on a batch of the run's size in both layouts before training, and keeps the contiguous layout
unless channels_last wins by 5% in every round (`i2i.device.fastest`). The probe touches
nothing the run depends on: the random streams, the weights, BatchNorm's running statistics
and the gradients are as they were. A resumed run keeps the layout it chose
(config.yaml: channels_last_resolved).
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import torch
from torch import nn

from i2i.device import autocast, fastest
from i2i.training.rng import untouched
from i2i.training.settings import CHANNELS_LAST

#: channels_last must be this much faster in every round: a training step runs thousands of
#: times, so a smaller gain than inference's 10% is worth taking
_MARGIN = 0.05
#: a probe pass (after a first, untimed one) quicker than this: the network is too small for
#: the layout to matter (tests' tiny networks), so `auto` keeps the contiguous layout
_TOO_QUICK_S = 0.05


def example_batch(options: Any, config: Any, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    """A batch as the pipeline's dataset gives it (values in [0, 1]), made on the device:
    A and B at the crop size, or for SR an LR input A at crop size / scale and the HR patch B."""
    generator = torch.Generator(device=device).manual_seed(seed)
    n, size = config.batch_size, config.image_size
    if hasattr(options, "scale"):
        c = options.channels
        shapes = {"A": (n, c, size // options.scale, size // options.scale), "B": (n, c, size, size)}
    else:
        c_in, c_out = _channels(options)
        shapes = {"A": (n, c_in, size, size), "B": (n, c_out, size, size)}
    return {k: torch.rand(shape, generator=generator, device=device) for k, shape in shapes.items()}


def _channels(options: Any) -> tuple[int, int]:
    """(in, out) channels of an image-to-image generator: its Options' `channels()` (CycleGAN,
    pix2pix), else, for a pipeline of one's own, its in_channels / out_channels fields (0 or
    none: 3), rather than an AttributeError after the dataset was read."""
    if callable(getattr(options, "channels", None)):
        return options.channels()
    return getattr(options, "in_channels", 0) or 3, getattr(options, "out_channels", 0) or 3


def use_layout(networks: Mapping[str, nn.Module], channels_last: bool) -> None:
    """Put every network's weights in the layout, in place."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    for net in networks.values():
        net.to(memory_format=memory_format)


def choose_channels_last(asked: str, networks: Mapping[str, nn.Module], generator: nn.Module,
                         probe: torch.Tensor, device: torch.device, precision: str) -> bool:
    """`asked` ("auto", "on", "off") resolved for this run, and the networks put in that layout."""
    if asked not in CHANNELS_LAST:
        raise ValueError(f"channels_last must be one of {CHANNELS_LAST}, not {asked!r}")
    if asked != "auto":
        chosen = asked == "on"
    elif device.type == "cuda":
        chosen = precision in ("fp16", "bf16")
    elif device.type == "cpu":
        chosen = _measure(networks, generator, probe, device, precision)
    else:
        chosen = False
    use_layout(networks, chosen)
    return chosen


def _measure(networks: Mapping[str, nn.Module], generator: nn.Module, probe: torch.Tensor,
             device: torch.device, precision: str) -> bool:
    def forward_backward() -> None:
        with autocast(device, precision):
            out = generator(probe)
        out.float().mean().backward()

    with untouched(networks, device, backward=True):
        forward_backward()  # oneDNN builds its kernels for the shape
        start = time.perf_counter()
        forward_backward()
        if time.perf_counter() - start < _TOO_QUICK_S:
            return False
        return fastest([False, True], lambda channels_last: use_layout(networks, channels_last), forward_backward,
                       margin=_MARGIN)
