"""Discriminators: PatchGAN and PixelGAN (CycleGAN / pix2pix), VGG-style (SRGAN / ESRGAN).

Keys are the references' (`model.<i>`, `net.<i>`, BasicSR's `conv<i>_<j>` / `bn<i>_<j>`), so
their checkpoints load with `strict=True`. All return raw logits (no sigmoid): the GAN losses
apply their own. Attributes: `in_channels`, `out_channels` (1), `scale` (1), `size_multiple`.
"""
from __future__ import annotations

import torch
from torch import nn

from i2i.errors import UsageError
from i2i.nn import register
from i2i.nn.init import reference_init
from i2i.nn.layers import (
    NORMS,
    activation,
    check_choice,
    check_int,
    conv_bias,
    conv_norm_act,
    down_conv,
    norm_layer,
)


class PatchDiscriminator(nn.Module):
    """PatchGAN (the reference's NLayerDiscriminator): one logit per overlapping patch.

    `n_layers` stride-2 4x4 convs (channels width * 2**n, capped at 8 * width), then two
    stride-1 4x4 convs. With n_layers=3 each output sees a 70x70 patch. The first and last convs
    always have a bias, the ones before a norm follow the reference rule. Inputs need at least
    `min_size` = 3 * 2**n_layers pixels a side (smaller ones leave its norms a single value).
    """

    def __init__(self, in_channels: int = 3, width: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("width", width, 1)
        check_int("n_layers", n_layers, 1)
        check_choice("norm", norm, NORMS)
        layers = down_conv(in_channels, width, act="lrelu")
        ch = width
        for n in range(1, n_layers):
            out = width * min(2**n, 8)
            layers += down_conv(ch, out, norm=norm, act="lrelu")
            ch = out
        out = width * min(2**n_layers, 8)
        layers += conv_norm_act(ch, out, 4, stride=1, padding=1, norm=norm, act="lrelu")
        layers += conv_norm_act(out, 1, 4, stride=1, padding=1)
        self.model = nn.Sequential(*layers)
        self.in_channels, self.out_channels, self.scale, self.size_multiple = in_channels, 1, 1, 1
        self.min_size = 3 * 2**n_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """PixelGAN (1x1 PatchGAN): one logit per pixel, for colour statistics, not structure.

    As in the reference the last conv has `bias=conv_bias(norm)`, i.e. none with batch norm.
    """

    def __init__(self, in_channels: int = 3, width: int = 64, norm: str = "batch"):
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("width", width, 1)
        check_choice("norm", norm, NORMS)
        layers = conv_norm_act(in_channels, width, 1, act="lrelu")
        layers += conv_norm_act(width, width * 2, 1, norm=norm, act="lrelu")
        layers += conv_norm_act(width * 2, 1, 1, bias=conv_bias(norm))
        self.net = nn.Sequential(*layers)
        self.in_channels, self.out_channels, self.scale, self.size_multiple = in_channels, 1, 1, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class VGGDiscriminator(nn.Module):
    """BasicSR's VGGStyleDiscriminator: a single real/fake logit for a fixed-size patch.

    Stage i: conv{i}_0 (3x3, stride 1) and conv{i}_1 (4x4, stride 2), each with BatchNorm
    bn{i}_{j} and LeakyReLU(0.2); only conv0_0 has a bias and no norm. Channels width, 2w, 4w,
    8w, 8w (and 8w for input_size 256); the final 4x4 map goes to linear1 (100) -> linear2 (1).
    Built in BasicSR's order, so a seeded build draws PyTorch's default init identically.
    """

    def __init__(self, in_channels: int = 3, width: int = 64, input_size: int = 128):
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("width", width, 1)
        check_choice("input_size", input_size, (128, 256))
        channels = [width, width * 2, width * 4, width * 8, width * 8] + ([width * 8] if input_size == 256 else [])
        self.num_stages = len(channels)
        self.conv0_0 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(width, width, 4, 2, 1, bias=False)
        self.bn0_1 = norm_layer("batch", width)
        for i in range(1, self.num_stages):
            setattr(self, f"conv{i}_0", nn.Conv2d(channels[i - 1], channels[i], 3, 1, 1, bias=False))
            setattr(self, f"bn{i}_0", norm_layer("batch", channels[i]))
            setattr(self, f"conv{i}_1", nn.Conv2d(channels[i], channels[i], 4, 2, 1, bias=False))
            setattr(self, f"bn{i}_1", norm_layer("batch", channels[i]))
        self.linear1 = nn.Linear(width * 8 * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = activation("lrelu", negative_slope=0.2)
        self.input_size = input_size
        self.in_channels, self.out_channels, self.scale = in_channels, 1, 1
        self.size_multiple = input_size  # H and W must equal input_size exactly

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise UsageError(
                f"vgg128 takes {self.input_size}x{self.input_size} patches, got {tuple(x.shape[-2:])}"
            )
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))
        for i in range(1, self.num_stages):
            feat = self.lrelu(getattr(self, f"bn{i}_0")(getattr(self, f"conv{i}_0")(feat)))
            feat = self.lrelu(getattr(self, f"bn{i}_1")(getattr(self, f"conv{i}_1")(feat)))
        feat = self.lrelu(self.linear1(feat.flatten(1)))
        return self.linear2(feat)


# ----------------------------------------------------------------------------- registry entries
# PatchGAN / PixelGAN get the CycleGAN reference's init (`init`, `init_gain`; None keeps
# PyTorch's defaults); the VGG discriminator keeps PyTorch's defaults, as BasicSR does.


@register("patchgan")
def patchgan(*, in_channels: int = 3, width: int = 64, n_layers: int = 3, norm: str = "batch",
             init: str | None = "normal", init_gain: float = 0.02) -> nn.Module:
    """Reference netD `basic` (n_layers=3) and `n_layers` (any n_layers); width = ndf."""
    return reference_init(PatchDiscriminator(in_channels, width, n_layers, norm), init, init_gain)


@register("pixelgan")
def pixelgan(*, in_channels: int = 3, width: int = 64, norm: str = "batch",
             init: str | None = "normal", init_gain: float = 0.02) -> nn.Module:
    """Reference netD `pixel`; width = ndf."""
    return reference_init(PixelDiscriminator(in_channels, width, norm), init, init_gain)


@register("vgg128")
def vgg128(*, in_channels: int = 3, width: int = 64, input_size: int = 128) -> nn.Module:
    """SRGAN / ESRGAN discriminator (BasicSR VGGStyleDiscriminator, num_feat = width)."""
    return VGGDiscriminator(in_channels, width, input_size)
