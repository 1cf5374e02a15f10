"""Image conversion around the model call, in one place: PIL images, numpy arrays, tensors
and decoded files to NxCxHxW floats in [0, 1], and the result back to what came in.

An alpha channel (the last of 2 or 4 channels) is split off before the model and put back
after it (the model call resizes it for SR); 16-bit in gives 16-bit out, except where Pillow
has no such mode (16-bit colour). File decoding and encoding stay in `i2i.data.io`.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from i2i.data import io
from i2i.errors import UsageError

# colour NxCxHxW and alpha (Nx1xHxW or None) in [0, 1] -> the model's colour and alpha
TensorCall = Callable[[torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, torch.Tensor | None]]


def translate_image(image: Any, translate: TensorCall) -> Any:
    """A PIL image, numpy array or tensor through `translate`, returned as the same kind
    (see `Translator.__call__` for what each kind may be)."""
    if isinstance(image, torch.Tensor):
        return _translate_tensor(image, translate)
    if isinstance(image, np.ndarray):
        return _translate_array(image, translate)
    import PIL.Image

    if isinstance(image, PIL.Image.Image):
        return _translate_pil(image, translate)
    raise UsageError(f"cannot translate a {type(image).__name__}: give a PIL image, a numpy array or a tensor")


def translate_batch(images: list[io.Image], translate: TensorCall) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Decoded files of one size (all with alpha or all without) through `translate`: the
    pixels and alpha to write, each at its file's bit depth."""
    x = torch.stack([io.to_tensor(image) for image in images])
    alpha = None if images[0].alpha is None else torch.stack([io.to_tensor(image.alpha) for image in images])
    y, alpha = translate(x, alpha)
    y = y.cpu()
    alpha = None if alpha is None else alpha.cpu()
    return [(io.from_tensor(y[i], image.bit_depth), None if alpha is None else io.from_tensor(alpha[i], image.bit_depth))
            for i, image in enumerate(images)]


def _translate_tensor(image: torch.Tensor, translate: TensorCall) -> torch.Tensor:
    batched = image.dim() == 4
    if image.dim() not in (3, 4) or image.shape[-3] not in (1, 2, 3, 4):
        raise UsageError(f"expected a CxHxW or NxCxHxW tensor with 1-4 channels, not shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise UsageError(f"expected a float tensor in [0, 1], not {image.dtype}")
    y = _with_alpha(image if batched else image[None], translate).to(image.device, image.dtype)
    return y if batched else y[0]


def _translate_array(image: np.ndarray, translate: TensorCall) -> np.ndarray:
    flat = image.ndim == 2
    array = image[..., None] if flat else image
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise UsageError(f"expected an HxW or HxWxC array with 1-4 channels, not shape {image.shape}")
    if image.dtype == np.uint8 or image.dtype == np.uint16:
        x = io.to_tensor(array)
    elif np.issubdtype(image.dtype, np.floating):
        x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1)
    else:
        raise UsageError(f"expected uint8, uint16 or float pixels, not {image.dtype}")
    y = _with_alpha(x[None], translate)
    if np.issubdtype(image.dtype, np.floating):
        out = y[0].permute(1, 2, 0).cpu().clamp(0, 1).numpy().astype(image.dtype)
    else:
        out = io.from_tensor(y[0], 16 if image.dtype == np.uint16 else 8)
    return out[..., 0] if flat and out.shape[2] == 1 else out


def _translate_pil(image: Any, translate: TensorCall) -> Any:
    import PIL.Image

    pixels, alpha = io.pil_to_arrays(image)
    out = _translate_array(pixels if alpha is None else np.dstack([pixels, alpha]), translate)
    if out.dtype == np.uint16 and out.shape[2] > 1:  # Pillow holds 16 bits only as gray ("I;16")
        out = io.to_dtype(out, np.uint8)
    if out.shape[2] == 1:
        return PIL.Image.fromarray(out[..., 0])  # "L", or "I;16" for uint16
    return PIL.Image.fromarray(out)  # LA, RGB, RGBA by channel count


def _with_alpha(x: torch.Tensor, translate: TensorCall) -> torch.Tensor:
    """NxCxHxW in [0,1] through `translate`: 2 channels are gray + alpha, 4 are RGB + alpha;
    the alpha is split off first and put back as the last channel."""
    channels = x.shape[1]
    color, alpha = x, None
    if channels in (2, 4):
        color, alpha = x.narrow(1, 0, channels - 1), x.narrow(1, channels - 1, 1)
    y, alpha = translate(color.float(), alpha)
    return y if alpha is None else torch.cat([y, alpha], dim=1)
