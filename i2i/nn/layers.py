"""The building blocks every i2i network is assembled from, defined once.

Two families of checkpoints must load with `strict=True`, so the blocks reproduce their
module layouts exactly:

- junyanz pytorch-CycleGAN-and-pix2pix: flat `nn.Sequential` stacks whose integer indices are
  the state-dict keys. The helpers therefore return *lists* of modules (`conv_norm_act`,
  `down_conv`, `up_conv`) that a network splices into its own `Sequential`; an extra or missing
  module would shift every later key.
- BasicSR: named attributes (`conv1`, `rdb2`, `upconv1`, ...), see `ResidualBlockNoBN`,
  `ResidualDenseBlock`, `RRDB` and `pixel_shuffle_convs`.

Two conventions of the CycleGAN reference matter for the keys:

- `norm=None` means "no norm slot at all"; `norm="none"` means the reference's `Identity()`
  placeholder, which takes a slot (and so an index) but has no parameters.
- A conv followed by a norm has a bias only for instance norm (`conv_bias`): batch norm's shift
  makes it redundant, and the reference drops it for `"none"` too.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from i2i.errors import UsageError, did_you_mean
from i2i.nn.init import scaled_kaiming_

NORMS = ("batch", "instance", "none")
PADDINGS = ("reflect", "replicate", "zero")
ACTIVATIONS = ("relu", "lrelu", "tanh", "sigmoid")


# ----------------------------------------------------------------------------- argument checks


def check_choice(what: str, value: object, choices: Sequence[object]) -> None:
    """Raise a one-line UsageError when `value` is not one of `choices`."""
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        hint = did_you_mean(value, [str(c) for c in choices]) if isinstance(value, str) else ""
        raise UsageError(f"{what} must be one of {valid}, got {value!r}" + (f" ({hint})" if hint else ""))


def check_int(what: str, value: object, minimum: int) -> None:
    """Raise a one-line UsageError unless `value` is an int >= `minimum` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{what} must be an integer >= {minimum}, got {value!r}")


# ----------------------------------------------------------------------------- factories


def norm_layer(kind: str, channels: int) -> nn.Module:
    """The reference's norms: BatchNorm with running stats, InstanceNorm without affine or stats."""
    check_choice("norm", kind, NORMS)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def conv_bias(norm: str | None) -> bool:
    """Whether a conv gets a bias: always without a following norm, else only for instance norm."""
    return True if norm is None else norm == "instance"


def activation(kind: str, negative_slope: float = 0.2) -> nn.Module:
    """Activations as the references build them (in-place where they are in-place)."""
    check_choice("activation", kind, ACTIVATIONS)
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "lrelu":
        return nn.LeakyReLU(negative_slope, inplace=True)
    if kind == "tanh":
        return nn.Tanh()
    return nn.Sigmoid()


def padding_layers(kind: str, amount: int) -> tuple[list[nn.Module], int]:
    """(pad modules to put before a conv, the conv's own zero padding) for a padding kind."""
    check_choice("padding_type", kind, PADDINGS)
    if amount == 0 or kind == "zero":
        return [], amount
    pad = nn.ReflectionPad2d(amount) if kind == "reflect" else nn.ReplicationPad2d(amount)
    return [pad], 0


# ----------------------------------------------------------------------------- conv stacks


def conv_norm_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    *,
    norm: str | None = None,
    act: str | nn.Module | None = None,
    bias: bool | None = None,
    pad_type: str = "zero",
    transpose: bool = False,
    output_padding: int = 0,
    act_first: bool = False,
) -> list[nn.Module]:
    """[pad?, conv, norm?, act?] as a list to splice into a Sequential (keys are indices).

    `act_first=True` gives [act, conv, norm?] instead: the U-Net's pre-activation order.
    `bias=None` applies the reference rule (`conv_bias`).
    """
    pads, conv_padding = padding_layers(pad_type, padding)
    if transpose and pads:
        raise ValueError("a transposed conv only takes zero padding")
    if bias is None:
        bias = conv_bias(norm)
    if transpose:
        conv: nn.Module = nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size, stride, conv_padding, output_padding, bias=bias
        )
    else:
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, conv_padding, bias=bias)
    norms = [norm_layer(norm, out_channels)] if norm is not None else []
    acts = [] if act is None else [activation(act) if isinstance(act, str) else act]
    if act_first:
        return acts + pads + [conv] + norms
    return pads + [conv] + norms + acts


def down_conv(in_channels: int, out_channels: int, kernel_size: int = 4, **kwargs) -> list[nn.Module]:
    """A stride-2 conv (padding 1) that halves an even H, W: k3 in the ResNet, k4 elsewhere."""
    return conv_norm_act(in_channels, out_channels, kernel_size, stride=2, padding=1, **kwargs)


def up_conv(in_channels: int, out_channels: int, kernel_size: int = 4, **kwargs) -> list[nn.Module]:
    """A stride-2 transposed conv (padding 1) that exactly doubles H, W for k3 and k4."""
    return conv_norm_act(
        in_channels, out_channels, kernel_size, stride=2, padding=1,
        transpose=True, output_padding=kernel_size % 2, **kwargs,
    )


# ----------------------------------------------------------------------------- residual blocks


class ResnetBlock(nn.Module):
    """x + [pad, conv3, norm, ReLU, (Dropout), pad, conv3, norm](x) — the CycleGAN ResNet block.

    Keys are `conv_block.<i>`: with dropout the second conv/norm move from 5/6 to 6/7, and with
    `padding_type="zero"` there are no pad modules, exactly as in the reference.
    """

    def __init__(self, dim: int, norm: str = "batch", padding_type: str = "reflect", dropout: bool = False):
        super().__init__()
        layers = conv_norm_act(dim, dim, 3, padding=1, pad_type=padding_type, norm=norm, act="relu")
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += conv_norm_act(dim, dim, 3, padding=1, pad_type=padding_type, norm=norm)
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResidualBlockNoBN(nn.Module):
    """x + conv2(ReLU(conv1(x))) without norm (EDSR / MSRResNet body); BasicSR keys conv1, conv2."""

    def __init__(self, width: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, 1, 1)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)
        scaled_kaiming_([self.conv1, self.conv2], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x)))


class ResidualDenseBlock(nn.Module):
    """ESRGAN's dense block: 5 convs, each sees the concat (x, x1, ..., xk); residual * 0.2."""

    def __init__(self, width: int = 64, growth: int = 32):
        super().__init__()
        for i in range(4):
            setattr(self, f"conv{i + 1}", nn.Conv2d(width + i * growth, growth, 3, 1, 1))
        self.conv5 = nn.Conv2d(width + 4 * growth, width, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)
        scaled_kaiming_([self.conv1, self.conv2, self.conv3, self.conv4, self.conv5], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(self.lrelu(conv(torch.cat(feats, 1))))
        return self.conv5(torch.cat(feats, 1)) * 0.2 + x


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks, outer residual scaled by 0.2."""

    def __init__(self, width: int = 64, growth: int = 32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(width, growth)
        self.rdb2 = ResidualDenseBlock(width, growth)
        self.rdb3 = ResidualDenseBlock(width, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


# ----------------------------------------------------------------------------- U-Net level


class UnetSkipBlock(nn.Module):
    """One U-Net level: x -> cat(x, up(sub(down(x)))), keys `model.<i>` nested via `model.1`/`.3`.

    Layouts (the reference's, which fix the indices):
      outermost: [down-conv, sub, ReLU, up-convT (biased), Tanh]          (no skip concat)
      innermost: [LReLU, down-conv, ReLU, up-convT, norm]                 (no down norm)
      middle:    [LReLU, down-conv, norm, sub, ReLU, up-convT, norm, (Dropout)]
    The leading LeakyReLU is in-place, as in the reference, so it also rewrites `x` and the skip
    connection carries lrelu(x), not x. Trained checkpoints expect exactly that.
    """

    def __init__(
        self,
        outer_channels: int,
        inner_channels: int,
        in_channels: int | None = None,
        submodule: nn.Module | None = None,
        *,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        dropout: bool = False,
    ):
        super().__init__()
        self.outermost = outermost
        in_channels = outer_channels if in_channels is None else in_channels
        bias = conv_bias(norm)
        if outermost:
            layers = down_conv(in_channels, inner_channels, bias=bias)
            layers.append(submodule)
            layers += up_conv(inner_channels * 2, outer_channels, act="relu", act_first=True, bias=True)
            layers.append(nn.Tanh())
        elif innermost:
            layers = down_conv(in_channels, inner_channels, act="lrelu", act_first=True, bias=bias)
            layers += up_conv(inner_channels, outer_channels, norm=norm, act="relu", act_first=True)
        else:
            layers = down_conv(in_channels, inner_channels, norm=norm, act="lrelu", act_first=True)
            layers.append(submodule)
            layers += up_conv(inner_channels * 2, outer_channels, norm=norm, act="relu", act_first=True)
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


# ----------------------------------------------------------------------------- SR upsampling


def shuffle_factors(scale: int) -> list[int]:
    """Pixel-shuffle steps for an SR factor: powers of two as x2 steps, 3 as one x3 step."""
    if scale == 3:
        return [3]
    if scale >= 2 and scale & (scale - 1) == 0:
        return [2] * (scale.bit_length() - 1)
    raise UsageError(f"pixel-shuffle upsampling supports scale 3 or a power of two, got {scale!r}")


def pixel_shuffle_convs(width: int, scale: int) -> list[nn.Conv2d]:
    """The convs before each pixel shuffle (width -> width * f * f): BasicSR's upconv1, upconv2."""
    return [nn.Conv2d(width, width * f * f, 3, 1, 1) for f in shuffle_factors(scale)]


def pixel_shuffle_up(
    x: torch.Tensor, convs: Iterable[nn.Module], factors: Iterable[int], act: nn.Module
) -> torch.Tensor:
    """act(pixel_shuffle(conv(x))) for each step: the sub-pixel upsampler of SRResNet."""
    for conv, f in zip(convs, factors):
        x = act(F.pixel_shuffle(conv(x), f))
    return x
