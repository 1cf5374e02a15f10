"""The model call: a generator run as its model file's contract (`i2i.spec.ModelSpec`) says,
on NxCxHxW tensors in [0, 1]: value range and channels -> pad -> run (whole or tiled) -> crop.

Sizes. Any input size works, 1x1 included: the image is padded at the bottom/right to the
network's size requirements (reflect, or replicate where the image is too small to reflect)
and the output cropped back, so it has the input's size times the network's `scale`.

Channels. Gray input to a 3-channel model is replicated to RGB; RGB input to a 1-channel
model becomes its BT.601 luminance. Gray input to a super-resolution model (the spec's
`keeps_gray`) gives gray output, as Real-ESRGAN does (SR keeps colours); other models give
what they produce (a gray sketch into a sketch->photo model comes out in colour). A Lab model
takes the input's lightness and returns it with the predicted ab.

Test mode ("train" or "eval"; by default the spec's `test_mode`): "train" runs the generator
as the pix2pix paper and the reference's test.py (without `--eval`) do: BatchNorm on each
image's own statistics and dropout on, as in training. Each image is then computed on its
own (a batch would share statistics) with torch's RNG seeded by `seed` for the dropout masks,
so a folder gives the same files in any order, with any number of workers. "eval" uses the
running statistics and no dropout.
"""
from __future__ import annotations

import threading

import torch
import torch.nn.functional as F
from torch import nn

from i2i.data.color import lab_to_rgb, luminance, rgb_to_lab01
from i2i.device import resolve_device
from i2i.errors import I2IError, UsageError
from i2i.infer.speed import Candidate, Speed
from i2i.infer.tiles import round_up, run_tiled
from i2i.nn.inference import is_stochastic_at_test, use_batch_statistics, use_fast_instance_norm
from i2i.spec import TEST_MODES, ModelSpec, spec_for_network


class ImageModel:
    """A generator and how to run it: ranges, channels, padding, tiles, test mode, precision.

    It owns `net`: the network is put in eval (or test) mode, moved to the device, and its
    InstanceNorm layers are swapped for an equivalent, faster one
    (`i2i.nn.inference.use_fast_instance_norm`).
    """

    def __init__(self, net: nn.Module, spec: ModelSpec | None = None, *, direction: str | None = None,
                 device: str = "auto", precision: str = "auto", channels_last: bool | None = None,
                 tile: int = 0, tile_pad: int = 16, source: str = "", test_mode: str | None = None,
                 seed: int = 0):
        net.eval()
        self.source = source or type(net).__name__
        self.spec = spec if spec is not None else spec_for_network(net)
        self.direction = direction or self.spec.default_direction
        self.in_channels, self.out_channels = self.spec.channels(self.direction)
        self.scale, self.size = self.spec.scale, self.spec.size
        found = (getattr(net, "in_channels", self.in_channels), getattr(net, "out_channels", self.out_channels),
                 getattr(net, "scale", self.scale))
        if found != (self.in_channels, self.out_channels, self.scale):
            raise I2IError(f"{self.source}: the network maps {found[0]} to {found[1]} channels at scale {found[2]}, "
                           f"its model spec says {self.in_channels} to {self.out_channels} at scale {self.scale}")
        self.input_range, self.output_range = self.spec.input_range, self.spec.output_range
        self.lab = self.spec.color_space == "lab"
        self.keep_gray = self.spec.keeps_gray
        self.tile, self.tile_pad = tile, tile_pad
        self.device = resolve_device(device)
        self.test_mode = test_mode or self.spec.test_mode
        if self.test_mode not in TEST_MODES:
            raise UsageError(f"test mode must be one of {', '.join(TEST_MODES)}, not {self.test_mode!r}")
        # "train" with neither BatchNorm nor dropout computes what "eval" computes, in batches
        self.stochastic = self.test_mode == "train" and is_stochastic_at_test(net)
        self.seed = seed
        if self.stochastic:
            use_batch_statistics(net)
            self._rng_lock = threading.Lock()  # torch's RNG is one per process
            if channels_last is None and self.device.type == "cpu":
                channels_last = False  # dropout masks follow the memory layout: keep the reference's
        use_fast_instance_norm(net)
        net.to(self.device)
        self.speed = Speed(net, self.device, precision, channels_last)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source}, device={self.device}, {self.speed}, scale={self.scale})"

    @property
    def net(self) -> nn.Module:
        """The network that runs: the given one, or its bf16 copy."""
        return self.speed.net

    @property
    def precision(self) -> str:
        """"fp32", "bf16" or "fp16": asked for, or measured at the first call."""
        return self.speed.precision

    @property
    def channels_last(self) -> bool:
        """Whether images run in the channels_last memory layout."""
        return self.speed.channels_last

    @property
    def _candidates(self) -> list[Candidate]:
        """The (precision, channels_last) pairs the first call will time; empty once chosen."""
        return self.speed.candidates

    @torch.inference_mode()
    def translate_tensor(self, x: torch.Tensor, alpha: torch.Tensor | None = None, *,
                         tile: int | None = None, tile_pad: int | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """NxCxHxW colour in [0,1] (C 1 or 3) -> N x C' x sH x sW in [0,1], on `self.device`.

        `alpha` (Nx1xHxW or None) follows the image: resized bicubically for SR.
        """
        tile = self.tile if tile is None else tile
        tile_pad = self.tile_pad if tile_pad is None else tile_pad
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise UsageError(f"expected an NxCxHxW tensor with 1 or 3 channels, not shape {tuple(x.shape)}")
        if tile < 0 or tile_pad < 0:
            raise UsageError(f"tile and tile_pad must be >= 0, not {tile} and {tile_pad}")
        height, width = x.shape[-2:]
        x = x.to(self.device, torch.float32)
        net_in = self._to_network(x)
        padded = _pad_to(net_in, *self.size.padded(height, width))
        if tile and max(padded.shape[-2:]) > tile:
            y = run_tiled(self._run, padded, tile, tile_pad, self.scale, self.size)
        else:
            y = self._run(padded)
        y = y[:, :, : height * self.scale, : width * self.scale]
        out = self._from_network(y, x)
        if alpha is not None:
            alpha = alpha.to(self.device, torch.float32)
            if self.scale != 1:
                alpha = F.interpolate(alpha, scale_factor=self.scale, mode="bicubic", align_corners=False)
            alpha = alpha.clamp(0, 1)
        return out, alpha

    def _to_network(self, x: torch.Tensor) -> torch.Tensor:
        """[0,1] image with 1 or 3 channels -> the network's channels and range."""
        if self.lab:
            x = _lightness01(x)
        elif x.shape[1] == 1 and self.in_channels == 3:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] == 3 and self.in_channels == 1:
            x = luminance(x)
        elif x.shape[1] != self.in_channels:
            raise I2IError(f"{self.source}: takes {self.in_channels}-channel images, got {x.shape[1]} channels")
        lo, hi = self.input_range
        return x * (hi - lo) + lo

    def _from_network(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The network's output -> [0,1] image; `x` is the input (for Lab's L and gray SR)."""
        lo, hi = self.output_range
        y = ((y - lo) / (hi - lo)).clamp(0, 1)
        if self.lab:
            return lab_to_rgb(_lightness01(x), y).clamp(0, 1)
        if self.keep_gray and x.shape[1] == 1 and y.shape[1] == 3:
            y = luminance(y)
        return y

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """One forward pass in the chosen precision and memory format; float32 out."""
        if self.speed.candidates:
            self._settle_speed(*x.shape[-2:])
        if self.stochastic:  # each image alone, with the same dropout seed
            return torch.cat([self._seeded_forward(x[i:i + 1]) for i in range(x.shape[0])]).float()
        return self.speed.forward(x).float()

    def _seeded_forward(self, x: torch.Tensor) -> torch.Tensor:
        """A forward pass with torch's RNG seeded by `self.seed`, and the caller's RNG restored."""
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with self._rng_lock, torch.random.fork_rng(devices=cuda):
            torch.manual_seed(self.seed)
            return self.speed.forward(x)

    def _settle_speed(self, height: int, width: int) -> None:
        """Choose precision and layout at the first forward pass, on a probe of up to 128 px out."""
        side = round_up(max(32, 128 // self.scale), self.size.multiple)
        self.speed.settle(lambda candidates: self._fastest(candidates, min(height, side), min(width, side)))

    @torch.inference_mode()
    def _fastest(self, candidates: list[Candidate], height: int, width: int) -> Candidate:
        """The fastest candidate on a height x width probe.

        The probe is the first input's size, up to 128 px out, because the ranking changes
        with the size (bf16 layouts swap places between small and real-sized images); SR nets
        get 128 / scale px (at least 32), where they rank as at full size, at a fraction of
        the probe's cost.
        """
        probe = torch.rand(1, self.in_channels, height, width, device=self.device)
        return self.speed.fastest(
            candidates, lambda: self._seeded_forward(probe) if self.stochastic else self.speed.forward(probe))


def _pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pad bottom/right: reflect where the image is large enough, else replicate."""
    h, w = x.shape[-2:]
    if width > w:
        x = F.pad(x, (0, width - w, 0, 0), mode="reflect" if width - w < w else "replicate")
    if height > h:
        x = F.pad(x, (0, 0, 0, height - h), mode="reflect" if height - h < h else "replicate")
    return x


def _lightness01(x: torch.Tensor) -> torch.Tensor:
    """CIE L / 100 of a gray or RGB image in [0,1], as Nx1xHxW (the pipelines' L01)."""
    rgb = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    return rgb_to_lab01(rgb)[0]
