"""The model call: a generator run as its model file's contract (`i2i.spec.ModelSpec`) says,
on NxCxHxW images in [0, 1]: value range and channels -> pad -> run (whole or tiled) -> crop.

Memory. The call reads its input and writes its output a window at a time (`i2i.infer.images`
Pixels and Result; `i2i.infer.tiles`): 8- and 16-bit images stay integer arrays and only the
window being computed is ever floats, so with tiles the memory is the source, the result and
one tile. Without tiles, an image whose estimated working memory exceeds the free memory is
tiled all the same (one line on stderr says so) rather than killed by the OOM killer.

Broken models. Weights or buffers that are NaN or infinite are refused when the model is
built; an output that is not finite is an I2IError (a folder run fails that batch's images,
one line each), never a written black image.

Sizes. Any input size works, 1x1 included: the image is padded at the bottom/right to the
network's size requirements (reflect, or replicate where the image is too small to reflect)
and the output cropped back, so it has the input's size times the network's `scale` (or
`outscale`'s, resized at the end).

Channels. Gray input to a 3-channel model is replicated to RGB; RGB input to a 1-channel
model becomes its BT.601 luminance. Gray input to a super-resolution model (the spec's
`keeps_gray`) gives gray output, as Real-ESRGAN does (SR keeps colours); other models give
what they produce (a gray sketch into a sketch->photo model comes out in colour). A Lab model
takes the input's lightness and returns it with the predicted ab.

Alpha. Scale-1 models keep an image's alpha as it is; SR models upsample it through the same
network, as Real-ESRGAN does by default, or resize it (`i2i.infer.alpha`). `outscale` then
resizes the finished output and alpha (`i2i.infer.images.resize_output`).

Test mode ("train" or "eval"; by default the spec's `test_mode`): "train" runs the generator
as the pix2pix paper and the reference's test.py (without `--eval`) do: BatchNorm on each
image's own statistics and dropout on, as in training. Each image is then computed on its
own (a batch would share statistics) with torch's RNG seeded by `seed` for the dropout masks,
so a folder gives the same files in any order, with any number of workers. "eval" uses the
running statistics and no dropout.
"""
from __future__ import annotations

import itertools
import sys
from typing import Callable

import numpy as np
import torch
from torch import nn

from i2i.data import io
from i2i.data.color import lab_to_rgb, luminance, rgb_to_lab01
from i2i.device import resolve_device
from i2i.errors import I2IError, UsageError
from i2i.infer import tiles
from i2i.infer.alpha import upsampled_alpha_tensor, upsampled_alphas
from i2i.infer.locks import PicklableLock
from i2i.infer.images import (ArrayPixels, ArrayResult, Pixels, Result, StreamResult, TensorPixels, TensorResult,
                              check_alpha_upsampler, check_not_empty, check_tensor_input, outscaled_size, resize_output,
                              resize_tensors)
from i2i.infer.speed import Candidate, Speed
from i2i.nn.inference import (is_stochastic_at_test, normalises_per_image, use_batch_statistics,
                              use_fast_instance_norm)
from i2i.spec import TEST_MODES, ModelSpec, spec_for_network, to_image_range, to_network_range


class ImageModel:
    """A generator and how to run it: ranges, channels, padding, tiles, test mode, precision.

    It owns `net`: the network is put in eval (or test) mode, in float32 (the default dtype
    may have been float64 when it was built), moved to the device, and its InstanceNorm
    layers are swapped for an equivalent, faster one (`i2i.nn.inference.use_fast_instance_norm`).
    """

    def __init__(self, net: nn.Module, spec: ModelSpec | None = None, *, direction: str | None = None,
                 device: str = "auto", precision: str = "auto", channels_last: bool | None = None,
                 tile: int = 0, tile_pad: int = 16, source: str = "", test_mode: str | None = None,
                 seed: int = 0):
        self.seed = check_seed(seed)
        self.tile, self.tile_pad = check_tiles(tile, tile_pad)
        net.eval().float()
        self.source = source or type(net).__name__
        _check_weights(net, self.source)
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
        self.reads_gray = self.in_channels == 1 and not self.lab  # files: colour as training reads it
        self.device = resolve_device(device)
        self.test_mode = test_mode or self.spec.test_mode
        if self.test_mode not in TEST_MODES:
            raise UsageError(f"test mode must be one of {', '.join(TEST_MODES)}, not {self.test_mode!r}")
        # "train" with neither BatchNorm nor dropout computes what "eval" computes, in batches
        self.stochastic = self.test_mode == "train" and is_stochastic_at_test(net)
        self._activation: float | None = None  # see _activation_per_pixel
        if self.stochastic:
            use_batch_statistics(net)
            self._rng_lock = PicklableLock()  # torch's RNG is one per process
            if channels_last is None and self.device.type == "cpu":
                channels_last = False  # dropout masks follow the memory layout: keep the reference's
        self._note_tiles = self.stochastic or normalises_per_image(net)  # batch or instance statistics
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
                         tile: int | None = None, tile_pad: int | None = None, alpha_upsampler: str = "model",
                         outscale: float | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """NxCxHxW colour in [0,1] (C 1 or 3) -> N x C' x sH x sW in [0,1], on `self.device`.

        `alpha` (Nx1xHxW or None) follows the image (`alpha_upsampler`, as `translate_arrays`);
        `outscale` resizes both at the end (on float32). Inference tensors: a Translator's call clones them.
        """
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise UsageError(f"expected an NxCxHxW tensor with 1 or 3 channels, not shape {tuple(x.shape)}")
        check_tensor_input(x, alpha)
        check_alpha_upsampler(alpha_upsampler)
        size = outscaled_size(*x.shape[-2:], self.scale, outscale)
        result = TensorResult()
        self.translate_pixels(TensorPixels(x), result, tile=tile, tile_pad=tile_pad)
        assert result.tensor is not None
        if alpha is not None:
            alpha = (upsampled_alpha_tensor(self, alpha, alpha_upsampler, tile, tile_pad) if self.scale != 1
                     else alpha.to(self.device, torch.float32).clamp(0, 1))
        return (result.tensor, alpha) if size is None else resize_tensors(result.tensor, alpha, size)

    @torch.inference_mode()
    def translate_arrays(self, pixels: list[np.ndarray], alphas: list[np.ndarray] | None = None, *,
                         tile: int | None = None, tile_pad: int | None = None, name: str = "",
                         alpha_upsampler: str = "model", outscale: float | None = None
                         ) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """HxWxC uint8/uint16 images of one size (C 1 or 3), and their HxW alphas or None ->
        (pixels, alpha) per image at its bit depth: as `translate_tensor` on io.to_tensor's
        floats, written back by io.from_tensor, but only a window at a time is ever floats.

        The alpha of a scale-1 model comes back as it is (the float round trip is exact); SR
        models upsample it as `alpha_upsampler` says ("model", Real-ESRGAN's default, or
        "resize": `i2i.infer.alpha`). `outscale` (None: the model's scale) resizes the finished
        output and its alpha to int(side * outscale) of the input with Lanczos, as Real-ESRGAN's
        `--outscale`. `name` (the files) is for the line that says an image is tiled because it
        would not fit in memory.
        """
        check_alpha_upsampler(alpha_upsampler)
        size = outscaled_size(*pixels[0].shape[:2], self.scale, outscale)
        result = ArrayResult([io.bit_depth(array) for array in pixels])
        self.translate_pixels(ArrayPixels(pixels, self.reads_gray), result, tile=tile, tile_pad=tile_pad, name=name)
        out_alphas = ([None] * len(pixels) if alphas is None else list(alphas) if self.scale == 1 else
                      upsampled_alphas(self, alphas, alpha_upsampler, tile, tile_pad, name))
        outputs = list(zip(result.arrays, out_alphas))
        return outputs if size is None else [resize_output(out, alpha, size) for out, alpha in outputs]

    @torch.inference_mode()
    def translate_streamed(self, pixels: np.ndarray, write_rows: Callable[[np.ndarray, int], None], *,
                           tile: int | None = None, tile_pad: int | None = None, name: str = "") -> None:
        """One HxWxC uint8/uint16 image without alpha -> its output handed to
        `write_rows(rows, height)` a row of tiles at a time, top to bottom (`StreamResult`):
        with tiles, neither the source nor the result ever exists as floats, and the result
        never exists whole (how `i2i translate` bounds the memory of huge images)."""
        result = StreamResult(io.bit_depth(pixels), write_rows)
        self.translate_pixels(ArrayPixels([pixels], self.reads_gray), result, tile=tile, tile_pad=tile_pad, name=name)
        result.flush()

    @torch.inference_mode()
    def translate_pixels(self, source: Pixels, result: Result, *, tile: int | None = None,
                         tile_pad: int | None = None, name: str = "") -> None:
        """The model call, window by window: read -> channels and range -> run -> crop ->
        back to [0, 1] -> write (`i2i.infer.tiles`). Without tiles, an image that would not
        fit in the free memory is tiled all the same, with one line on stderr saying so."""
        tile, tile_pad = check_tiles(self.tile if tile is None else tile,
                                     self.tile_pad if tile_pad is None else tile_pad)
        check_not_empty(source.shape[0], *source.shape[-2:])
        height, width = source.shape[-2:]
        padded, s = self.size.padded(height, width), self.scale
        tile = tile or self._auto_tile(source.shape, tile_pad, name)
        if tile and self.device.type == "cpu":
            tiles.return_freed_buffers()
        if tile and max(padded) > tile and self._note_tiles:
            self._note_tiles = False  # once
            _note_tiles(self.source)
        for part in tiles.plan(*padded, tile, tile_pad, self.size):
            (top, bottom), (left, right) = part.region
            bottom, right = min(bottom, height), min(right, width)  # crop the padding
            if bottom <= top or right <= left:
                continue
            rows = tiles.pad_index(*part.rows, height, padded[0])
            x = source.read(rows, tiles.pad_index(*part.cols, width, padded[1])).to(self.device, torch.float32)
            y = self._run(self._to_network(x))
            rows = slice(top - part.rows[0], bottom - part.rows[0])
            cols = slice(left - part.cols[0], right - part.cols[0])
            y = y[:, :, rows.start * s: rows.stop * s, cols.start * s: cols.stop * s]
            if not torch.isfinite(y).all():
                raise I2IError(f"{self.source}: the network's output holds NaN or infinite values{self._nan_hint()}")
            result.write(top * s, left * s, self._from_network(y, x[:, :, rows, cols]), (height * s, width * s))

    def _auto_tile(self, shape: tuple[int, ...], tile_pad: int, name: str) -> int:
        """0 (whole images) where the estimated working memory fits in the free memory,
        else the largest tile size whose windows fit in half of it (and one line saying so)."""
        free = tiles.available_memory(self.device)
        activation = None if free is None else self._activation_per_pixel()
        if activation is None:
            return 0
        n, channels, height, width = shape
        per_pixel = n * tiles.bytes_per_pixel(activation, channels, self.out_channels, self.scale)
        padded = self.size.padded(height, width)
        output = 4.0 * n * self.out_channels * height * width * self.scale ** 2  # the result, as floats
        need = output + per_pixel * padded[0] * padded[1]
        if need <= free:
            return 0
        from tqdm import tqdm

        tile = tiles.fitting_tile(per_pixel, output, free / 2, tile_pad, self.size)
        images = f"{n} images of {width}x{height} need" if n > 1 else f"{width}x{height} needs"
        tqdm.write(f"{name or self.source}: {images} ~{_gigabytes(need)}, more than the {_gigabytes(free)} free: "
                   f"translating in {tile} px tiles", file=sys.stderr)
        return tile

    def _activation_per_pixel(self) -> float | None:
        """The network's largest activation in values per input pixel, measured once on a
        small probe (`i2i.infer.tiles.largest_activation`); None if the probe fails (the
        image's own run then says why)."""
        if self._activation is None:
            probe = _random_probe(self.in_channels, *self.size.padded(64, 64), self.device)
            forward = self._seeded_forward if self.stochastic else self.speed.forward
            measured = tiles.largest_activation(self.net, forward, probe)
            self._activation = -1.0 if measured is None else measured
        return self._activation if self._activation >= 0 else None

    def _nan_hint(self) -> str:
        return "" if self.precision == "fp32" else f" (in {self.precision}; does precision fp32 help?)"

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
        return to_network_range(x, self.input_range)

    def _from_network(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The network's output -> [0,1] image; `x` is the input (for Lab's L and gray SR)."""
        y = to_image_range(y, self.output_range)
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
        side = tiles.round_up(max(32, 128 // self.scale), self.size.multiple)
        probe = (min(height, side), min(width, side))
        self.speed.settle(lambda candidates: self._fastest(candidates, *probe), probe)

    @torch.inference_mode()
    def _fastest(self, candidates: list[Candidate], height: int, width: int) -> Candidate:
        """The fastest candidate on a height x width probe.

        The probe is the first input's size, up to 128 px out, because the ranking changes
        with the size (bf16 layouts swap places between small and real-sized images); SR nets
        get 128 / scale px (at least 32), where they rank as at full size, at a fraction of
        the probe's cost.
        """
        probe = _random_probe(self.in_channels, height, width, self.device)
        return self.speed.fastest(
            candidates, lambda: self._seeded_forward(probe) if self.stochastic else self.speed.forward(probe))


def check_tiles(tile: object, tile_pad: object) -> tuple[int, int]:
    """`tile` and `tile_pad` as ints, or a one-line UsageError naming the wrong one (a str or
    float would fail deep in the tiling with a TypeError)."""
    for name, value in (("tile", tile), ("tile_pad", tile_pad)):
        if not _is_int(value) or value < 0:
            meaning = " (0: whole images)" if name == "tile" else ""
            raise UsageError(f"{name} must be an int >= 0{meaning}, not {value!r}")
    return tiles.check_tile(int(tile)), int(tile_pad)


def check_seed(seed: object) -> int:
    """`seed` as an int, refused (one line) when the model is made if torch.manual_seed would
    refuse it at the first call."""
    if not _is_int(seed) or not -2 ** 63 <= seed < 2 ** 64:
        raise UsageError(f"seed must be an int (in -2**63 .. 2**64 - 1), not {seed!r}")
    return int(seed)


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _note_tiles(source: str) -> None:
    """Tiles change what a model that normalises by each image's own statistics computes."""
    from tqdm import tqdm

    tqdm.write(f"note: {source} normalises each image by its own statistics, so in tiles (each normalised "
               "on its own) its output differs from the whole image's; tile only what does not fit whole",
               file=sys.stderr)


def _random_probe(channels: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """A random float32 1 x C x height x width input for measuring, drawn from a generator of
    its own: the caller's torch random stream stays where it was."""
    generator = torch.Generator(device=device).manual_seed(0)
    return torch.rand(1, channels, height, width, generator=generator, device=device, dtype=torch.float32)


def _gigabytes(size: float) -> str:
    return f"{size / 1e9:.0f} GB" if size >= 10e9 else f"{size / 1e9:.2g} GB"


def _check_weights(net: nn.Module, source: str) -> None:
    """Refuse weights or buffers that are NaN or infinite (they would give black images)."""
    for name, tensor in itertools.chain(net.named_parameters(), net.named_buffers()):
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise I2IError(f"{source}: the weights are broken: {name} holds NaN or infinite values")


def _lightness01(x: torch.Tensor) -> torch.Tensor:
    """CIE L / 100 of a gray or RGB image in [0,1], as Nx1xHxW (the pipelines' L01)."""
    rgb = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    return rgb_to_lab01(rgb)[0]
