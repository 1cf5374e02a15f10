"""Augmentation: CPU loading-time transforms and GPU batch augmentation.

Two layers, both pair-consistent (the two sides of a pair get the SAME random geometry):

* `cpu_transform(...)`: the sizes of the reference CycleGAN/pix2pix `get_transform` (resize,
  random crop) on numpy HxWxC images, in the DataLoader workers. It is built on
  albumentations, which stopped upstream development in 2025: this file is the ONLY
  place that imports it (and OpenCV, which it brings), so replacing it is one file.
* `GpuAugment(...)`: flips, 90-degree rotations, crops and input-side colour jitter on
  whole NCHW batches after the transfer to the device; every pipeline's random flips run
  here, once per step, through the trainer (`device_augmentation`, presets `AUGMENT`).
  Geometry is plain torch
  (`torch.flip`/`transpose` selected per sample with `torch.where`): several times faster
  than kornia's AugmentationSequential for the same flips (benchmarks/README.md). kornia is
  used only for colour jitter, where it adds value.
"""
from __future__ import annotations

import operator
from typing import TYPE_CHECKING

import numpy as np

from i2i.errors import UsageError

if TYPE_CHECKING:
    import torch

PREPROCESS = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
#: --augment presets: the random geometry every pipeline's batches get on the device
AUGMENT = {
    "flip": {"flip": True},                    # the reference's random horizontal flip
    "dihedral": {"flip": True, "rot90": True},  # all 8 flips/rotations (the SR recipe)
    "none": {},
}


def _albumentations():
    """Import albumentations (and OpenCV) lazily, single-threaded inside workers."""
    import albumentations
    import cv2

    cv2.setNumThreads(1)  # DataLoader workers are the parallelism; cv2 threads oversubscribe
    return albumentations, cv2


def _as_float(image: np.ndarray) -> np.ndarray:
    """16-bit images become float32 in [0, 1]: albumentations handles uint8 and float32."""
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    if image.dtype not in (np.uint8, np.float32):
        return image.astype(np.float32)
    return image


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bicubic when enlarging, area-averaging when shrinking (antialiased, like PIL)."""
    _, cv2 = _albumentations()
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    shrink = width < w or height < h
    out = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return out.reshape(height, width, -1)  # cv2 drops a single channel axis


class PairTransform:
    """Applies one CPU preprocessing recipe to an image, or to a pair with the same
    random crop. Call with `(a)` or `(a, b)`; returns `(a, b_or_None)`.

    Both sides of a pair must have the same height and width; their channel counts may
    differ (e.g. 1-channel input, 3-channel target). Random parameters come from torch's
    generator (re-seeded per call into albumentations), so `torch.manual_seed` makes runs
    repeatable and each DataLoader worker gets its own stream (albumentations' own RNG
    would be forked identically into every worker).
    """

    def __init__(self, preprocess: str, load_size: int, crop_size: int):
        if preprocess not in PREPROCESS:
            from i2i.errors import UsageError

            raise UsageError(f"unknown preprocess {preprocess!r}; choose one of {', '.join(PREPROCESS)}")
        self.preprocess = preprocess
        self.load_size = int(load_size)
        self.crop_size = int(crop_size)
        A, cv2 = _albumentations()
        steps = []
        if preprocess == "resize_and_crop":
            steps.append(A.Resize(self.load_size, self.load_size, interpolation=cv2.INTER_CUBIC, area_for_downscale="image"))
        if "crop" in preprocess:
            # The reference returns an image smaller than the crop unchanged (and batching
            # then fails); we pad it by reflection to the crop size instead.
            steps.append(A.RandomCrop(self.crop_size, self.crop_size, pad_if_needed=True, border_mode=cv2.BORDER_REFLECT_101))
        self._compose = A.Compose(steps, additional_targets={"b": "image"}) if steps else None

    def _deterministic(self, image: np.ndarray) -> np.ndarray:
        """The size changes that need no random parameter (scale_width, none)."""
        h, w = image.shape[:2]
        if "scale_width" in self.preprocess:
            if w == self.load_size and h >= self.crop_size:
                return image
            return _resize(image, self.load_size, int(max(self.load_size * h / w, self.crop_size)))
        if self.preprocess == "none":  # the reference's __make_power_2(base=4)
            return _resize(image, max(4, int(round(w / 4) * 4)), max(4, int(round(h / 4) * 4)))
        return image

    def __call__(self, a: np.ndarray, b: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        a = self._deterministic(_as_float(a))
        if b is not None:
            b = self._deterministic(_as_float(b))
            if a.shape[:2] != b.shape[:2]:
                raise ValueError(f"pair sides differ in size: {a.shape[:2]} vs {b.shape[:2]}")
        if self._compose is None:
            return a, b
        self._compose.set_random_seed(int(torch.randint(0, 2**31 - 1, ()).item()))
        if b is None:
            return self._compose(image=a)["image"], None
        out = self._compose(image=a, b=b)
        return out["image"], out["b"]

    def __repr__(self) -> str:
        return (f"PairTransform(preprocess={self.preprocess!r}, load_size={self.load_size}, "
                f"crop_size={self.crop_size})")


def cpu_transform(preprocess: str = "resize_and_crop", load_size: int = 286, crop_size: int = 256) -> PairTransform:
    """The sizes of the reference `get_transform`: `resize_and_crop` (resize to load_size
    square, then a random crop_size crop), `crop`, `scale_width` (width to load_size, aspect
    kept, height at least crop_size), `scale_width_and_crop`, or `none` (sizes rounded to a
    multiple of 4). Shrinking is area-averaged (antialiased like PIL's bicubic), enlarging
    bicubic. Its random flip runs on the device (`device_augmentation`)."""
    return PairTransform(preprocess, load_size, crop_size)


# --------------------------------------------------------------------------- GPU


def _where(mask: "torch.Tensor", yes: "torch.Tensor", no: "torch.Tensor") -> "torch.Tensor":
    import torch

    return torch.where(mask.view(-1, *([1] * (no.ndim - 1))), yes, no)


class GpuAugment:
    """Batch augmentation on any device with the SAME random geometry on both sides.

    `flip`: random horizontal flip (p=0.5 per sample). `rot90`: also a random vertical
    flip and a random transpose, so with `flip` each sample gets one of the 8 rotations
    and mirrorings of the square, uniformly (the SR recipe); the transpose needs square
    samples and is skipped for non-square batches. `crop`: a random `crop`x`crop` window
    per sample, in the input's pixels; the target's window is scaled by the size ratio
    (for SR, an LR crop of 24 takes the matching HR crop of 96, aligned to the scale).
    `color_jitter_input`: (brightness, contrast, saturation, hue) for kornia's
    ColorJitter, applied to the input side only (3-channel inputs for saturation/hue).
    `independent`: each side draws its own geometry (CycleGAN's two domains are unpaired).

    Flips, transposes and scale-aligned crops commute with an integer-scale resize, so a
    pair of different sizes (LR, HR) stays aligned. Call as `aug(a, b)` -> `(a, b)` or
    `aug(a)` -> `(a, None)`; `generator` makes it repeatable.
    """

    def __init__(
        self,
        flip: bool = True,
        rot90: bool = False,
        crop: int | None = None,
        color_jitter_input: tuple[float, float, float, float] | None = None,
        generator: "torch.Generator | None" = None,
        independent: bool = False,
    ):
        if crop is not None:
            given = crop
            try:  # numpy and torch integers too, as before; not a bool, not 8.5
                crop = operator.index(crop) if not isinstance(crop, bool) else None
            except TypeError:
                crop = int(crop) if isinstance(crop, float) and crop.is_integer() else None
            if crop is None or crop < 1:
                raise UsageError(f"crop must be a whole number of pixels >= 1 (or None), got {given!r}")
        self.flip = flip
        self.rot90 = rot90
        self.independent = independent
        self.crop = crop
        self.generator = generator
        self._jitter = None
        if color_jitter_input is not None:
            import kornia.augmentation as K

            self._jitter = K.ColorJitter(*color_jitter_input, p=1.0)

    def _coin(self, n: int, device: "torch.device") -> "torch.Tensor":
        import torch

        return (torch.rand(n, generator=self.generator) < 0.5).to(device, non_blocking=True)

    def __call__(self, a: "torch.Tensor", b: "torch.Tensor | None" = None) -> tuple["torch.Tensor", "torch.Tensor | None"]:
        for side in (a, b):  # a CxHxW image would get a flip per channel
            if side is not None and getattr(side, "ndim", None) != 4:
                raise UsageError(f"GpuAugment takes NxCxHxW tensors, got {getattr(side, 'shape', type(side).__name__)}"
                                 " (one image: x[None])")
        n = a.shape[0]
        if b is not None and b.shape[0] != n:
            raise ValueError(f"batch sizes differ: {n} vs {b.shape[0]}")
        sides = [a] if b is None else [a, b]
        if self.crop is not None:
            sides = self._random_crop(sides)
        if self.independent:
            sides = [self._geometry([x])[0] for x in sides]
        else:
            sides = self._geometry(sides)
        if self._jitter is not None:
            sides[0] = self._jitter(sides[0]).clamp(0, 1)
        return sides[0], (sides[1] if b is not None else None)

    def _geometry(self, sides: list["torch.Tensor"]) -> list["torch.Tensor"]:
        """The same random flips (and rotations) on every tensor of `sides`, per sample."""
        n, device = sides[0].shape[0], sides[0].device
        if self.flip:
            mask = self._coin(n, device)
            sides = [_where(mask, x.flip(-1), x) for x in sides]
        if self.rot90:
            mask = self._coin(n, device)
            sides = [_where(mask, x.flip(-2), x) for x in sides]
            mask = self._coin(n, device)
            if all(x.shape[-1] == x.shape[-2] for x in sides):
                sides = [_where(mask, x.transpose(-1, -2), x) for x in sides]
        return sides

    def _random_crop(self, sides: list["torch.Tensor"]) -> list["torch.Tensor"]:
        """One random window per sample; the other side's window is scaled (integer ratio)."""
        import torch

        a = sides[0]
        h, w = a.shape[-2:]
        size = int(self.crop)
        if size > h or size > w:
            raise ValueError(f"crop {size} is larger than the batch's {h}x{w}")
        ratios = []
        for x in sides:
            ry, rx = x.shape[-2] / h, x.shape[-1] / w
            if ry != rx or ry != int(ry):
                raise ValueError(f"sides must differ by one integer scale, got {tuple(a.shape)} and {tuple(x.shape)}")
            ratios.append(int(ry))
        ys = torch.randint(0, h - size + 1, (a.shape[0],), generator=self.generator).tolist()
        xs = torch.randint(0, w - size + 1, (a.shape[0],), generator=self.generator).tolist()
        out = []
        for x, r in zip(sides, ratios):
            crops = [x[i, :, y * r:(y + size) * r, xx * r:(xx + size) * r] for i, (y, xx) in enumerate(zip(ys, xs))]
            out.append(torch.stack(crops))
        return out


def device_augmentation(preset: str, independent: bool = False) -> GpuAugment | None:
    """The `--augment` preset as a GpuAugment (None for "none")."""
    if preset not in AUGMENT:
        from i2i.errors import UsageError

        raise UsageError(f"unknown augment preset {preset!r}; choose one of {', '.join(AUGMENT)}")
    return GpuAugment(**AUGMENT[preset], independent=independent) if AUGMENT[preset] else None
