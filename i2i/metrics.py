"""PSNR and SSIM as the super-resolution literature reports them.

Scores are taken on the Y channel of BT.601 YCbCr (16-235, MATLAB `rgb2ycbcr`), with a
border of `scale` pixels cropped, SSIM being Wang et al.'s MATLAB `ssim_index`
(11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering,
mean of the map). Everything is computed in float64 with plain numpy, so the figures
match the published MATLAB ones to well under 0.001 dB.

PSNR of identical images is `math.inf` (not capped, as BasicSR): that is the truth
about the image. `i2i.evaluate.summarize` takes the PSNR mean over the finite values and
counts the exact images it leaves out, so one flat image does not make a set's mean inf;
`i2i.evaluate.write_json` stores a non-finite value as null.

Images: numpy arrays HxWxC (or HxW), uint8, uint16 or float in [0, 1]; torch tensors CxHxW
(torch's layout, as `i2i.Translator` takes them; HxWxC where the first side is over 4, as
torch.from_numpy gives one), detached and moved to the CPU here. One
image per call: a batch, a CxHxW array or floats outside [0, 1] (0..255, a network's [-1, 1])
are refused, since each would score the wrong pixels without a word.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

# BT.601 luma, as MATLAB rgb2ycbcr: R, G, B in [0, 1] -> Y in [16, 235] ([0, 255] units).
_Y_OFFSET = 16.0
_Y_WEIGHTS = (65.481, 128.553, 24.966)

_SSIM_SIZE = 11
_SSIM_SIGMA = 1.5
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


def _numpy(x: Any) -> np.ndarray:
    """`x` as a numpy array; a torch tensor detached, on the CPU, half floats as float32."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor (torch is not imported here)
        x = x.detach().cpu()
        if x.is_floating_point():
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def as_image(x: Any) -> np.ndarray:
    """One image as an HxW or HxWxC numpy array (C <= 4): a CxHxW torch tensor transposed,
    a numpy array taken as it is; a batch, a CxHxW array or floats outside [0, 1] refused."""
    is_tensor = hasattr(x, "detach")
    x = _numpy(x)
    given = x.shape  # as the caller passed it, for the messages
    layout = "CxHxW tensor" if is_tensor else "HxWxC array"
    if x.ndim not in (2, 3):
        raise ValueError(f"expected one image (an HxW or {layout}), got shape {given}")
    if is_tensor and x.ndim == 3 and x.shape[0] <= 4:  # CxHxW; an HxWxC tensor (torch.from_numpy) stays
        x = x.transpose(1, 2, 0)
    if x.ndim == 3 and x.shape[2] > 4:
        raise ValueError(f"expected an HxWxC {'tensor' if is_tensor else 'array'} of 1 to 4 channels, got shape {given}"
                         + ("; a CxHxW array? pass x.transpose(1, 2, 0)" if x.shape[0] <= 4 else ""))
    if np.issubdtype(x.dtype, np.floating) and x.size:
        lo, hi = float(np.min(x)), float(np.max(x))
        if not (lo >= 0.0 and hi <= 1.0):  # NaN fails too
            raise ValueError(f"float images must be in [0, 1], got values in [{lo:.4g}, {hi:.4g}]: divide 0..255 "
                             "floats by 255, map a network's [-1, 1] with (x + 1) / 2, clip an overshoot to [0, 1]")
    return x


def rgb_to_y(x: Any) -> np.ndarray:
    """Y of an HxWxC (or HxW) image as float64 in [0, 255] units (`as_image` for what it takes).

    Integer images are scaled by their type's maximum (255 for uint8, 65535 for uint16),
    float images must be in [0, 1]. RGB (C >= 3, extra channels such as alpha
    ignored) gives 16 + 65.481 R + 128.553 G + 24.966 B; a gray image (HxW, C = 1, or
    C = 2 gray + alpha) is its own Y, only scaled to [0, 255].
    """
    x = as_image(x)
    if np.issubdtype(x.dtype, np.integer):
        max_value = float(np.iinfo(x.dtype).max)
    elif np.issubdtype(x.dtype, np.floating):
        max_value = 1.0
    else:
        raise ValueError(f"unsupported image dtype {x.dtype}")
    if x.ndim == 2 or x.shape[2] < 3:
        gray = x if x.ndim == 2 else x[:, :, 0]
        return gray.astype(np.float64) * (255.0 / max_value)
    rgb = x[:, :, :3].astype(np.float64) / max_value
    r, g, b = rgb[:, :, 0], rgb[:, :, 1], rgb[:, :, 2]
    return _Y_OFFSET + _Y_WEIGHTS[0] * r + _Y_WEIGHTS[1] * g + _Y_WEIGHTS[2] * b


def min_scored_size(crop: int) -> int:
    """The smallest H and W that PSNR-Y and SSIM-Y can score with `crop` border pixels
    dropped: the SSIM window must fit in what is left."""
    return 2 * crop + _SSIM_SIZE


def crop_border(x: np.ndarray, crop: int) -> np.ndarray:
    """Drop `crop` pixels from every border (the SR convention: crop = scale)."""
    if crop < 0:
        raise ValueError(f"crop must be >= 0, got {crop}")
    if crop == 0:
        return x
    if 2 * crop >= min(x.shape[:2]):  # else an empty image, and numpy's warnings on its mean
        raise ValueError(f"image {x.shape[1]}x{x.shape[0]} has nothing left after cropping a {crop}-pixel border")
    return x[crop:-crop, crop:-crop]


def psnr(a: Any, b: Any, data_range: float = 255.0) -> float:
    """10 log10(data_range^2 / MSE) over all pixels, in float64; inf for identical images.
    `data_range` is the values' full scale: 255 for [0, 255] (Y planes), 1.0 for [0, 1] images."""
    a = _numpy(a).astype(np.float64)
    b = _numpy(b).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError("images are empty")
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


@functools.lru_cache(maxsize=4)
def _gaussian_1d(size: int, sigma: float) -> np.ndarray:
    """1-D factor of MATLAB's fspecial('gaussian', size, sigma): the 2-D window is its
    outer product, both normalised to sum 1."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x * x) / (2 * sigma * sigma))
    g = g / g.sum()
    g.flags.writeable = False
    return g


def _filter_valid(stack: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of (..., H, W) maps with the window g (x) g."""
    n = len(g)
    h, w = stack.shape[-2:]
    rows = g[0] * stack[..., 0 : h - n + 1, :]
    for k in range(1, n):
        rows += g[k] * stack[..., k : h - n + 1 + k, :]
    out = g[0] * rows[..., 0 : w - n + 1]
    for k in range(1, n):
        out += g[k] * rows[..., k : w - n + 1 + k]
    return out


def ssim(a: Any, b: Any, data_range: float = 255.0) -> float:
    """Mean SSIM of two 2-D images, as Wang et al.'s MATLAB `ssim_index` computes it
    (`data_range` as in `psnr`)."""
    a = _numpy(a).astype(np.float64)
    b = _numpy(b).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.ndim != 2:
        raise ValueError(f"ssim takes 2-D images, got shape {a.shape}")
    if min(a.shape) < _SSIM_SIZE:
        raise ValueError(f"image {a.shape} is smaller than the {_SSIM_SIZE}x{_SSIM_SIZE} SSIM window")
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    g = _gaussian_1d(_SSIM_SIZE, _SSIM_SIGMA)
    mu1, mu2, e11, e22, e12 = _filter_valid(np.stack([a, b, a * a, b * b, a * b]), g)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = e11 - mu1_sq
    sigma2_sq = e22 - mu2_sq
    sigma12 = e12 - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / (
        (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
    )
    return float(np.mean(ssim_map))


def y_pair(sr: Any, hr: Any, crop: int) -> tuple[np.ndarray, np.ndarray]:
    """The Y planes PSNR-Y and SSIM-Y compare: (Y of SR, Y of HR), `crop` border pixels
    dropped. One call serves both scores, so Y is computed once."""
    sr, hr = as_image(sr), as_image(hr)
    if sr.shape != hr.shape:
        raise ValueError(f"SR {sr.shape} and HR {hr.shape} differ in shape")
    return crop_border(rgb_to_y(sr), crop), crop_border(rgb_to_y(hr), crop)


def psnr_y(sr: Any, hr: Any, crop: int) -> float:
    """PSNR on Y (BT.601, [0, 255] units) of two images (uint8/uint16 HxWxC as the literature
    scores them, or as `as_image` takes), `crop` border pixels dropped (the SR scale)."""
    return psnr(*y_pair(sr, hr, crop))


def ssim_y(sr: Any, hr: Any, crop: int) -> float:
    """SSIM on Y (BT.601, [0, 255] units) of two images as `psnr_y` takes them, border cropped."""
    return ssim(*y_pair(sr, hr, crop))


# Optional perceptual metrics (LPIPS, FID) belong here, behind a lazy import of a
# well-kept library (torchmetrics / torch-fidelity / lpips) with backbone weights read
# from a local file: issue 7's work, not built yet.
