"""MATLAB-exact bicubic `imresize`, in numpy and in torch.

The SR literature makes its low-resolution images, and scores its bicubic baselines,
with MATLAB's `imresize(x, scale, 'bicubic')`. Other bicubic resizers (PIL, OpenCV,
torch `interpolate`) differ from it by up to several grey levels, enough to move PSNR
by tenths of a dB, so this is a port of MATLAB's algorithm:

* cubic kernel with a = -0.5 (Keys); when shrinking, the kernel is widened by 1/scale
  (antialiasing), so a 1/4 shrink averages over 16 input pixels;
* output pixel x (1-based) samples input position u = x/scale + 0.5*(1 - 1/scale);
* the weights of each output pixel are normalised to sum to 1;
* indices outside the image are mirrored symmetrically (edge pixel repeated), as in
  current MATLAB releases (old releases clamped; that changes only the outer 2-3 pixels);
* the dimension with the smaller scale is resized first, rows (height) first when the
  scales are equal;
* on integer input each 1-D pass is computed in double and rounded back to the input
  type (half away from zero, saturated), so the intermediate image is uint8 too.

`resize_weights` is the one place the weights are computed; `imresize` (numpy, gather
and accumulate in MATLAB's order) and `imresize_torch` (dense matrices, two matmuls,
any device) both use it.
"""
from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported lazily: numpy users do not pay for it
    import torch

_KERNEL_WIDTH = 4.0  # support of the cubic kernel, in input pixels, before widening


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5, written as MATLAB writes it."""
    absx = np.abs(x)
    absx2 = absx * absx
    absx3 = absx2 * absx
    return (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1) + (
        -0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2
    ) * ((1 < absx) & (absx <= 2))


@functools.lru_cache(maxsize=512)
def resize_weights(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights and source indices of a 1-D MATLAB bicubic resize (cached, read-only).

    Returns `(weights, indices)`, both `(out_len, taps)`: output pixel i is
    `sum_k weights[i, k] * input[indices[i, k]]`, indices 0-based and already mirrored
    into `[0, in_len)`. Taps whose weight is zero for every output are dropped.
    """
    if scale < 1:  # antialiasing: stretch the kernel over 1/scale input pixels
        def kernel(x: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * x)

        kernel_width = _KERNEL_WIDTH / scale
    else:
        kernel = _cubic
        kernel_width = _KERNEL_WIDTH
    x = np.arange(1, out_len + 1, dtype=np.float64)  # 1-based, as in MATLAB
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    weights = kernel(u[:, None] - indices)
    weights = weights / np.sum(weights, axis=1, keepdims=True)

    # Symmetric mirror: ..., 2, 1, [1, 2, ..., n], n, n-1, ...  (1-based), made 0-based.
    index0 = indices.astype(np.int64) - 1
    period = 2 * in_len
    index0 = np.mod(index0, period)
    index0 = np.where(index0 >= in_len, period - 1 - index0, index0)

    keep = np.any(weights != 0, axis=0)
    weights = np.ascontiguousarray(weights[:, keep])
    index0 = np.ascontiguousarray(index0[:, keep])
    weights.flags.writeable = False
    index0.flags.writeable = False
    return weights, index0


@functools.lru_cache(maxsize=512)
def resize_matrix(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """The 1-D resize as a dense `(out_len, in_len)` float64 matrix (cached, read-only)."""
    weights, indices = resize_weights(in_len, out_len, scale)
    matrix = np.zeros((out_len, in_len), dtype=np.float64)
    rows = np.broadcast_to(np.arange(out_len)[:, None], indices.shape)
    np.add.at(matrix, (rows, indices), weights)  # mirrored taps that coincide add up
    matrix.flags.writeable = False
    return matrix


def output_length(in_len: int, scale: float) -> int:
    """MATLAB's `ceil(scale * in_len)`, with a product within float error of an integer
    taken as that integer (so 1/3 of 510 is 170, not 171)."""
    product = in_len * scale
    nearest = round(product)
    if abs(product - nearest) <= 1e-9 * max(1.0, abs(product)):
        return int(nearest)
    return int(math.ceil(product))


def _plan(
    in_size: tuple[int, int], scale: float | None, output_size: tuple[int, int] | None
) -> tuple[tuple[int, int], tuple[float, float], list[int]]:
    """Output size, per-dimension scale and the order of the two 1-D passes."""
    if (scale is None) == (output_size is None):
        raise ValueError("give exactly one of scale and output_size")
    if scale is not None:
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        scales = (float(scale), float(scale))
        out = (output_length(in_size[0], scale), output_length(in_size[1], scale))
    else:
        out = (int(output_size[0]), int(output_size[1]))
        if min(out) < 1:
            raise ValueError(f"output_size must be positive, got {output_size}")
        scales = (out[0] / in_size[0], out[1] / in_size[1])
    order = sorted((0, 1), key=lambda dim: scales[dim])  # stable: rows first on a tie
    return out, scales, order


def round_to(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """MATLAB's conversion of double to an integer type: round half away from zero, saturate.

    The one rounding of floats back to pixels that MATLAB-exact figures depend on.
    """
    info = np.iinfo(dtype)
    return np.floor(np.clip(values, info.min, info.max) + 0.5).astype(dtype)


def _resize_axis(image: np.ndarray, axis: int, out_len: int, scale: float) -> np.ndarray:
    """One 1-D pass in float64, accumulating the taps in order as MATLAB's mex does."""
    weights, indices = resize_weights(image.shape[axis], out_len, scale)
    source = np.moveaxis(image, axis, 0).astype(np.float64, copy=False)
    shape = (out_len,) + (1,) * (source.ndim - 1)
    out = np.zeros((out_len,) + source.shape[1:], dtype=np.float64)
    for k in range(weights.shape[1]):
        out += weights[:, k].reshape(shape) * source[indices[:, k]]
    return np.moveaxis(out, 0, axis)


def imresize(
    image: np.ndarray,
    scale: float | None = None,
    output_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """MATLAB `imresize(image, scale)` / `imresize(image, [h w])`, bicubic, antialiased.

    `image` is HxW or HxWxC; `scale` is output/input (0.25 shrinks by 4). uint8 and
    uint16 images are rounded back to their type after each pass, as MATLAB does; float
    images are not rounded and come back in their own float type.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"expected an HxW or HxWxC image, got shape {image.shape}")
    dtype = image.dtype
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise ValueError(f"unsupported image dtype {dtype}")
    out_size, scales, order = _plan(image.shape[:2], scale, output_size)
    result = image
    for axis in order:
        result = _resize_axis(result, axis, out_size[axis], scales[axis])
        if np.issubdtype(dtype, np.integer):
            result = round_to(result, dtype)
    return result.astype(dtype, copy=False)


@functools.lru_cache(maxsize=256)
def _torch_matrix(
    in_len: int, out_len: int, scale: float, device: "torch.device", dtype: "torch.dtype"
) -> "torch.Tensor":
    import torch

    return torch.from_numpy(resize_matrix(in_len, out_len, scale).copy()).to(device, dtype)


def imresize_torch(
    x: "torch.Tensor",
    scale: float | None = None,
    output_size: tuple[int, int] | None = None,
    *,
    round_uint8: bool = False,
    data_range: float = 1.0,
) -> "torch.Tensor":
    """`imresize` for a float tensor (..., H, W), e.g. NCHW, on any device: two matmuls.

    A torch implementation for tensors already on a device, tested equal to the numpy
    `imresize`; i2i itself makes LR images with the numpy one (`SRDataset`, `i2i data
    derive sr`). Without rounding it equals the numpy `imresize` of float images (to float
    rounding). With `round_uint8=True` it mimics `imresize` of a uint8 image: the input is
    snapped to the 256 levels, and each pass is rounded to them (half away from zero,
    clipped); `data_range` is the value that stands for 255 (1.0 for tensors in [0, 1],
    255.0 for tensors in [0, 255]). Work is done in float64 for float64 input and float32
    otherwise; in float32 a pixel within ~1e-5 of a rounding boundary can come out one
    level off the uint8 numpy result.
    """
    import torch

    if not torch.is_floating_point(x):
        raise ValueError(f"expected a floating-point tensor, got {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"expected a tensor (..., H, W), got shape {tuple(x.shape)}")
    out_size, scales, order = _plan((x.shape[-2], x.shape[-1]), scale, output_size)
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    y = x.to(work)
    if round_uint8:
        y = torch.floor(torch.clamp(y * (255.0 / data_range), 0, 255) + 0.5)
    for axis in order:
        in_len = y.shape[-2 + axis]
        matrix = _torch_matrix(in_len, out_size[axis], scales[axis], y.device, work)
        if axis == 0:
            y = torch.matmul(matrix, y)  # (out_h, H) @ (..., H, W)
        else:
            y = torch.matmul(y, matrix.T)  # (..., h, W) @ (W, out_w)
        if round_uint8:
            y = torch.floor(torch.clamp(y, 0, 255) + 0.5)
    if round_uint8:
        y = y * (data_range / 255.0)
    return y.to(x.dtype)


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Drop the last `H mod scale` rows and `W mod scale` columns (top-left anchored), so
    that the image shrinks by `scale` to a whole number of pixels."""
    scale = int(scale)
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    height, width = image.shape[:2]
    return image[: height - height % scale, : width - width % scale]
