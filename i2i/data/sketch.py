"""Procedural pencil-sketch targets (XDoG) for derived pairs.

The sketch is Winnemoeller's eXtended Difference of Gaussians (XDoG, 2012) on the
luminance, computed with kornia so it runs the same on any device and batch:

    g  = luminance (BT.601: 0.299 R + 0.587 G + 0.114 B), in [0, 1]
    D  = G_sigma(g) - tau * G_{k*sigma}(g)
    S  = 1                              where D >= eps
         1 + tanh(phi * (D - eps))      elsewhere, clamped to [0, 1]

then mapped to pencil on paper: ink + (paper - ink) * S, with ink = 0.05 and paper = 0.95.
Parameters: sigma = 0.8, k = 1.6, tau = 0.98, eps = -0.005, phi = 200 (reflect borders,
Gaussian kernels of 2*ceil(3*sigma)+1 taps). Flat regions give D = 0.02 g >= eps (white
paper); the dark side of an edge gives a negative D (a soft dark line). The tones stop
short of 0 and 1 because a Tanh generator cannot reach +-1: with pure white targets (85%
of the pixels) pix2pix drives its output into saturation, where no gradient is left to
learn the lines (measured: an all-white output after 1,000 steps, lines after 300 steps
with the paper tone). The function is
pure tensor arithmetic, so it is deterministic: the same photo gives the same sketch in
training (`DerivedDataset(task="sketch")`) and in `i2i data derive sketch`.
"""
from __future__ import annotations

import math

import torch

from i2i.data.color import luminance
from i2i.errors import UsageError

SIGMA = 0.8
K = 1.6
TAU = 0.98
EPS = -0.005
PHI = 200.0
INK = 0.05    # darkest pencil line
PAPER = 0.95  # blank paper


def sketch_size_problem(height: int, width: int, sigma: float = SIGMA, k: float = K) -> str | None:
    """Why an image is too small to sketch, None if it is not: the reflect padding of the
    wider Gaussian needs more pixels on each side than the kernel's radius."""
    smallest = math.ceil(3 * max(sigma, k * sigma)) + 1
    if min(height, width) >= smallest:
        return None
    return f"{width}x{height} is too small for a sketch (at least {smallest}x{smallest} pixels)"


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    from kornia.filters import gaussian_blur2d

    size = 2 * math.ceil(3 * sigma) + 1
    return gaussian_blur2d(x, (size, size), (sigma, sigma), border_type="reflect")


def sketch(
    image: torch.Tensor,
    sigma: float = SIGMA,
    k: float = K,
    tau: float = TAU,
    eps: float = EPS,
    phi: float = PHI,
) -> torch.Tensor:
    """XDoG line drawing of a (C, H, W) or (N, C, H, W) image in [0, 1] (C = 1 or 3).

    Returns 1 channel in [INK, PAPER] with the same leading shape: dark lines on paper.
    An image too small for the blurs (`sketch_size_problem`) is a UsageError.
    """
    problem = sketch_size_problem(*image.shape[-2:], sigma=sigma, k=k)
    if problem:
        raise UsageError(problem)
    batched = image.dim() == 4
    x = image if batched else image.unsqueeze(0)
    g = luminance(x.float())
    d = _blur(g, sigma) - tau * _blur(g, k * sigma)
    s = torch.where(d >= eps, torch.ones_like(d), 1.0 + torch.tanh(phi * (d - eps)))
    s = INK + (PAPER - INK) * s.clamp(0.0, 1.0)
    return s if batched else s.squeeze(0)
