"""Real-world degradations for super-resolution training, on whole batches on the device.

Real-ESRGAN's second-order degradation (Wang et al. 2021; the `realesrgan_x4plus` options
of BasicSR/Real-ESRGAN are the published recipe, and the defaults here): blur (isotropic
and anisotropic Gaussian, generalized Gaussian and plateau kernels of 7-21 taps, or a sinc),
a random resize, Gaussian or Poisson noise (colour or gray), JPEG; then a second round of
each; then the resize to the LR size with a final sinc, before or after the last JPEG.
HR in, LR out, both NCHW in [0, 1]; the LR is rounded to 8-bit levels like a real file.

Every sample gets its own kernels, noise level and JPEG quality; the resize factor and mode
are per batch (a batch keeps one size), as in Real-ESRGAN. All random numbers come from
torch's generator (or `generator`), so a run's seed and its checkpointed RNG state make the
degradations repeatable. Kernels and noise are plain torch (kornia has neither the
generalized Gaussian and plateau kernels nor Poisson noise); JPEG is kornia's batched codec.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

KERNELS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
MAX_KERNEL = 21  # every kernel is padded to this size


@dataclass
class BlurSettings:
    """One round's blur: which kernel family how often, and its parameter ranges."""

    kernel_prob: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)  # over KERNELS
    sinc_prob: float = 0.1
    sigma: tuple[float, float] = (0.2, 3.0)
    beta_gaussian: tuple[float, float] = (0.5, 4.0)
    beta_plateau: tuple[float, float] = (1.0, 2.0)


@dataclass
class RoundSettings:
    """One round's resize, noise and JPEG."""

    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: tuple[float, float] = (0.15, 1.5)  # a downscale draws from [low, 1], an upscale [1, high]
    # i2i's addition (published recipe: 0): how often a bilinear/bicubic downscale is antialiased,
    # as photo software (Pillow, MATLAB's imresize, browsers) resizes; without it the resize aliases
    antialias_prob: float = 0.0
    gaussian_noise_prob: float = 0.5  # else Poisson
    noise_range: tuple[float, float] = (1.0, 30.0)  # sigma, in 8-bit levels
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[float, float] = (30.0, 95.0)


@dataclass
class RealESRGANSettings:
    """The published realesrgan_x4plus degradation settings (BasicSR option names in comments)."""

    blur1: BlurSettings = field(default_factory=BlurSettings)
    round1: RoundSettings = field(default_factory=RoundSettings)
    second_blur_prob: float = 0.8
    blur2: BlurSettings = field(default_factory=lambda: BlurSettings(sigma=(0.2, 1.5)))
    round2: RoundSettings = field(default_factory=lambda: RoundSettings(
        resize_prob=(0.3, 0.4, 0.3), resize_range=(0.3, 1.2), noise_range=(1.0, 25.0),
        poisson_scale_range=(0.05, 2.5)))
    final_sinc_prob: float = 0.8
    # the HR is unsharp-masked first (BasicSR's USMSharp: 51-tap Gaussian, threshold 10 levels)
    # and the sharpened HR is both the chain's start and the training target, as Real-ESRGAN's
    # gt_usm, l1_gt_usm and percep_gt_usm (its discriminator sees the plain HR); 0: off
    usm_weight: float = 0.5
    # i2i's additions (published recipe: 1.0 and 0.0): how often the second round runs at all,
    # and the share of samples that keep their clean bicubic LR, so a model trained on the mix
    # still sharpens clean inputs instead of smoothing them as if they were noisy
    second_order_prob: float = 1.0
    clean_prob: float = 0.0


def settings_from_mapping(values: Mapping[str, Any], source: str = "degradation settings") -> RealESRGANSettings:
    """RealESRGANSettings with the fields `values` names replaced (nested for blur1, round1,
    blur2, round2; lists for ranges), every name, length and value checked: a YAML block's typo
    or a value the chain cannot use is a one-line error, not an ignored key or a crash at step 1.
    Real-ESRGAN's own flat names (`blur_sigma`, `jpeg_range2`, ...) are read as i2i's
    (`from_realesrgan_names`), so its options file's block can be pasted as it is."""
    values, _ = from_realesrgan_names(values, source)
    settings = _replaced(RealESRGANSettings(), values, source, "")
    _check(settings, source, "")
    return settings


# Real-ESRGAN's option names (train_realesrgan_x4plus.yml: flat, "2" for the second round) ->
# (i2i's group, i2i's field); kernel_list and blur_kernel_size are read by `_kernel_names`
_BLUR_NAMES = {"kernel_prob": "kernel_prob", "sinc_prob": "sinc_prob", "blur_sigma": "sigma",
               "betag_range": "beta_gaussian", "betap_range": "beta_plateau"}
_ROUND_NAMES = ("resize_prob", "resize_range", "gaussian_noise_prob", "noise_range", "poisson_scale_range",
                "gray_noise_prob", "jpeg_range")
REALESRGAN_NAMES: dict[str, tuple[str, str]] = {
    **{f"{name}{end}": (f"blur{n}", field) for name, field in _BLUR_NAMES.items() for n, end in ((1, ""), (2, "2"))},
    **{f"{name}{end}": (f"round{n}", name) for name in _ROUND_NAMES for n, end in ((1, ""), (2, "2"))},
}
_PUBLISHED_KERNEL_SIZE = 21  # Real-ESRGAN's blur_kernel_size: odd sizes 7..21 drawn, as here


def from_realesrgan_names(values: Any, source: str = "degradation settings") -> tuple[Any, list[str]]:
    """(`values` with Real-ESRGAN's flat names moved to i2i's nested ones, "blur_sigma -> blur1.sigma"
    for each), so a user's Real-ESRGAN YAML block reads as it is. A name given both ways is one
    line; i2i's own names pass through unchanged (a mapping of them comes back as it was)."""
    from i2i.errors import UsageError

    if not isinstance(values, Mapping):
        return values, []  # `_replaced` says what is wrong with it
    out = {name: (dict(value) if isinstance(value, Mapping) else value) for name, value in values.items()
           if name not in REALESRGAN_NAMES and _kernel_option(name) is None}
    renamed: list[str] = []
    for name, value in values.items():
        if name not in REALESRGAN_NAMES:
            continue
        group, field = REALESRGAN_NAMES[name]
        nested = out.setdefault(group, {})
        if not isinstance(nested, dict):
            raise UsageError(f"{source}: {group} must be a mapping of name: value, got {nested!r}")
        if field in nested:
            raise UsageError(f"{source}: {name} (Real-ESRGAN's name) and {group}.{field} (i2i's) are the same "
                             "setting; give one")
        nested[field] = value
        renamed.append(f"{name} -> {group}.{field}")
    renamed += _kernel_names(values, out, source)
    return out, renamed


def _kernel_option(name: Any) -> tuple[str, str] | None:
    """("kernel_list" or "blur_kernel_size", "blur1" or "blur2") for those Real-ESRGAN names, else None."""
    for option in ("kernel_list", "blur_kernel_size"):
        for end, group in (("", "blur1"), ("2", "blur2")):
            if name == option + end:
                return option, group
    return None


def _kernel_names(values: Mapping[str, Any], out: dict, source: str) -> list[str]:
    """Real-ESRGAN's kernel_list (the kernel_prob's order) folded into i2i's kernel_prob over
    KERNELS; its blur_kernel_size taken only at the published 21 (i2i draws 7..21 taps)."""
    from i2i.errors import UsageError

    renamed = []
    for name, value in values.items():
        option = _kernel_option(name)
        if option is None:
            continue
        kind, group = option
        if kind == "blur_kernel_size":
            if _number(value) != _PUBLISHED_KERNEL_SIZE:
                raise UsageError(f"{source}: {name} {value!r}: i2i's kernels are {_PUBLISHED_KERNEL_SIZE} taps at most "
                                 f"(odd sizes 7..21 drawn, the published {name}: {_PUBLISHED_KERNEL_SIZE}); "
                                 "other sizes are not supported")
            renamed.append(f"{name} {_PUBLISHED_KERNEL_SIZE}: i2i's own")
            continue
        if not isinstance(value, (list, tuple)) or any(kernel not in KERNELS for kernel in value):
            raise UsageError(f"{source}: {name} must be a list of kernel names ({', '.join(KERNELS)}), got {value!r}")
        blur = out.setdefault(group, {})
        probs = blur.get("kernel_prob") if isinstance(blur, dict) else None
        if probs is None:
            if list(value) != list(KERNELS):
                raise UsageError(f"{source}: {name} in another order than {', '.join(KERNELS)} needs its kernel_prob "
                                 f"beside it")
            continue
        if not isinstance(probs, (list, tuple)) or len(probs) != len(value):
            raise UsageError(f"{source}: {name} names {len(value)} kernels but its kernel_prob is {probs!r}")
        numbers = [_number(p) for p in probs]
        if any(p is None for p in numbers):
            raise UsageError(f"{source}: {group}.kernel_prob must be numbers, got {probs!r}")
        blur["kernel_prob"] = [sum(p for k, p in zip(value, numbers) if k == kernel) for kernel in KERNELS]
        renamed.append(f"{name} + its kernel_prob -> {group}.kernel_prob (in i2i's order)")
    return renamed


def _number(value: Any) -> float | None:
    """A finite float, from a number or a numeric string (PyYAML reads 1e6, without a dot, as a
    string, as the training config's `lr: 2e-4`); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _replaced(settings: Any, values: Any, source: str, prefix: str) -> Any:
    """`settings` with `values` replaced: names, nesting, list lengths and non-negative numbers."""
    from i2i.errors import UsageError, did_you_mean

    if not isinstance(values, Mapping):
        what = f"{source}: {prefix[:-1]}" if prefix else source
        raise UsageError(f"{what} must be a mapping of name: value, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(settings)}
    changes = {}
    for name, value in values.items():
        here = f"{source}: {prefix}{name}"
        if name not in fields:
            theirs = [] if prefix else [*REALESRGAN_NAMES, "kernel_list", "blur_kernel_size"]
            hint = did_you_mean(str(name), [*fields, *theirs])
            also = "; Real-ESRGAN's flat names too, e.g. blur_sigma, jpeg_range2" if theirs else ""
            raise UsageError(f"{source}: unknown setting {prefix + str(name)!r} "
                             f"({hint + ' ' if hint else ''}known: {', '.join(fields)}{also})")
        current = getattr(settings, name)
        if dataclasses.is_dataclass(current):
            changes[name] = _replaced(current, value, source, f"{prefix}{name}.")
        elif isinstance(current, tuple):
            numbers = [_number(v) for v in value] if isinstance(value, (list, tuple)) else []
            if len(numbers) != len(current) or any(v is None or v < 0 for v in numbers):
                raise UsageError(f"{here} must be a list of {len(current)} non-negative numbers, got {value!r}")
            if len(current) == 2 and numbers[0] > numbers[1]:
                raise UsageError(f"{here} must be [low, high], got {value!r}")
            changes[name] = tuple(numbers)
        else:
            number = _number(value)
            if number is None or number < 0:
                raise UsageError(f"{here} must be a non-negative number, got {value!r}")
            if name.endswith("_prob") and number > 1:
                raise UsageError(f"{here} is a probability, got {value!r}")
            changes[name] = number
    return dataclasses.replace(settings, **changes)


# What each range's ends must satisfy for the chain to run and mean something (names shared by
# blur1/blur2 and round1/round2); non-negative is checked for every number already.
_LIMITS = {
    # a Gaussian narrower than 0.01 pixel is the identity, one wider than 100 a box on the
    # 7..21 taps; far outside (1e-160, 1e300) the covariance is singular or overflows
    "sigma": (lambda v: 0.01 <= v <= 100, "must lie within 0.01..100 (kernel widths in pixels)"),
    "beta_gaussian": (lambda v: v > 0, "must be > 0 (kernel shape exponents)"),
    "beta_plateau": (lambda v: v > 0, "must be > 0 (kernel shape exponents)"),
    # 0 would be an empty image; the published recipe goes to 1.5, and far above only costs memory
    "resize_range": (lambda v: 0 < v <= 4, "must be > 0 and at most 4 (resize factors)"),
    # a sigma above the whole 8-bit range leaves only noise
    "noise_range": (lambda v: v <= 255, "must lie within 0..255 (noise sigmas in 8-bit levels)"),
    "jpeg_range": (lambda v: 1 <= v <= 100, "must lie within 1..100 (JPEG qualities)"),
}
# Lists of the probabilities of one choice (as BasicSR's kernel_prob and resize_prob)
_CHOICES = {"kernel_prob": ", ".join(KERNELS), "resize_prob": "up, down, keep"}


def _check(settings: Any, source: str, prefix: str) -> None:
    """One line for a value `_replaced` lets through but the chain cannot use (checked on the
    finished settings, so each rule is in one place and the defaults obey it too)."""
    from i2i.errors import UsageError

    for f in dataclasses.fields(settings):
        value, here = getattr(settings, f.name), f"{source}: {prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            _check(value, source, f"{prefix}{f.name}.")
        elif f.name in _LIMITS and not all(_LIMITS[f.name][0](v) for v in value):
            raise UsageError(f"{here} {_LIMITS[f.name][1]}, got {_shown(value)}")
        elif f.name in _CHOICES and abs(sum(value) - 1) > 1e-3:
            raise UsageError(f"{here} must be probabilities that sum to 1 ({_CHOICES[f.name]}), "
                             f"got {_shown(value)} (sum {sum(value):g})")


def _shown(values: tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


# ----------------------------------------------------------------------------- kernels


def _grid(size: int) -> torch.Tensor:
    """size x size x 2 coordinates centred on the middle tap."""
    ax = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    return torch.stack([xx, yy], dim=-1)


def quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> torch.Tensor:
    """x^T S^-1 x on the kernel grid, S = R diag(sigma_x^2, sigma_y^2) R^T rotated by theta."""
    c, s = math.cos(theta), math.sin(theta)
    rotation = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    cov = rotation @ torch.diag(torch.tensor([sigma_x**2, sigma_y**2], dtype=torch.float64)) @ rotation.T
    grid = _grid(size)
    return torch.einsum("...i,ij,...j->...", grid, torch.linalg.inv(cov), grid)


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float = 1.0) -> torch.Tensor:
    """exp(-(q/2)**beta), normalised (beta 1: a Gaussian; otherwise a generalized Gaussian)."""
    kernel = torch.exp(-0.5 * quadratic_form(size, sigma_x, sigma_y, theta) ** beta)
    return kernel / kernel.sum()


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> torch.Tensor:
    """1 / (1 + q**beta), normalised: a flat top with heavy tails."""
    kernel = 1.0 / (quadratic_form(size, sigma_x, sigma_y, theta) ** beta + 1.0)
    return kernel / kernel.sum()


def sinc_kernel(size: int, cutoff: float) -> torch.Tensor:
    """The ideal circular low-pass filter with cutoff frequency `cutoff` (radians per pixel),
    cut to size x size taps and normalised (ringing and overshoot, as real resamplers)."""
    r = _grid(size).norm(dim=-1)
    safe = torch.where(r == 0, torch.ones_like(r), r)
    kernel = cutoff * torch.special.bessel_j1(cutoff * safe) / (2 * math.pi * safe)
    kernel = torch.where(r == 0, torch.full_like(r, cutoff**2 / (4 * math.pi)), kernel)
    return kernel / kernel.sum()


def _pad(kernel: torch.Tensor) -> torch.Tensor:
    pad = (MAX_KERNEL - kernel.shape[-1]) // 2
    return F.pad(kernel, (pad, pad, pad, pad))


class _Draw:
    """Random numbers from torch's generator (or `generator`), as Python floats."""

    def __init__(self, generator: torch.Generator | None) -> None:
        self.generator = generator

    def uniform(self, lo: float = 0.0, hi: float = 1.0) -> float:
        return lo + (hi - lo) * torch.rand((), generator=self.generator, dtype=torch.float64).item()

    def choice(self, weights: tuple[float, ...]) -> int:
        return int(torch.multinomial(torch.tensor(weights, dtype=torch.float64), 1, generator=self.generator))

    def kernel_size(self) -> int:
        return 7 + 2 * int(torch.randint(0, 8, (), generator=self.generator))  # 7, 9, ..., 21

    def beta(self, lo: float, hi: float) -> float:
        """Half the time below 1, half above (for the generalized Gaussian); plateau ranges start at 1."""
        return self.uniform(lo, 1.0) if lo < 1.0 and self.uniform() < 0.5 else self.uniform(max(lo, 1.0), hi)


def random_blur_kernel(settings: BlurSettings, draw: _Draw) -> torch.Tensor:
    """One MAX_KERNEL x MAX_KERNEL kernel of a random family, size and shape."""
    size = draw.kernel_size()
    if draw.uniform() < settings.sinc_prob:
        return _pad(sinc_kernel(size, draw.uniform(math.pi / 3 if size < 13 else math.pi / 5, math.pi)))
    family = KERNELS[draw.choice(settings.kernel_prob)]
    sigma_x = draw.uniform(*settings.sigma)
    if family.endswith("iso") and not family.endswith("aniso"):
        sigma_y, theta = sigma_x, 0.0
    else:
        sigma_y, theta = draw.uniform(*settings.sigma), draw.uniform(-math.pi, math.pi)
    if family.startswith("generalized"):
        kernel = gaussian_kernel(size, sigma_x, sigma_y, theta, draw.beta(*settings.beta_gaussian))
    elif family.startswith("plateau"):
        kernel = plateau_kernel(size, sigma_x, sigma_y, theta, draw.beta(*settings.beta_plateau))
    else:
        kernel = gaussian_kernel(size, sigma_x, sigma_y, theta)
    return _pad(kernel)


def final_sinc_kernel(probability: float, draw: _Draw) -> torch.Tensor:
    """A sinc with probability `probability`, else the identity."""
    if draw.uniform() < probability:
        return _pad(sinc_kernel(draw.kernel_size(), draw.uniform(math.pi / 3, math.pi)))
    pulse = torch.zeros(MAX_KERNEL, MAX_KERNEL, dtype=torch.float64)
    pulse[MAX_KERNEL // 2, MAX_KERNEL // 2] = 1.0
    return pulse


# ----------------------------------------------------------------------------- batch operations


def filter2d(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Each sample of N x C x H x W convolved with its own K x K kernel (N x K x K), reflect borders."""
    n, c, h, w = x.shape
    k = kernels.shape[-1]
    padded = F.pad(x, (k // 2,) * 4, mode="reflect") if min(h, w) > k // 2 else F.pad(x, (k // 2,) * 4, mode="replicate")
    weight = kernels.to(x).repeat_interleave(c, dim=0).unsqueeze(1)  # (N*C) x 1 x K x K
    out = F.conv2d(padded.reshape(1, n * c, *padded.shape[-2:]), weight, groups=n * c)
    return out.reshape(n, c, h, w)


def gaussian_noise(x: torch.Tensor, sigma: torch.Tensor, gray: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Add N(0, sigma) noise per sample (sigma: N, in [0, 1] units); `gray` (N, bool) samples get
    the same noise on every channel."""
    n = x.shape[0]
    colour = torch.randn(x.shape, generator=generator).to(x)
    mono = torch.randn((n, 1, *x.shape[2:]), generator=generator).to(x).expand_as(x)
    noise = torch.where(gray.view(n, 1, 1, 1).to(x.device), mono, colour)
    return x + noise * sigma.view(n, 1, 1, 1).to(x)


def poisson_noise(x: torch.Tensor, scale: torch.Tensor, gray: torch.Tensor,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Add Poisson (shot) noise per sample, BasicSR's way: the image quantised to 8 bits, counts
    of 2**ceil(log2(distinct levels)), the noise scaled by `scale` (N); `gray` samples get it
    from their luminance, on every channel."""
    from i2i.data.color import luminance

    n = x.shape[0]
    quantised = (x * 255.0).round().clamp(0, 255) / 255.0
    gray = gray.view(n, 1, 1, 1).to(x.device)
    if x.shape[1] == 3:  # gray samples: the noise of their luminance, on every channel
        quantised = torch.where(gray, luminance(quantised).expand_as(quantised), quantised)
    used = torch.zeros(n, 256, device=x.device).scatter_(1, (quantised * 255).round().long().view(n, -1), 1.0)
    levels = 2.0 ** torch.ceil(torch.log2(used.sum(1).clamp(min=2))).view(n, 1, 1, 1)
    source = torch.where(gray, quantised[:, :1].expand_as(quantised), quantised)
    counts = torch.poisson((source * levels).cpu().double(), generator=generator)
    noise = counts.to(x) / levels - source
    if x.shape[1] == 3:
        noise = torch.where(gray, noise[:, :1].expand_as(noise), noise)
    return x + noise * scale.view(n, 1, 1, 1).to(x)


def jpeg(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """JPEG-compress each sample at its own quality (N), with kornia's batched codec. A gray
    batch is coded as gray RGB (no colour to lose) and comes back as its luminance: kornia's
    codec takes 3 channels only."""
    from kornia.enhance import jpeg_codec_differentiable

    from i2i.data.color import luminance

    if x.shape[1] == 1:
        return luminance(jpeg_codec_differentiable(x.clamp(0, 1).expand(-1, 3, -1, -1), quality.to(x)))
    return jpeg_codec_differentiable(x.clamp(0, 1), quality.to(x))


USM_RADIUS, USM_THRESHOLD = 51, 10.0  # BasicSR's USMSharp(radius=50): an odd 51 taps; 8-bit levels


def unsharp_mask(x: torch.Tensor, weight: float) -> torch.Tensor:
    """BasicSR's USMSharp on N x C x H x W in [0, 1]: `x + weight * (x - blur)`, clipped, kept
    only where the detail is above the threshold (a soft mask, blurred the same way), so flat
    areas and their noise are left alone. The blur is cv2.getGaussianKernel(51, 0): sigma 8."""
    residual = x - _usm_blur(x)
    soft = _usm_blur((residual.abs() * 255 > USM_THRESHOLD).to(x))
    sharp = (x + weight * residual).clamp(0, 1)
    return soft * sharp + (1 - soft) * x


def _usm_blur(x: torch.Tensor) -> torch.Tensor:
    """`filter2d` with USMSharp's Gaussian (reflect borders), as two matrix products: the kernel
    is an outer product and reflect padding pads each axis alone, so the sums are the same, at
    a fifth of the time of two 1-D convolutions (51 taps are many for a convolution)."""
    sigma = 0.3 * ((USM_RADIUS - 1) * 0.5 - 1) + 0.8  # OpenCV's sigma for a size with sigma 0
    taps = torch.exp(-(torch.arange(USM_RADIUS, dtype=torch.float64) - USM_RADIUS // 2) ** 2 / (2 * sigma**2))
    taps = (taps / taps.sum()).to(x)
    n, c, h, w = x.shape
    half = USM_RADIUS // 2
    mode = "reflect" if min(h, w) > half else "replicate"
    padded = F.pad(x.reshape(n * c, 1, h, w), (half,) * 4, mode=mode).squeeze(1)

    def band(size: int) -> torch.Tensor:  # (size + 50) x size: column j holds the taps from row j
        offset = torch.arange(size + 2 * half, device=x.device)[:, None] - torch.arange(size, device=x.device)
        inside = (offset >= 0) & (offset < USM_RADIUS)
        return torch.where(inside, taps[offset.clamp(0, USM_RADIUS - 1)], taps.new_zeros(()))

    return (band(h).T @ (padded @ band(w))).reshape(n, c, h, w)


def _check_batch(hr: Any, scale: Any) -> None:
    """One UsageError line for a batch the chain would turn into a wrong LR without a word: not NxCxHxW
    floats in [0, 1] of 1 or 3 channels (uint8 or 0..255 would come out white), or sides that
    are not multiples of the integer `scale` (the LR would not line up with the HR)."""
    from i2i.errors import UsageError

    if isinstance(scale, bool) or not isinstance(scale, numbers.Integral) or scale < 1:
        raise UsageError(f"scale must be an integer >= 1, got {scale!r}")
    if not isinstance(hr, torch.Tensor) or hr.ndim != 4 or hr.shape[1] not in (1, 3):
        shape = tuple(hr.shape) if isinstance(hr, torch.Tensor) else type(hr).__name__
        raise UsageError(f"the degradation takes NxCxHxW tensors of 1 or 3 channels, got {shape} "
                         "(one image: x[None]; RGBA: degrade x[:, :3] and resize the alpha)")
    if not hr.is_floating_point():
        raise UsageError(f"the degradation takes floats in [0, 1], got {hr.dtype} (uint8: x.float() / 255)")
    if hr.device.type == "cpu" and hr.numel():  # on a GPU this check would cost a sync per training step
        lo, hi = torch.aminmax(hr)
        if not (-1e-3 <= float(lo) and float(hi) <= 1 + 1e-3):  # rounding of a sharpened HR passes
            raise UsageError(f"the degradation takes floats in [0, 1], got values in [{float(lo):.4g}, {float(hi):.4g}]")
    if hr.shape[-2] % scale or hr.shape[-1] % scale:
        raise UsageError(f"HR sides {hr.shape[-1]}x{hr.shape[-2]} are not multiples of the scale {scale}: crop them "
                         "first, or the LR does not line up with the HR")


class RealESRGANDegradation:
    """`degrade(hr, scale)`: the LR of a batch of HR patches, as Real-ESRGAN synthesises it."""

    def __init__(self, settings: RealESRGANSettings | None = None, generator: torch.Generator | None = None):
        self.settings = settings or RealESRGANSettings()
        self.generator = generator
        self.draw = _Draw(generator)

    @torch.no_grad()
    def sharpen(self, hr: torch.Tensor) -> torch.Tensor:
        """The HR the chain starts from and the network learns to make (`usm_weight`)."""
        weight = self.settings.usm_weight
        return unsharp_mask(hr.float(), weight).to(hr.dtype) if weight > 0 else hr

    @torch.no_grad()
    def __call__(self, hr: torch.Tensor, scale: int, clean: torch.Tensor | None = None) -> torch.Tensor:
        """The LR of `hr` (already `sharpen`ed: the caller keeps it as the target).
        `clean`: the batch's bicubic LR, kept for a `clean_prob` share of the samples; made from
        the plain HR, so with usm_weight those samples learn to sharpen clean images too."""
        _check_batch(hr, scale)
        s, n = self.settings, hr.shape[0]
        height, width = hr.shape[-2] // scale, hr.shape[-1] // scale
        out = filter2d(hr.float(), self._kernels(lambda: random_blur_kernel(s.blur1, self.draw), n))
        out = self._round(out, s.round1, size=None)
        if s.second_order_prob >= 1 or self.draw.uniform() < s.second_order_prob:
            if self.draw.uniform() < s.second_blur_prob:
                out = filter2d(out, self._kernels(lambda: random_blur_kernel(s.blur2, self.draw), n))
            out = self._round(out, s.round2, size=(height, width))
        sinc = self._kernels(lambda: final_sinc_kernel(s.final_sinc_prob, self.draw), n)
        quality = self._uniform(n, *s.round2.jpeg_range)
        antialias = self._antialias(s.round2)
        if self.draw.uniform() < 0.5:  # [resize back + sinc] then JPEG, or the other way round
            out = jpeg(filter2d(self._resize(out, (height, width), antialias), sinc), quality)
        else:
            out = filter2d(self._resize(jpeg(out, quality), (height, width), antialias), sinc)
        out = ((out * 255.0).round().clamp(0, 255) / 255.0).to(hr.dtype)
        if s.clean_prob > 0:
            if clean is None or clean.shape != out.shape:
                raise ValueError(f"clean_prob {s.clean_prob} needs the clean LR batch of shape {tuple(out.shape)}")
            keep = (torch.rand(n, generator=self.generator) < s.clean_prob).view(n, 1, 1, 1).to(out.device)
            out = torch.where(keep, clean.to(out), out)
        return out

    def _round(self, x: torch.Tensor, r: RoundSettings, size: tuple[int, int] | None) -> torch.Tensor:
        """Random resize (relative to the input, or to `size` for the second round), noise, JPEG."""
        kind = self.draw.choice(r.resize_prob)
        factor = (self.draw.uniform(1.0, r.resize_range[1]) if kind == 0 else
                  self.draw.uniform(r.resize_range[0], 1.0) if kind == 1 else 1.0)
        base = size or x.shape[-2:]
        x = self._resize(x, (max(1, int(base[0] * factor)), max(1, int(base[1] * factor))), self._antialias(r))
        n = x.shape[0]
        gray = self._uniform(n) < r.gray_noise_prob
        if self.draw.uniform() < r.gaussian_noise_prob:
            x = gaussian_noise(x, self._uniform(n, *r.noise_range) / 255.0, gray, self.generator)
        else:
            x = poisson_noise(x, self._uniform(n, *r.poisson_scale_range), gray, self.generator)
        return jpeg(x, self._uniform(n, *r.jpeg_range))

    def _antialias(self, r: RoundSettings) -> bool:
        # no draw at 0 or 1, so the published recipe's random stream is what it was
        return r.antialias_prob >= 1 or (r.antialias_prob > 0 and self.draw.uniform() < r.antialias_prob)

    def _resize(self, x: torch.Tensor, size: tuple[int, int], antialias: bool = False) -> torch.Tensor:
        mode = ("area", "bilinear", "bicubic")[int(torch.randint(0, 3, (), generator=self.generator))]
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        if mode == "area":
            return F.interpolate(x, size=size, mode=mode)
        shrinks = size[0] < x.shape[-2] or size[1] < x.shape[-1]
        return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=antialias and shrinks)

    def _kernels(self, make, n: int) -> torch.Tensor:
        return torch.stack([make() for _ in range(n)]).float()

    def _uniform(self, n: int, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=self.generator)
