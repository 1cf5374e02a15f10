"""Tiled runs, as Real-ESRGAN does them: the output cut into non-overlapping tile x tile
regions, each computed from its input region grown by `tile_pad` pixels on every side, of
which only the region's own pixels are kept.

A pixel is exact whenever the network's receptive field around it fits within `tile_pad`:
tile corners and the pad are multiples of the size multiple, so strided convolutions see the
same sampling grid as on the whole image. We chose this hard cut over overlapping tiles with
a blending window after measuring both (benchmarks/README.md): blending mixes in pixels that
lie closer to a tile's edge, with less context, and helps only a little when the pad is too
small anyway. So: raise `tile_pad` until seams vanish (ResNet generators reach far: 32-64;
the SR nets are exact from ~16).

Limit: InstanceNorm normalises each tile by its own statistics, so InstanceNorm nets
(CycleGAN's default) give tile-dependent tones whatever the pad; use tiles as large as memory
allows there. BatchNorm in eval mode, no norm and the SR nets are exact up to the
receptive-field effect (tests/test_infer.py checks this).

Padding. The padded image is never made: a window reads its rows and columns of it through
`pad_index`, which maps them onto the image's own (reflected, or replicated where the image
is too small to reflect), as padding the whole image at the bottom/right would. So only
one window is ever converted to floats, and the pixels are those of the padded image.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from i2i.errors import UsageError
from i2i.spec import SizeRequirements

# The tile sizes that may be asked for (0: whole images). Below MIN_TILE a tile is mostly pad:
# thousands of forward passes for nothing a larger tile would not do better. Above MAX_TILE a
# tile is already a whole image of 268 megapixels: a larger number only says "whole images".
MIN_TILE = 8
MAX_TILE = 16384
TILE_RULE = f"0 (whole images, or automatic tiles) or {MIN_TILE}..{MAX_TILE} pixels"


def check_tile(tile: int) -> int:
    """`tile` if it is 0 or MIN_TILE..MAX_TILE, else a one-line UsageError (the same rule for
    the Python API, `i2i translate --tile`, `i2i eval --tile` and `i2i serve`'s tile=)."""
    if tile != 0 and not MIN_TILE <= tile <= MAX_TILE:
        raise UsageError(f"tile must be {TILE_RULE}, not {tile}")
    return tile


def round_up(value: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that is >= `value`."""
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class Tile:
    """One forward pass: the padded input's rows `rows` and columns `cols` go in; of its
    output, the part that belongs to the input pixels `region` (rows, cols) is kept."""

    rows: tuple[int, int]
    cols: tuple[int, int]
    region: tuple[tuple[int, int], tuple[int, int]]


def plan(height: int, width: int, tile: int, tile_pad: int, size: SizeRequirements) -> Iterator[Tile]:
    """The tiles of a padded `height` x `width` input (0 or a `tile` at least that large:
    one tile, the whole input).

    A region smaller than the minimum size borrows context, so every tile's input is one the
    network takes. `tile` is one `check_tile` lets through (the callers check what users give).
    """
    if not tile or max(height, width) <= tile:
        yield Tile((0, height), (0, width), ((0, height), (0, width)))
        return
    m, least = size.multiple, size.minimum
    tile = max(round_up(tile, m), least)
    pad = round_up(tile_pad, m)
    for top in range(0, height, tile):
        bottom = min(top + tile, height)
        for left in range(0, width, tile):
            right = min(left + tile, width)
            yield Tile(_window(top, bottom, pad, height, least), _window(left, right, pad, width, least),
                       ((top, bottom), (left, right)))


def _window(start: int, stop: int, pad: int, size: int, least: int) -> tuple[int, int]:
    """The input rows (or columns) a tile [start, stop) is computed from; >= `least` long."""
    lo, hi = max(start - pad, 0), min(stop + pad, size)
    if hi - lo < least:
        lo = max(hi - least, 0)
    return lo, hi


def pad_index(start: int, stop: int, size: int, padded: int) -> slice | np.ndarray:
    """Which of an image's `size` rows (or columns) rows [start, stop) of the image padded
    at the bottom (right) to `padded` are: reflected where the padding is smaller than the
    image (torch's "reflect"), else the last one repeated ("replicate"). A slice where no
    padding is read."""
    if stop <= size:
        return slice(start, stop)
    index = np.arange(start, stop)
    beyond = index >= size
    index[beyond] = 2 * (size - 1) - index[beyond] if padded - size < size else size - 1
    return index


# ----------------------------------------------------------------------------- automatic tiles

# A whole-image forward pass holds up to ~3.5 of the network's largest activation (fp32) at
# once, and per input pixel ~10 floats per channel beside them (the window read, the network
# input and output and their conversions). With a margin (estimates 1.3-1.7x what the
# generators took in fp32; bf16 and channels_last take less): benchmarks/README.md,
# "Working memory of a whole-image run".
ACTIVATION_COPIES = 4.0
INPUT_COPIES, OUTPUT_COPIES = 4.0, 8.0
AUTO_TILES = (4096, 2048, 1024, 512, 256, 128, 64)  # the largest that fits is taken


def bytes_per_pixel(activation: float, in_channels: int, out_channels: int, scale: int) -> float:
    """Estimated working memory per padded input pixel of one image, for a network whose
    largest activation holds `activation` values per input pixel."""
    return 4.0 * (ACTIVATION_COPIES * activation + INPUT_COPIES * in_channels
                  + OUTPUT_COPIES * out_channels * scale * scale)


def available_memory(device: torch.device) -> int | None:
    """Bytes free for a forward pass: MemAvailable (/proc/meminfo) on the CPU, the free
    memory of a CUDA device; None where unknown (then images are never tiled unasked).
    Tests replace it with a small figure."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def largest_activation(net: nn.Module, forward: Callable[[torch.Tensor], Any], probe: torch.Tensor) -> float | None:
    """The largest tensor a layer of `net` returns while `forward(probe)` runs, in values
    per probe pixel (hooks count what is returned in this thread only: other workers may be
    running `net` at the same time); None if the forward pass fails."""
    largest, thread = probe.numel(), threading.get_ident()

    def count(module: nn.Module, inputs: Any, output: Any) -> None:
        nonlocal largest
        if isinstance(output, torch.Tensor) and threading.get_ident() == thread:
            largest = max(largest, output.numel())

    hooks = [module.register_forward_hook(count) for module in net.modules()]
    try:
        forward(probe)
    except Exception:
        return None
    finally:
        for hook in hooks:
            hook.remove()
    return largest / (probe.shape[0] * probe.shape[-2] * probe.shape[-1])


def fitting_tile(per_pixel: float, fixed: float, budget: float, tile_pad: int, size: SizeRequirements) -> int:
    """The largest of AUTO_TILES (at least the minimum size) whose windows, `per_pixel`
    bytes each pixel, fit in `budget` beside `fixed` bytes; the smallest if none does."""
    pad = round_up(tile_pad, size.multiple)
    candidates = [t for t in AUTO_TILES if t >= size.minimum] or [round_up(size.minimum, size.multiple)]
    for tile in candidates:
        side = round_up(tile, size.multiple) + 2 * pad
        if fixed + per_pixel * side * side <= budget:
            return tile
    return candidates[-1]


def return_freed_buffers() -> None:
    """Make glibc give every freed allocation over 1 MiB back to the OS (a fixed mmap threshold).

    By default glibc raises its threshold to the largest block freed so far, so after the first
    tile the tile-sized buffers (activations, windows) come from the heap of whichever of the
    reader, model and writer threads allocated them and stay there, fragmented: a tiled huge image
    then holds far more than one tile's working memory. Measured (benchmarks/README.md): 6000x6000
    with resnet_9blocks and 512 px tiles, peak RSS 1.47 -> 1.22 GB. Process-wide and idempotent;
    a no-op where the C library is not glibc.
    """
    import ctypes
    import ctypes.util

    global _FREED_BUFFERS_RETURNED
    if _FREED_BUFFERS_RETURNED:
        return
    _FREED_BUFFERS_RETURNED = True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 20)
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl without mallopt)
        pass


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
_FREED_BUFFERS_RETURNED = False
