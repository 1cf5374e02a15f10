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
"""
from __future__ import annotations

from typing import Callable

import torch

from i2i.spec import SizeRequirements


def round_up(value: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that is >= `value`."""
    return -(-value // multiple) * multiple


def run_tiled(run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int, tile_pad: int,
              scale: int, size: SizeRequirements) -> torch.Tensor:
    """`run` (one forward pass) over `x` (padded to `size`) tile by tile; the output as one tensor.

    A region smaller than the minimum size borrows context, so every tile's input is one the
    network takes.
    """
    m, s, least = size.multiple, scale, size.minimum
    tile = max(round_up(tile, m), least)
    pad = round_up(tile_pad, m)
    n, _, height, width = x.shape
    out: torch.Tensor | None = None
    for top in range(0, height, tile):
        bottom = min(top + tile, height)
        y0, y1 = _window(top, bottom, pad, height, least)
        for left in range(0, width, tile):
            right = min(left + tile, width)
            x0, x1 = _window(left, right, pad, width, least)
            y = run(x[:, :, y0:y1, x0:x1])
            if out is None:
                out = y.new_empty(n, y.shape[1], height * s, width * s)
            out[:, :, top * s: bottom * s, left * s: right * s] = \
                y[:, :, (top - y0) * s: (bottom - y0) * s, (left - x0) * s: (right - x0) * s]
    assert out is not None
    return out


def _window(start: int, stop: int, pad: int, size: int, least: int) -> tuple[int, int]:
    """The input rows (or columns) a tile [start, stop) is computed from; >= `least` long."""
    lo, hi = max(start - pad, 0), min(stop + pad, size)
    if hi - lo < least:
        lo = max(hi - least, 0)
    return lo, hi
