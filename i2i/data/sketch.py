"""Procedural pencil-sketch targets (XDoG) and colour-space helpers for derived pairs.

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

SIGMA = 0.8
K = 1.6
TAU = 0.98
EPS = -0.005
PHI = 200.0
INK = 0.05    # darkest pencil line
PAPER = 0.95  # blank paper

LUMA = (0.299, 0.587, 0.114)  # BT.601 R, G, B weights; datasets.gray uses them too


def luminance(image: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of a (..., 3, H, W) tensor as (..., 1, H, W); 1-channel input is returned."""
    if image.shape[-3] == 1:
        return image
    r, g, b = image[..., 0:1, :, :], image[..., 1:2, :, :], image[..., 2:3, :, :]
    return LUMA[0] * r + LUMA[1] * g + LUMA[2] * b


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
    """
    batched = image.dim() == 4
    x = image if batched else image.unsqueeze(0)
    g = luminance(x.float())
    d = _blur(g, sigma) - tau * _blur(g, k * sigma)
    s = torch.where(d >= eps, torch.ones_like(d), 1.0 + torch.tanh(phi * (d - eps)))
    s = INK + (PAPER - INK) * s.clamp(0.0, 1.0)
    return s if batched else s.squeeze(0)


# Lab scaling of the reference colorization dataset, in the [0, 1] convention of our
# datasets: the reference feeds L/50 - 1 and ab/110 to the networks (both in [-1, 1]);
# ours are L01 = L/100 and ab01 = ab/220 + 0.5, which the pipelines' x*2-1 maps to
# exactly the reference's values.


def rgb_to_lab01(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sRGB (..., 3, H, W) in [0, 1] -> (L01 (..., 1, H, W), ab01 (..., 2, H, W)), both ~[0, 1]."""
    from kornia.color import rgb_to_lab

    lab = rgb_to_lab(rgb.float())
    return lab[..., 0:1, :, :] / 100.0, lab[..., 1:3, :, :] / 220.0 + 0.5


def lab_to_rgb(l01: torch.Tensor, ab01: torch.Tensor) -> torch.Tensor:
    """Inverse of `rgb_to_lab01`: a model's (L01, ab01) output back to sRGB in [0, 1]."""
    from kornia.color import lab_to_rgb as _lab_to_rgb

    lab = torch.cat([l01.float() * 100.0, (ab01.float() - 0.5) * 220.0], dim=-3)
    return _lab_to_rgb(lab, clip=True)
