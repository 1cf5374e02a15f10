"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
Training"): random, differentiable changes to every discriminator input, real and fake, in
the discriminator's loss and in the generator's (`--diffaug color,translation,cutout`).

Why: with little data a discriminator memorises the real images and stops teaching the
generator. Augmenting only the real images would teach the generator to make augmented
images; augmenting everything D sees, with ops the generator's gradient flows through,
regularises D without leaking. The ops are the paper's (its official code, policy
'color,translation,cutout'), plain torch, each with its own random parameters per sample
and per call (the G step draws new ones):

* `color`: brightness (+ U(-1/4, 1/4) of the value range), saturation (x U(0, 2) around the
  channel mean), contrast (x U(0.5, 1.5) around the image mean); no clamping, as the paper.
* `translation`: a shift of up to 1/8 of the height and width (integer pixels, each way),
  the uncovered border filled with the range's middle (0 in [-1, 1]: the paper's zero padding).
* `cutout`: a square of half the height and width (clipped at the borders) set to the
  range's middle, centred anywhere in the image.

A conditional discriminator's input (pix2pix: the condition and the image concatenated on
the channel axis) is augmented as ONE tensor, so the geometry is identical on both parts.
Colour works per channel group (`groups`, e.g. (3, 1) for photo -> sketch): groups of 3
(RGB) and 1 (gray) channels get the same per-sample brightness, saturation and contrast
(saturation is the identity on one channel), so a real pair stays consistent; groups of
other sizes (Lab's 2 ab channels) are not intensities and are left alone.

Random parameters come from this object's own CPU `torch.Generator`, seeded from the run's
seed (and the process's rank): turning it on does not shift any other random stream
(dropout, image pools, data order), and its state is saved with the pipeline's checkpoint
state, so a resumed run draws what the uninterrupted one would have.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from i2i.errors import UsageError, did_you_mean

OPS = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125   # the paper's: up to 1/8 of the image each way
CUTOUT_RATIO = 0.5          # the paper's: a square of half the image's side


def parse_policy(text: str) -> tuple[str, ...]:
    """"color,translation,cutout" -> ("color", "translation", "cutout"); "", "none" or "off"
    -> () (off, as --help shows the default). An unknown or repeated op is a one-line error."""
    if str(text).strip().lower() in ("none", "off"):
        return ()
    ops = tuple(op.strip() for op in str(text).split(",") if op.strip())
    unknown = [op for op in ops if op not in OPS]
    if unknown:
        hint = did_you_mean(unknown[0], OPS)
        raise UsageError(f"unknown diffaug op {unknown[0]!r}; {hint + ' ' if hint else ''}"
                         f"use a comma list of {', '.join(OPS)}")
    if len(set(ops)) != len(ops):
        raise UsageError(f"diffaug {text!r} names an op twice")
    return ops


class DiffAugment:
    """The ops of `policy`, applied in its order, with parameters from a generator seeded by
    `seed`. `value_range`: the images' range ((-1, 1) for CycleGAN/pix2pix, (0, 1) for SR).
    Call as `aug(x)` or `aug(x, groups)`; `state_dict()` holds the generator's state."""

    def __init__(self, policy: str | Sequence[str], seed: int = 0,
                 value_range: tuple[float, float] = (-1.0, 1.0)) -> None:
        self.ops = parse_policy(policy) if isinstance(policy, str) else parse_policy(",".join(policy))
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self.generator = torch.Generator().manual_seed(int(seed))

    def __call__(self, x: torch.Tensor, groups: Sequence[int] | None = None) -> torch.Tensor:
        return diff_augment(x, self.ops, self.generator, groups, self.value_range)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])

    def __repr__(self) -> str:
        return f"DiffAugment({','.join(self.ops)!r}, value_range={self.value_range})"


def diff_augment(x: torch.Tensor, ops: Sequence[str], generator: torch.Generator | None = None,
                 groups: Sequence[int] | None = None,
                 value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """`x` (N x C x H x W) through `ops` in order, new per-sample parameters for each op.
    Differentiable in `x`. `groups`: channel counts of the concatenated parts (default one
    group of C), for colour only; the geometry is the same on every channel."""
    groups = tuple(groups) if groups is not None else (x.shape[1],)
    if sum(groups) != x.shape[1]:
        raise ValueError(f"channel groups {groups} do not add up to the input's {x.shape[1]} channels")
    low, high = value_range
    for op in ops:
        if op == "color":
            x = color(x, generator, groups, high - low)
        elif op == "translation":
            x = translation(x, generator, fill=(low + high) / 2)
        elif op == "cutout":
            x = cutout(x, generator, fill=(low + high) / 2)
        else:
            raise ValueError(f"unknown diffaug op {op!r}")
    return x


def _uniform(x: torch.Tensor, generator: torch.Generator | None, low: float, high: float) -> torch.Tensor:
    """One U(low, high) per sample, shaped N x 1 x 1 x 1, on x's device and in its dtype."""
    u = torch.rand(x.shape[0], generator=generator) * (high - low) + low
    return u.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)


def _integers(n: int, generator: torch.Generator | None, low: int, high: int) -> torch.Tensor:
    """n integers in [low, high] (inclusive), on the CPU (where the generator is)."""
    return torch.randint(low, high + 1, (n,), generator=generator)


def color(x: torch.Tensor, generator: torch.Generator | None, groups: Sequence[int],
          span: float = 2.0) -> torch.Tensor:
    """The paper's brightness, saturation and contrast (`span`: the width of the value range;
    the paper's brightness of U(-0.5, 0.5) is for a span of 2). One parameter set per sample,
    shared by its gray and RGB channel groups; other groups unchanged."""
    brightness = _uniform(x, generator, -0.25 * span, 0.25 * span)
    saturation = _uniform(x, generator, 0.0, 2.0)
    contrast = _uniform(x, generator, 0.5, 1.5)
    parts, start = [], 0
    for size in groups:
        part = x[:, start:start + size]
        start += size
        if size in (1, 3):
            part = part + brightness
            if size == 3:
                mean = part.mean(dim=1, keepdim=True)
                part = (part - mean) * saturation + mean
            mean = part.mean(dim=(1, 2, 3), keepdim=True)
            part = (part - mean) * contrast + mean
        parts.append(part)
    return parts[0] if len(parts) == 1 else torch.cat(parts, 1)


def translation(x: torch.Tensor, generator: torch.Generator | None, ratio: float = TRANSLATION_RATIO,
                fill: float = 0.0) -> torch.Tensor:
    """Each sample shifted by whole pixels, up to `ratio` of its height and width each way
    (out[y, x] = in[y + dy, x + dx]); what comes from outside the image is `fill`.
    A pad and one slice per sample: deterministic backward on every device (a gather's
    is not on CUDA), and batches are small."""
    n, _, h, w = x.shape
    max_y, max_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = _integers(n, generator, -max_y, max_y).tolist()
    dx = _integers(n, generator, -max_x, max_x).tolist()
    padded = F.pad(x, (max_x, max_x, max_y, max_y), value=fill)
    return torch.stack([padded[i, :, max_y + dy[i]:max_y + dy[i] + h, max_x + dx[i]:max_x + dx[i] + w]
                        for i in range(n)])


def cutout(x: torch.Tensor, generator: torch.Generator | None, ratio: float = CUTOUT_RATIO,
           fill: float = 0.0) -> torch.Tensor:
    """A `ratio`-sized rectangle per sample set to `fill`, its centre uniform over the image
    (the paper's offsets; the rectangle is clipped at the borders)."""
    n, _, h, w = x.shape
    size_y, size_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = (_integers(n, generator, 0, h - size_y % 2) - size_y // 2).to(x.device)
    left = (_integers(n, generator, 0, w - size_x % 2) - size_x // 2).to(x.device)
    rows = torch.arange(h, device=x.device).view(1, h) - top.view(n, 1)
    cols = torch.arange(w, device=x.device).view(1, w) - left.view(n, 1)
    hole = ((rows >= 0) & (rows < size_y)).view(n, 1, h, 1) & ((cols >= 0) & (cols < size_x)).view(n, 1, 1, w)
    return torch.where(hole, x.new_full((), fill), x)
