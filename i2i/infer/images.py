"""Image conversion around the model call, in one place: PIL images, numpy arrays, tensors
and decoded files to NxCxHxW floats in [0, 1], and the result back to what came in.

The model call reads its input and writes its output a window at a time (`Pixels`,
`Result`), so 8- and 16-bit images stay integer arrays and only the window being computed
exists as floats: what `i2i.infer.tiles` needs to bound the memory of huge images. Each
window is converted exactly as the whole image would be (io.to_tensor, io.from_tensor are
per pixel).

An alpha channel (the last of 2 or 4 channels) is split off before the model and put back
after it (the model call upsamples it for SR); 16-bit in gives 16-bit out, except where Pillow
has no such mode (16-bit colour). File decoding and encoding stay in `i2i.data.io`.

Outscale. Real-ESRGAN users ask for an output size other than the model's scale (its
`--outscale`): the finished output (uint8, uint16 or float, alpha included) is resized to
(int(height * outscale), int(width * outscale)) of the input with cv2's Lanczos, as
Real-ESRGAN's `RealESRGANer.enhance` does at its end (`output_size`, `resize_output`).
"""
from __future__ import annotations

import math
import numbers
import os
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch

from i2i.data import io
from i2i.errors import UsageError

# colour NxCxHxW and alpha (Nx1xHxW or None) in [0, 1] -> the model's colour and alpha
TensorCall = Callable[[torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, torch.Tensor | None]]
# HxWxC uint8/uint16 colour of one size, their HxW alphas or None, a name for messages -> (pixels, alpha) each
ArrayCall = Callable[..., list[tuple[np.ndarray, np.ndarray | None]]]
Index = slice | np.ndarray  # rows or columns of an image (`i2i.infer.tiles.pad_index`)
FLOAT_TOLERANCE = 1e-3  # how far float pixels may stray outside [0, 1] (rounding) before they are refused
ALPHA_UPSAMPLERS = ("model", "resize")  # SR alpha: through the network (Real-ESRGAN's default), or bicubic
MAX_OUTPUT_SIDE = 2 ** 31 - 1  # cv2.resize takes int sizes (and PNG holds no more)


class Pixels(Protocol):
    """The model call's input, read a window at a time."""

    shape: tuple[int, int, int, int]  # N, C, H, W

    def read(self, rows: Index, cols: Index) -> torch.Tensor:
        """Those rows and columns of every image, as N x C x h x w floats in [0, 1]."""


class Result(Protocol):
    """The model call's output, written a region at a time."""

    def write(self, top: int, left: int, y: torch.Tensor, size: tuple[int, int]) -> None:
        """N x C x h x w floats in [0, 1] at (top, left) of outputs `size` = (H, W) large."""


class ArrayPixels:
    """HxWxC uint8/uint16 arrays of one size (depths may differ) read as io.to_tensor reads them;
    with `gray` (a 1-channel network), colour read as its BT.601 luma rounded to the array's
    levels, as the training datasets read it (`datasets.gray`, PIL's convert("L"))."""

    def __init__(self, arrays: Sequence[np.ndarray], gray: bool = False):
        self.arrays, self.gray = arrays, gray
        height, width, channels = arrays[0].shape
        self.shape = (len(arrays), 1 if gray else channels, height, width)

    def read(self, rows: Index, cols: Index) -> torch.Tensor:
        from i2i.data.datasets import gray

        windows = [_take(array, rows, cols) for array in self.arrays]
        return torch.stack([io.to_tensor(gray(window) if self.gray else window) for window in windows])


class TensorPixels:
    """An NxCxHxW float tensor in [0, 1]."""

    def __init__(self, x: torch.Tensor):
        self.x = x
        self.shape = tuple(x.shape)

    def read(self, rows: Index, cols: Index) -> torch.Tensor:
        def index(i: Index) -> slice | torch.Tensor:
            return i if isinstance(i, slice) else torch.from_numpy(i).to(self.x.device)

        rows, cols = index(rows), index(cols)
        if isinstance(rows, slice) or isinstance(cols, slice):
            return self.x[:, :, rows, cols]
        return self.x[:, :, rows[:, None], cols[None, :]]


class ArrayResult:
    """HxWxC arrays, one per image at its bit depth (8 or 16), filled as io.from_tensor converts."""

    def __init__(self, bit_depths: Sequence[int]):
        self.bit_depths = bit_depths
        self.arrays: list[np.ndarray] = []

    def write(self, top: int, left: int, y: torch.Tensor, size: tuple[int, int]) -> None:
        for i, depth in enumerate(self.bit_depths):
            block = io.from_tensor(y[i], depth)
            if len(self.arrays) <= i:
                self.arrays.append(np.empty((*size, block.shape[2]), block.dtype))
            self.arrays[i][top: top + block.shape[0], left: left + block.shape[1]] = block


class StreamResult:
    """One image's output handed on a row of tiles at a time (`write_rows(rows, height)`, top to
    bottom, with the output's full height): only that row of tiles ever exists, so a huge
    image's result goes to its file as it is computed (io.stream_png). Relies on
    `i2i.infer.tiles.plan` giving tiles row by row, left to right."""

    def __init__(self, bit_depth: int, write_rows: Callable[[np.ndarray, int], None]):
        self.bit_depth, self.write_rows = bit_depth, write_rows
        self.band: np.ndarray | None = None
        self.top = self.filled = self.height = 0

    def write(self, top: int, left: int, y: torch.Tensor, size: tuple[int, int]) -> None:
        block = io.from_tensor(y[0], self.bit_depth)
        if self.band is None or top != self.top:
            self.flush()
            if top != self.top:
                raise RuntimeError(f"tiles out of order: rows from {top}, expected {self.top}")
            self.band = np.empty((block.shape[0], size[1], block.shape[2]), block.dtype)
            self.height = size[0]
        self.band[:, left: left + block.shape[1]] = block
        self.filled += block.shape[1]

    def flush(self) -> None:
        """Hand on the finished row of tiles (all of its columns must have been written)."""
        if self.band is None:
            return
        if self.filled != self.band.shape[1]:
            raise RuntimeError(f"rows {self.top}+: {self.filled} of {self.band.shape[1]} columns written")
        self.write_rows(self.band, self.height)
        self.top += self.band.shape[0]
        self.band, self.filled = None, 0


class TensorResult:
    """One N x C x H x W float tensor, on the device the model computes on."""

    def __init__(self):
        self.tensor: torch.Tensor | None = None

    def write(self, top: int, left: int, y: torch.Tensor, size: tuple[int, int]) -> None:
        if self.tensor is None:
            self.tensor = y.new_empty(*y.shape[:2], *size)
        self.tensor[:, :, top: top + y.shape[2], left: left + y.shape[3]] = y


def check_outscale(outscale: object) -> float | None:
    """`outscale` as a float, or None (the model's own scale); anything but a finite number
    above 0 is a one-line UsageError, before a model loads or an image is computed."""
    if outscale is None:
        return None
    try:
        value = float(outscale) if isinstance(outscale, numbers.Real) and not isinstance(outscale, bool) else math.nan
    except OverflowError:  # an int beyond floats
        value = math.inf
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"outscale must be a finite number above 0 (the output's size over the input's), "
                         f"not {outscale!r}")
    return value


def check_alpha_upsampler(upsampler: object) -> str:
    """`upsampler` if it is one of ALPHA_UPSAMPLERS, else a one-line UsageError."""
    if upsampler not in ALPHA_UPSAMPLERS:
        raise UsageError(f"alpha_upsampler must be one of {', '.join(ALPHA_UPSAMPLERS)}, not {upsampler!r}")
    return str(upsampler)


def output_size(height: int, width: int, scale: int, outscale: float | None) -> tuple[int, int]:
    """The (height, width) of a height x width input's output: times the model's `scale`, or for
    an `outscale`, Real-ESRGAN's (int(height * outscale), int(width * outscale)). A size under
    1 px or over MAX_OUTPUT_SIDE is a one-line UsageError (known before the compute)."""
    if outscale is None:
        return height * scale, width * scale
    size = int(height * outscale), int(width * outscale)
    if max(size) > MAX_OUTPUT_SIDE:
        raise UsageError(f"outscale {outscale:g} makes its {width}x{height} px input over {MAX_OUTPUT_SIDE} px a side")
    if min(size) < 1:
        raise UsageError(f"outscale {outscale:g} makes its {width}x{height} px input {size[1]}x{size[0]} px, "
                         "under 1 px a side")
    return size


def outscaled_size(height: int, width: int, scale: int, outscale: float | None) -> tuple[int, int] | None:
    """The (height, width) to resize a height x width input's output to for `outscale`, or None
    where the model's own size is it (as Real-ESRGAN, which resizes only for another scale)."""
    size = output_size(height, width, scale, check_outscale(outscale))
    return None if size == (height * scale, width * scale) else size


def resize_output(pixels: np.ndarray, alpha: np.ndarray | None, size: tuple[int, int]
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """A finished HxWxC output (uint8, uint16 or float in [0, 1]) and its HxW alpha (same dtype)
    resized to `size` (height, width) as Real-ESRGAN's outscale does: cv2 INTER_LANCZOS4 on
    the output with the alpha as one more channel. Floats are clipped back to [0, 1] (Lanczos
    overshoots; uint8 and uint16 saturate in cv2)."""
    import cv2

    merged = pixels if alpha is None else np.dstack([pixels, alpha])
    out = cv2.resize(merged, (size[1], size[0]), interpolation=cv2.INTER_LANCZOS4)
    out = out.reshape(*size, merged.shape[2])  # cv2 drops a single channel axis
    if out.dtype.kind == "f":
        np.clip(out, 0.0, 1.0, out=out)
    if alpha is None:
        return out, None
    return np.ascontiguousarray(out[..., :-1]), np.ascontiguousarray(out[..., -1])


def resize_tensors(y: torch.Tensor, alpha: torch.Tensor | None, size: tuple[int, int]
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """NxCxHxW floats in [0, 1] and their Nx1xHxW alpha, resized to `size` by `resize_output`
    (on the CPU, as Real-ESRGAN does), returned on `y`'s device."""
    merged = y if alpha is None else torch.cat([y, alpha.to(y)], dim=1)
    out = torch.stack([torch.from_numpy(resize_output(image.permute(1, 2, 0).cpu().numpy(), None, size)[0])
                       for image in merged.float()]).permute(0, 3, 1, 2).to(y.device)
    return (out, None) if alpha is None else (out[:, :-1], out[:, -1:])


def _take(array: np.ndarray, rows: Index, cols: Index) -> np.ndarray:
    if isinstance(rows, slice) or isinstance(cols, slice):
        return array[rows, cols]
    return array[np.ix_(rows, cols)]


def translate_image(image: Any, translate: TensorCall, translate_arrays: ArrayCall) -> Any:
    """A PIL image, numpy array or tensor through the model, returned as the same kind (see
    `Translator.__call__` for what each kind may be): float tensors and arrays through
    `translate`, 8- and 16-bit arrays and PIL images through `translate_arrays`."""
    if isinstance(image, torch.Tensor):
        return _translate_tensor(image, translate)
    if isinstance(image, np.ndarray):
        return _translate_array(image, translate, translate_arrays)
    import PIL.Image

    if isinstance(image, PIL.Image.Image):
        return _translate_pil(image, translate, translate_arrays)
    path = isinstance(image, (str, os.PathLike))
    hint = " (open a file with PIL.Image.open; translate_folder takes paths)" if path else ""
    raise UsageError(f"cannot translate a {type(image).__name__}: give a PIL image, a numpy array or a tensor{hint}")


def translate_batch(images: list[io.Image], translate: ArrayCall) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Decoded files of one size (all with alpha or all without) through `translate`: the
    pixels and alpha to write, each at its file's bit depth."""
    alphas = None if images[0].alpha is None else [image.alpha for image in images]
    name = ", ".join(str(image.path or "image") for image in images)
    return translate([image.pixels for image in images], alphas, name=name)


def _translate_tensor(image: torch.Tensor, translate: TensorCall) -> torch.Tensor:
    batched = image.dim() == 4
    if image.dim() not in (3, 4) or image.shape[-3] not in (1, 2, 3, 4):
        raise UsageError(f"expected a CxHxW or NxCxHxW tensor with 1-4 channels, not shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise UsageError(f"expected a float tensor in [0, 1], not {image.dtype}")
    if image.device.type == "meta":
        raise UsageError("the tensor is on the 'meta' device, which holds no pixels: give one on the cpu or a GPU")
    y = _with_alpha(image if batched else image[None], translate).to(image.device, image.dtype)
    if y.is_inference() and not torch.is_inference_mode_enabled():
        y = y.clone()  # an inference-mode tensor refuses in-place updates and autograd: the caller's to use
    return y if batched else y[0]


def _translate_array(image: np.ndarray, translate: TensorCall, translate_arrays: ArrayCall) -> np.ndarray:
    image = io.native_byte_order(image)  # big-endian ('>u2', as FITS files give) holds the same values
    flat = image.ndim == 2
    array = image[..., None] if flat else image
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise UsageError(f"expected an HxW or HxWxC array with 1-4 channels, not shape {image.shape}")
    check_not_empty(1, *array.shape[:2])
    if image.dtype == np.uint8 or image.dtype == np.uint16:
        alpha = array.shape[2] in (2, 4)
        ((out, out_alpha),) = translate_arrays([array[..., :-1] if alpha else array],
                                               [array[..., -1]] if alpha else None)
        out = out if out_alpha is None else np.dstack([out, out_alpha])
    elif np.issubdtype(image.dtype, np.floating):
        check_float_pixels(image)  # before float32, which would turn huge values infinite
        # writeable: torch warns of "undefined behavior" for a read-only array (np.load's mmap, np.frombuffer)
        x = torch.from_numpy(np.require(array, np.float32, ["C_CONTIGUOUS", "WRITEABLE"])).permute(2, 0, 1)
        out = _with_alpha(x[None], translate)[0].permute(1, 2, 0).cpu().clamp(0, 1).numpy().astype(image.dtype)
    else:
        raise UsageError(f"expected uint8, uint16 or float pixels, not {image.dtype}")
    return out[..., 0] if flat and out.shape[2] == 1 else out


def check_not_empty(count: int, height: int, width: int) -> None:
    """Refuse an empty image or batch in one line: it would fail deep in the model call."""
    if height == 0 or width == 0:
        raise UsageError(f"the image is empty ({height}x{width}, height x width)")
    if count == 0:
        raise UsageError("the batch is empty (0 images)")


def check_tensor_input(x: torch.Tensor, alpha: torch.Tensor | None) -> None:
    """An NxCxHxW batch (and its alpha): not empty, finite, in [0, 1]."""
    check_not_empty(x.shape[0], *x.shape[2:])
    check_float_pixels(x)
    if alpha is not None:
        check_float_pixels(alpha)


def check_float_pixels(values: np.ndarray | torch.Tensor) -> None:
    """Refuse float pixels that are not finite or not in [0, 1] (give or take FLOAT_TOLERANCE):
    clamping 0..255 floats gives a white image, and NaN would be blamed on the model."""
    low, high = float(values.min()), float(values.max())  # both propagate NaN
    if not (math.isfinite(low) and math.isfinite(high)):
        raise UsageError("the input image holds NaN or infinite values")
    if low < -FLOAT_TOLERANCE or high > 1 + FLOAT_TOLERANCE:
        raise UsageError(f"float images must hold values in [0, 1], got {low:.4g}..{high:.4g}; "
                         f"{_range_hint(low, high)}")


def _range_hint(low: float, high: float) -> str:
    """How to bring pixels in low..high (not all in [0, 1]) to [0, 1], for the message."""
    if low >= -1 - FLOAT_TOLERANCE and high <= 1 + FLOAT_TOLERANCE:
        return "this API takes [0, 1], not the networks' [-1, 1]: pass (x + 1) / 2"
    if low >= -FLOAT_TOLERANCE and high <= 255 + FLOAT_TOLERANCE:
        return "divide by 255 (or pass uint8)"
    if low >= -FLOAT_TOLERANCE and high <= 65535 + FLOAT_TOLERANCE:
        return "divide by 65535 (or pass uint16)"
    return "scale them to [0, 1]"


def _translate_pil(image: Any, translate: TensorCall, translate_arrays: ArrayCall) -> Any:
    import PIL.Image

    pixels, alpha = io.pil_to_arrays(image)
    out = _translate_array(pixels if alpha is None else np.dstack([pixels, alpha]), translate, translate_arrays)
    if out.dtype == np.uint16 and out.shape[2] > 1:  # Pillow holds 16 bits only as gray ("I;16")
        out = io.to_dtype(out, np.uint8)
    result = PIL.Image.fromarray(out[..., 0] if out.shape[2] == 1 else out)  # L or I;16, LA, RGB, RGBA
    icc = io.fitting_icc(image.info.get("icc_profile"), 1 if out.shape[2] <= 2 else 3)
    if icc is not None:  # where Image.open puts it: PNG and TIFF saves keep it, JPEG/WebP take it as icc_profile=
        result.info["icc_profile"] = icc
    return result


def _with_alpha(x: torch.Tensor, translate: TensorCall) -> torch.Tensor:
    """NxCxHxW in [0,1] through `translate`: 2 channels are gray + alpha, 4 are RGB + alpha;
    the alpha is split off first and put back as the last channel."""
    channels = x.shape[1]
    color, alpha = x, None
    if channels in (2, 4):
        color, alpha = x.narrow(1, 0, channels - 1), x.narrow(1, channels - 1, 1)
    y, alpha = translate(color.float(), alpha)
    return y if alpha is None else torch.cat([y, alpha], dim=1)
