"""An image's alpha channel beside a model's output.

Scale-1 models keep it as it is. Super-resolution models upsample it as Real-ESRGAN does by
default: through the same network as a gray image, tiles and all ("model": replicated to a
3-channel network's input, its output turned back into one plane by BT.601 luma, the gray SR
path of `i2i.infer.model`), or resized bicubically ("resize": cheap, no second pass). A flat
alpha (an opaque RGBA file) stays flat without a pass, whatever shares its batch.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from i2i.data import io
from i2i.infer.images import ArrayPixels, ArrayResult, Pixels, Result, TensorPixels, TensorResult


class SRModel(Protocol):
    scale: int
    device: torch.device

    def translate_pixels(self, source: Pixels, result: Result, *, tile: int | None = None,
                         tile_pad: int | None = None, name: str = "") -> None: ...


def upsampled_alphas(model: SRModel, alphas: list[np.ndarray], upsampler: str, tile: int | None,
                     tile_pad: int | None, name: str = "") -> list[np.ndarray]:
    """HxW uint8/uint16 alphas at the SR output's size (`upsampler`: "model" or "resize")."""
    size = (alphas[0].shape[0] * model.scale, alphas[0].shape[1] * model.scale)
    flat = [alpha.min() == alpha.max() for alpha in alphas]
    varying = [alpha for alpha, is_flat in zip(alphas, flat) if not is_flat]
    made = iter(_upsampled(model, varying, upsampler, tile, tile_pad, name) if varying else [])
    return [np.full(size, alpha.flat[0], alpha.dtype) if is_flat else next(made)
            for alpha, is_flat in zip(alphas, flat)]


def _upsampled(model: SRModel, alphas: list[np.ndarray], upsampler: str, tile: int | None, tile_pad: int | None,
               name: str) -> list[np.ndarray]:
    """Alphas that are not flat, through the network ("model") or resized ("resize")."""
    bits = [io.bit_depth(alpha) for alpha in alphas]
    if upsampler == "model":
        result = ArrayResult(bits)
        model.translate_pixels(ArrayPixels([alpha[..., None] for alpha in alphas]), result,
                               tile=tile, tile_pad=tile_pad, name=name)
        return [array[..., 0] for array in result.arrays]
    resized = resized_alpha(torch.stack([io.to_tensor(alpha) for alpha in alphas]), model.scale, model.device).cpu()
    return [io.from_tensor(resized[i, 0], depth)[..., 0] for i, depth in enumerate(bits)]


def upsampled_alpha_tensor(model: SRModel, alpha: torch.Tensor, upsampler: str, tile: int | None,
                           tile_pad: int | None) -> torch.Tensor:
    """Nx1xHxW alpha in [0, 1] at the SR output's size, on the model's device: as `upsampled_alphas`."""
    flat = alpha.amin(dim=(1, 2, 3)) == alpha.amax(dim=(1, 2, 3))
    out = alpha.flatten(1)[:, :1].to(model.device, torch.float32)[:, :, None, None]
    out = out.expand(-1, 1, alpha.shape[2] * model.scale, alpha.shape[3] * model.scale).clone()
    varying = (~flat).nonzero().flatten().tolist()
    if varying and upsampler == "model":
        result = TensorResult()  # one plane in and out: SR models keep gray
        model.translate_pixels(TensorPixels(alpha[varying]), result, tile=tile, tile_pad=tile_pad)
        out[varying] = result.tensor.to(out)
    elif varying:
        out[varying] = resized_alpha(alpha[varying], model.scale, model.device)
    return out


def resized_alpha(alpha: torch.Tensor, scale: int, device: torch.device) -> torch.Tensor:
    """Nx1xHxW alpha in [0, 1] at `scale` times its size (bicubic), on `device`."""
    alpha = alpha.to(device, torch.float32)
    if scale != 1:
        alpha = F.interpolate(alpha, scale_factor=scale, mode="bicubic", align_corners=False)
    return alpha.clamp(0, 1)
