"""Colour conversions the pipelines and inference share: BT.601 luminance and the reference's Lab."""
from __future__ import annotations

import torch

LUMA = (0.299, 0.587, 0.114)  # BT.601 R, G, B weights


def luminance(image: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of a (..., 3, H, W) tensor as (..., 1, H, W); 1-channel input is returned."""
    if image.shape[-3] == 1:
        return image
    r, g, b = image[..., 0:1, :, :], image[..., 1:2, :, :], image[..., 2:3, :, :]
    return LUMA[0] * r + LUMA[1] * g + LUMA[2] * b


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
