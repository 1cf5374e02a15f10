"""Generators: ResNet and U-Net (CycleGAN / pix2pix), SRResNet and RRDBNet (SRGAN / ESRGAN).

Each class reproduces its reference's state-dict keys, so reference checkpoints load with
`strict=True`; `i2i.nn.create` builds them by name. Every generator carries `in_channels`,
`out_channels`, `scale` (output size / input size) and `size_multiple` (input H and W must be
multiples of it).

Image ranges follow the references: ResNet / U-Net map [-1, 1] to [-1, 1] (Tanh); the SR nets
take and return [0, 1] (BasicSR), unclamped.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from i2i.errors import UsageError
from i2i.nn import register
from i2i.nn.init import reference_init, scaled_kaiming_
from i2i.nn.layers import (
    NORMS,
    PADDINGS,
    RRDB,
    ResidualBlockNoBN,
    ResnetBlock,
    UnetSkipBlock,
    activation,
    check_choice,
    check_int,
    conv_norm_act,
    down_conv,
    pixel_shuffle_convs,
    pixel_shuffle_up,
    shuffle_factors,
    up_conv,
)


class ResnetGenerator(nn.Module):
    """Johnson et al.'s ResNet generator as in the CycleGAN reference (keys `model.<i>`).

    c7s1 -> two stride-2 downsamples -> `num_blocks` residual blocks -> two transposed-conv
    upsamples -> c7s1 -> Tanh. H and W must be multiples of 4.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        width: int = 64,
        num_blocks: int = 9,
        norm: str = "batch",
        dropout: bool = False,
        padding_type: str = "reflect",
    ):
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("out_channels", out_channels, 1)
        check_int("width", width, 1)
        check_int("num_blocks", num_blocks, 0)
        check_choice("norm", norm, NORMS)
        check_choice("padding_type", padding_type, PADDINGS)
        # The stem and the head always reflect-pad, whatever padding_type the blocks use.
        layers = conv_norm_act(in_channels, width, 7, padding=3, pad_type="reflect", norm=norm, act="relu")
        ch = width
        for _ in range(2):
            layers += down_conv(ch, ch * 2, kernel_size=3, norm=norm, act="relu")
            ch *= 2
        layers += [ResnetBlock(ch, norm, padding_type, bool(dropout)) for _ in range(num_blocks)]
        for _ in range(2):
            layers += up_conv(ch, ch // 2, kernel_size=3, norm=norm, act="relu")
            ch //= 2
        layers += conv_norm_act(ch, out_channels, 7, padding=3, pad_type="reflect", act="tanh", bias=True)
        self.model = nn.Sequential(*layers)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.scale, self.size_multiple = 1, 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UnetGenerator(nn.Module):
    """The pix2pix U-Net: `num_downs` stride-2 levels, 1x1 bottleneck at size 2**num_downs.

    Keys nest as in the reference (`model.model.1.model.3.model...`). Channels: width, 2w, 4w,
    then 8w for every deeper level; dropout sits in the 8w levels between the innermost and
    the 4w level (as in the reference), and does not change the keys.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        width: int = 64,
        norm: str = "batch",
        dropout: bool = False,
    ):
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("out_channels", out_channels, 1)
        check_int("width", width, 1)
        check_int("num_downs", num_downs, 5)
        check_choice("norm", norm, NORMS)
        w = width
        block = UnetSkipBlock(w * 8, w * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetSkipBlock(w * 8, w * 8, submodule=block, norm=norm, dropout=bool(dropout))
        block = UnetSkipBlock(w * 4, w * 8, submodule=block, norm=norm)
        block = UnetSkipBlock(w * 2, w * 4, submodule=block, norm=norm)
        block = UnetSkipBlock(w, w * 2, submodule=block, norm=norm)
        self.model = UnetSkipBlock(out_channels, w, in_channels, block, outermost=True, norm=norm)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.scale, self.size_multiple = 1, 2**num_downs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class SRResNet(nn.Module):
    """BasicSR's MSRResNet (SRResNet without BN): keys conv_first, body.<i>.conv{1,2},
    upconv1[, upconv2], conv_hr, conv_last.

    Output = net(x) + bilinear upsample of x, so in_channels must equal out_channels.
    Scales 2 and 3 use one pixel shuffle, 4 two x2 shuffles. Constructor init is BasicSR's
    (Kaiming x 0.1, zero biases), drawn in BasicSR's order so a seeded build matches it.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 64,
                 num_blocks: int = 16, scale: int = 4):
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("width", width, 1)
        check_int("num_blocks", num_blocks, 0)
        check_choice("scale", scale, (2, 3, 4))
        if in_channels != out_channels:
            raise UsageError(
                f"srresnet adds the upsampled input to its output, so in_channels ({in_channels}) "
                f"must equal out_channels ({out_channels})"
            )
        self.conv_first = nn.Conv2d(in_channels, width, 3, 1, 1)
        self.body = nn.Sequential(*[ResidualBlockNoBN(width) for _ in range(num_blocks)])
        self.factors = shuffle_factors(scale)
        self.upconv_names = [f"upconv{i + 1}" for i in range(len(self.factors))]
        for name, conv in zip(self.upconv_names, pixel_shuffle_convs(width, scale)):
            setattr(self, name, conv)
        self.conv_hr = nn.Conv2d(width, width, 3, 1, 1)
        self.conv_last = nn.Conv2d(width, out_channels, 3, 1, 1)
        self.lrelu = activation("lrelu", negative_slope=0.1)
        upconvs = [getattr(self, n) for n in self.upconv_names]
        scaled_kaiming_([self.conv_first, upconvs[0], self.conv_hr, self.conv_last], 0.1)
        scaled_kaiming_(upconvs[1:], 0.1)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.scale, self.size_multiple = scale, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.body(self.lrelu(self.conv_first(x)))
        upconvs = [getattr(self, n) for n in self.upconv_names]
        feat = pixel_shuffle_up(feat, upconvs, self.factors, self.lrelu)
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        return out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)


class RRDBNet(nn.Module):
    """BasicSR's RRDBNet (ESRGAN): keys conv_first, body.<i>.rdb{1,2,3}.conv{1..5}, conv_body,
    conv_up1, conv_up2, conv_hr, conv_last.

    The trunk always upsamples x4 with nearest + conv twice (conv_up1, conv_up2). Scale 2 and 1
    pixel-unshuffle the input by 2 / 4 first (BasicSR; H, W must then be multiples of 2 / 4).
    Scale 3 is our extension with the same keys and shapes: one nearest x3 before conv_up1 and
    none before conv_up2. Only the dense blocks get BasicSR's scaled init; the other convs keep
    PyTorch's default, as in BasicSR.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 64,
                 num_blocks: int = 23, growth: int = 32, scale: int = 4):
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("out_channels", out_channels, 1)
        check_int("width", width, 1)
        check_int("num_blocks", num_blocks, 0)
        check_int("growth", growth, 1)
        check_choice("scale", scale, (1, 2, 3, 4))
        self.unshuffle = {1: 4, 2: 2}.get(scale, 1)
        self.up_factors = (3, 1) if scale == 3 else (2, 2)
        self.conv_first = nn.Conv2d(in_channels * self.unshuffle**2, width, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(width, growth) for _ in range(num_blocks)])
        self.conv_body = nn.Conv2d(width, width, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(width, width, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(width, width, 3, 1, 1)
        self.conv_hr = nn.Conv2d(width, width, 3, 1, 1)
        self.conv_last = nn.Conv2d(width, out_channels, 3, 1, 1)
        self.lrelu = activation("lrelu", negative_slope=0.2)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.scale, self.size_multiple = scale, self.unshuffle

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = F.pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        for conv, factor in zip((self.conv_up1, self.conv_up2), self.up_factors):
            if factor > 1:
                feat = F.interpolate(feat, scale_factor=factor, mode="nearest")
            feat = self.lrelu(conv(feat))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


# ----------------------------------------------------------------------------- registry entries
# CycleGAN / pix2pix nets get the reference's init after construction (`init`, `init_gain`;
# init=None keeps PyTorch's defaults, e.g. when weights are loaded right after). The SR nets
# initialise themselves the BasicSR way and take no init arguments.


def _resnet(num_blocks: int, in_channels: int, out_channels: int, width: int, norm: str,
            dropout: bool, padding_type: str, init: str | None, init_gain: float) -> nn.Module:
    net = ResnetGenerator(in_channels, out_channels, width, num_blocks, norm, dropout, padding_type)
    return reference_init(net, init, init_gain)


@register("resnet_9blocks")
def resnet_9blocks(*, in_channels: int = 3, out_channels: int = 3, width: int = 64,
                   norm: str = "batch", dropout: bool = False, padding_type: str = "reflect",
                   init: str | None = "normal", init_gain: float = 0.02) -> nn.Module:
    """CycleGAN's default generator (256x256 training); reference netG resnet_9blocks."""
    return _resnet(9, in_channels, out_channels, width, norm, dropout, padding_type, init, init_gain)


@register("resnet_6blocks")
def resnet_6blocks(*, in_channels: int = 3, out_channels: int = 3, width: int = 64,
                   norm: str = "batch", dropout: bool = False, padding_type: str = "reflect",
                   init: str | None = "normal", init_gain: float = 0.02) -> nn.Module:
    """The lighter ResNet generator (128x128 training); reference netG resnet_6blocks."""
    return _resnet(6, in_channels, out_channels, width, norm, dropout, padding_type, init, init_gain)


def _unet(num_downs: int, in_channels: int, out_channels: int, width: int, norm: str,
          dropout: bool, init: str | None, init_gain: float) -> nn.Module:
    net = UnetGenerator(in_channels, out_channels, num_downs, width, norm, dropout)
    return reference_init(net, init, init_gain)


@register("unet_32")
def unet_32(*, in_channels: int = 3, out_channels: int = 3, width: int = 64, norm: str = "batch",
            dropout: bool = False, init: str | None = "normal", init_gain: float = 0.02) -> nn.Module:
    """U-Net with 5 levels (1x1 bottleneck at 32x32): small tiles, tests."""
    return _unet(5, in_channels, out_channels, width, norm, dropout, init, init_gain)


@register("unet_64")
def unet_64(*, in_channels: int = 3, out_channels: int = 3, width: int = 64, norm: str = "batch",
            dropout: bool = False, init: str | None = "normal", init_gain: float = 0.02) -> nn.Module:
    """U-Net with 6 levels (1x1 bottleneck at 64x64)."""
    return _unet(6, in_channels, out_channels, width, norm, dropout, init, init_gain)


@register("unet_128")
def unet_128(*, in_channels: int = 3, out_channels: int = 3, width: int = 64, norm: str = "batch",
             dropout: bool = False, init: str | None = "normal", init_gain: float = 0.02) -> nn.Module:
    """pix2pix U-Net with 7 levels; reference netG unet_128."""
    return _unet(7, in_channels, out_channels, width, norm, dropout, init, init_gain)


@register("unet_256")
def unet_256(*, in_channels: int = 3, out_channels: int = 3, width: int = 64, norm: str = "batch",
             dropout: bool = False, init: str | None = "normal", init_gain: float = 0.02) -> nn.Module:
    """pix2pix's default U-Net with 8 levels; reference netG unet_256."""
    return _unet(8, in_channels, out_channels, width, norm, dropout, init, init_gain)


@register("srresnet")
def srresnet(*, in_channels: int = 3, out_channels: int = 3, width: int = 64,
             num_blocks: int = 16, scale: int = 4) -> nn.Module:
    """SRGAN's generator as BasicSR's MSRResNet (num_feat=width, num_block, upscale=scale)."""
    return SRResNet(in_channels, out_channels, width, num_blocks, scale)


@register("rrdbnet")
def rrdbnet(*, in_channels: int = 3, out_channels: int = 3, width: int = 64, num_blocks: int = 23,
            growth: int = 32, scale: int = 4) -> nn.Module:
    """ESRGAN's generator as BasicSR's RRDBNet (num_feat=width, num_block, num_grow_ch=growth)."""
    return RRDBNet(in_channels, out_channels, width, num_blocks, growth, scale)


class SRVGGNetCompact(nn.Module):
    """Real-ESRGAN's compact upscaler (realesr-general-x4v3, realesr-animevideov3): keys body.<i>.

    body = [conv3 in->width, act, (conv3 width->width, act) * num_blocks (Real-ESRGAN's num_conv),
    conv3 width->out*s*s], then one pixel shuffle by s, plus the nearest-upsampled input (the net
    learns the residual). No conv runs at the output size: the fastest real-world upscaler. With act "prelu"
    (Real-ESRGAN's default) each activation has `width` weights at `body.<odd i>.weight`; "relu"
    and "lrelu" (slope 0.1) hold none. Images in [0, 1], as Real-ESRGAN; PyTorch's default init.
    """

    ACTS = ("prelu", "relu", "lrelu")

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 64,
                 num_blocks: int = 16, scale: int = 4, act: str = "prelu"):
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("out_channels", out_channels, 1)
        check_int("width", width, 1)
        check_int("num_blocks", num_blocks, 0)
        check_int("scale", scale, 1)
        check_choice("act", act, self.ACTS)
        layers: list[nn.Module] = []
        for conv_in in [in_channels] + [width] * num_blocks:
            layers += [nn.Conv2d(conv_in, width, 3, 1, 1), self._activation(act, width)]
        layers.append(nn.Conv2d(width, out_channels * scale * scale, 3, 1, 1))
        self.body = nn.Sequential(*layers)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.scale, self.size_multiple = scale, 1

    @staticmethod
    def _activation(act: str, width: int) -> nn.Module:
        if act == "prelu":
            return nn.PReLU(num_parameters=width)
        return nn.ReLU(inplace=True) if act == "relu" else nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.pixel_shuffle(self.body(x), self.scale)
        return out + F.interpolate(x, scale_factor=self.scale, mode="nearest")


@register("srvggnet_compact")
def srvggnet_compact(*, in_channels: int = 3, out_channels: int = 3, width: int = 64, num_blocks: int = 16,
                     scale: int = 4, act: str = "prelu") -> nn.Module:
    """Real-ESRGAN's SRVGGNetCompact (num_feat=width, num_conv=num_blocks, upscale=scale, act_type=act)."""
    return SRVGGNetCompact(in_channels, out_channels, width, num_blocks, scale, act)
