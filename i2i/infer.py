"""Inference: a trained generator applied to images, arrays, tensors and whole folders.

    translator = i2i.load_model("runs/horse2zebra", direction="AtoB")
    zebra = translator(PIL.Image.open("horse.jpg"))               # PIL in, PIL out
    translator.translate_folder("photos/", "zebras/", tile=512)   # what `i2i translate` runs

How a model runs is its model file's contract, `i2i.spec.ModelSpec` (value ranges, colour
space, channels, scale, size requirements, directions, test mode); nothing here knows a
pipeline by name.

Sizes. Any input size works, 1x1 included: the image is padded at the bottom/right to the
network's `size_multiple` (reflect, or replicate where the image is too small to reflect)
and the output cropped back, so it has the input's size times the network's `scale`.

Tiles (`tile`, `tile_pad`), as Real-ESRGAN does: the output is cut into non-overlapping
tile x tile regions; each is computed from its input region grown by `tile_pad` pixels on
every side, and only the region's own pixels are kept. A pixel is exact whenever the
network's receptive field around it fits within `tile_pad` (tile grids are aligned to the
size multiple, so strided convolutions see the same sampling grid). We chose this over
overlapping tiles with a linear blending window after measuring both (resnet_6blocks,
BatchNorm in eval mode, 160x160, tile 64; max |tiled - untiled|):

    tile_pad   hard cut (this)   blend over pad/4   blend over pad/2   blend over the pad
    32         5.8e-2            3.5e-2             5.6e-2             1.0e-1
    48         1.5e-3            2.2e-3             1.1e-2             1.8e-1

Blending mixes in pixels that lie closer to a tile's edge (less context); it only helps a
little when the pad is too small anyway. So: raise `tile_pad` until seams vanish (ResNet
generators reach far: 32-64; the SR nets are exact from ~16). Limit: InstanceNorm
normalises each tile by its own statistics, so InstanceNorm nets (CycleGAN's default)
give tile-dependent tones whatever the pad; use tiles as large as memory allows there.
BatchNorm in eval mode, no norm and the SR nets are exact up to the receptive-field
effect (tests/test_infer.py checks this).

Channels. Gray input to a 3-channel model is replicated to RGB; RGB input to a 1-channel
model becomes its BT.601 luminance. Gray input to a super-resolution model (scale > 1)
gives gray output, as Real-ESRGAN does (SR keeps colours); other models give what they
produce (a gray sketch into a sketch->photo model comes out in colour). Alpha is kept
(resized bicubically for SR); 16-bit in gives 16-bit out.
"""
from __future__ import annotations

import copy
import json
import os
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from i2i.device import autocast, cpu_has_native_bf16, resolve_device, resolve_precision
from i2i.nn.inference import is_stochastic_at_test, use_batch_statistics, use_fast_instance_norm
from i2i.data import io
from i2i.data.color import luminance
from i2i.errors import I2IError, UsageError, one_line
from i2i.spec import DIRECTIONS, TEST_MODES, ModelSpec, spec_for_network

OUTPUT_EXTENSIONS = ("png", "jpg", "same")

_READERS = 2  # decode threads (decoding releases the GIL)
_WRITERS = 2  # encode/write threads
_TUNED: dict[tuple, tuple[str, bool]] = {}  # (arch, device, asked, threads) -> (precision, channels_last)


# ----------------------------------------------------------------------------- finding a model


def resolve_model_path(path_or_name: str | os.PathLike) -> Path:
    """A model file, a run folder (its model.safetensors), or a zoo name -> a model file path."""
    path = Path(path_or_name)
    if path.is_dir():
        model = path / "model.safetensors"
        if not model.is_file():
            raise I2IError(f"{path}: no model.safetensors in this folder (is it a training run folder?)")
        return model
    if path.is_file():
        return path
    text = str(path_or_name)
    if text.endswith(".safetensors") or os.sep in text or "/" in text:
        raise I2IError(f"{path}: model file not found")
    return zoo_model_path(text)


def zoo_model_path(name: str) -> Path:
    """Hook for the pretrained zoo (issue 7): a registry name -> a verified local model file.

    `resolve_model_path` calls only this; an unknown name is a one-line I2IError.
    """
    from i2i import zoo

    return zoo.resolve(name)


def load_model(path_or_name: str | os.PathLike, device: str = "auto", precision: str = "auto",
               direction: str | None = None, test_mode: str | None = None, seed: int = 0) -> Translator:
    """Load a generator from a model file / run folder / zoo name, ready to translate.

    CycleGAN files hold both generators: `direction` picks G_A (AtoB) or G_B (BtoA); None
    is the model's default direction (the one it was trained for). Only that one network
    is built. `test_mode` and `seed`: see `Translator`.
    """
    from i2i.checkpoint import load_model as load_model_file
    from i2i.checkpoint import read_header

    path = resolve_model_path(path_or_name)
    header = read_header(path)
    spec = header.spec
    direction = direction or spec.default_direction
    if direction not in DIRECTIONS:
        raise UsageError(f"direction must be AtoB or BtoA, not {direction!r}")
    if direction not in spec.directions:
        raise UsageError(f"{path}: this {spec.pipeline} model translates {', '.join(spec.directions)} only")
    chosen = spec.directions[direction]
    if chosen not in header.archs:
        raise I2IError(f"{path}: no network {chosen!r} in this model file "
                       f"(it has: {', '.join(header.archs) or 'none'})")
    model = load_model_file(path, names=[chosen])
    return Translator(model.networks[chosen], spec, direction=direction, device=device, precision=precision,
                      source=f"{path} ({chosen})", test_mode=test_mode, seed=seed)


# ----------------------------------------------------------------------------- the translator


@dataclass
class Summary:
    """What a folder run did; `failures` holds the one-line messages."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        rate = f" ({self.done / self.seconds:.2f} images/s)" if self.done and self.seconds > 0 else ""
        return (f"done {self.done}, skipped {self.skipped}, failed {self.failed} "
                f"in {self.seconds:.1f} s{rate}")


class Translator:
    """A generator plus everything around it: ranges, channels, padding, tiles, precision.

    `precision="auto"`: bf16 where the hardware computes it natively (device.resolve_precision),
    but on the CPU only if it is faster for *this* network, and `channels_last=None`: the
    faster layout. On the CPU both are measured at the first forward pass (`_fastest`), once
    per process and network, because no fixed rule holds. On this project's CI host
    ("Intel(R) Xeon(R) Processor", AMX bf16, 2 shared cores), resnet_9blocks (instance norm)
    per image, best of 5 in a quiet moment:

        size      fp32    fp32 + channels_last    bf16    bf16 + channels_last
        256x256   410 ms  366 ms                  146 ms   83 ms
        64x64      34 ms   34 ms                   17 ms   30 ms

    and tiny nets can run faster in fp32 (autocast's casts cost more than they save).
    On CUDA, half precision with channels_last is the known fast path for convolutions
    (tensor cores; an H100 ran the benchmark's resnet_9blocks at batch 8 at 82 images/s so,
    61 in fp32), so it is used there without measuring.

    The Translator owns `net`: it is put in eval mode, moved to the device, and its
    InstanceNorm layers are swapped for an equivalent, faster one
    (`i2i.nn.inference.use_fast_instance_norm`).

    `test_mode` ("train" or "eval"; None: the model's `test_mode` setting): "train" runs the
    generator as the pix2pix paper and the reference's test.py (without `--eval`) do:
    BatchNorm on each image's own statistics and dropout on, as in training. Each image is
    then computed on its own (a batch would share statistics) with torch's RNG seeded by
    `seed` for the dropout masks, so a folder gives the same files in any order, with any
    number of workers. "eval" uses the running statistics and no dropout.
    """

    def __init__(self, net: nn.Module, spec: ModelSpec | None = None, *, direction: str | None = None,
                 device: str = "auto", precision: str = "auto", channels_last: bool | None = None,
                 tile: int = 0, tile_pad: int = 16, source: str = "", test_mode: str | None = None,
                 seed: int = 0):
        self.net = net.eval()  # what runs: `_fp32_net`, or its bf16 copy
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
        self.stochastic = self.test_mode == "train" and is_stochastic_at_test(self.net)
        self.seed = seed
        if self.stochastic:
            use_batch_statistics(self.net)
            self._rng_lock = threading.Lock()  # torch's RNG is one per process
            if channels_last is None and self.device.type == "cpu":
                channels_last = False  # dropout masks follow the memory layout: keep the reference's
        use_fast_instance_norm(self.net)
        self.net.to(self.device)
        self._fp32_net, self._bf16_net = self.net, None
        self._tune_lock = threading.Lock()
        self._choose_speed(precision, channels_last)

    def __repr__(self) -> str:
        speed = ("precision and layout measured at the first call" if self._candidates else
                 f"precision={self.precision}, channels_last={self.channels_last}")
        return f"Translator({self.source}, device={self.device}, {speed}, scale={self.scale})"

    # ------------------------------------------------------------------ one image, any kind

    def __call__(self, image: Any, *, tile: int | None = None, tile_pad: int | None = None) -> Any:
        """Translate a PIL image, a numpy array (HxWxC or HxW; uint8, uint16 or float in [0,1])
        or a CxHxW / NxCxHxW float tensor in [0,1]; returns the same kind.

        A PIL image comes back in the same mode family (L/LA/RGB/RGBA, I;16 for 16-bit gray;
        Pillow has no 16-bit colour, so 16-bit gray into a colour model comes back 8-bit RGB).
        An alpha channel (the last of 2 or 4 channels) is kept. A PIL image is taken as it
        is: apply PIL.ImageOps.exif_transpose first if it may be rotated (`translate_folder`
        turns files upright itself).
        """
        if isinstance(image, torch.Tensor):
            return self._call_tensor(image, tile, tile_pad)
        if isinstance(image, np.ndarray):
            return self._call_array(image, tile, tile_pad)
        import PIL.Image

        if isinstance(image, PIL.Image.Image):
            return self._call_pil(image, tile, tile_pad)
        raise UsageError(f"cannot translate a {type(image).__name__}: give a PIL image, a numpy array or a tensor")

    def _call_tensor(self, image: torch.Tensor, tile: int | None, tile_pad: int | None) -> torch.Tensor:
        batched = image.dim() == 4
        if image.dim() not in (3, 4) or image.shape[-3] not in (1, 2, 3, 4):
            raise UsageError(f"expected a CxHxW or NxCxHxW tensor with 1-4 channels, not shape {tuple(image.shape)}")
        if not image.is_floating_point():
            raise UsageError(f"expected a float tensor in [0, 1], not {image.dtype}")
        x = image if batched else image[None]
        color, alpha = _split_alpha_channels(x, dim=1)
        y, alpha = self.translate_tensor(color.float(), alpha, tile=tile, tile_pad=tile_pad)
        if alpha is not None:
            y = torch.cat([y, alpha], dim=1)
        y = y.to(image.device, image.dtype)
        return y if batched else y[0]

    def _call_array(self, image: np.ndarray, tile: int | None, tile_pad: int | None) -> np.ndarray:
        flat = image.ndim == 2
        array = image[..., None] if flat else image
        if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
            raise UsageError(f"expected an HxW or HxWxC array with 1-4 channels, not shape {image.shape}")
        if image.dtype == np.uint8 or image.dtype == np.uint16:
            x = io.to_tensor(array)
        elif np.issubdtype(image.dtype, np.floating):
            x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1)
        else:
            raise UsageError(f"expected uint8, uint16 or float pixels, not {image.dtype}")
        color, alpha = _split_alpha_channels(x[None], dim=1)
        y, alpha = self.translate_tensor(color, alpha, tile=tile, tile_pad=tile_pad)
        if alpha is not None:
            y = torch.cat([y, alpha], dim=1)
        if np.issubdtype(image.dtype, np.floating):
            out = y[0].permute(1, 2, 0).cpu().clamp(0, 1).numpy().astype(image.dtype)
        else:
            out = io.from_tensor(y[0], 16 if image.dtype == np.uint16 else 8)
        return out[..., 0] if flat and out.shape[2] == 1 else out

    def _call_pil(self, image: Any, tile: int | None, tile_pad: int | None) -> Any:
        import PIL.Image

        pixels, alpha = io.pil_to_arrays(image)
        out = self._call_array(pixels if alpha is None else np.dstack([pixels, alpha]), tile, tile_pad)
        if out.dtype == np.uint16 and out.shape[2] > 1:  # Pillow holds 16 bits only as gray ("I;16")
            out = io.to_dtype(out, np.uint8)
        if out.shape[2] == 1:
            return PIL.Image.fromarray(out[..., 0])  # "L", or "I;16" for uint16
        return PIL.Image.fromarray(out)  # LA, RGB, RGBA by channel count

    # ------------------------------------------------------------------ the tensor core

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
            y = self._run_tiled(padded, tile, tile_pad)
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
            from i2i.data.color import lab_to_rgb

            return lab_to_rgb(_lightness01(x), y).clamp(0, 1)
        if self.keep_gray and x.shape[1] == 1 and y.shape[1] == 3:
            y = luminance(y)
        return y

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """One forward pass in the chosen precision and memory format; float32 out."""
        if self._candidates:
            with self._tune_lock:  # translate_folder's workers wait for the first one's choice
                if self._candidates:
                    self._tune(*x.shape[-2:])
        if self.stochastic:  # each image alone, with the same dropout seed
            return torch.cat([self._seeded_forward(x[i:i + 1]) for i in range(x.shape[0])]).float()
        return self._forward(x).float()

    def _seeded_forward(self, x: torch.Tensor) -> torch.Tensor:
        """`_forward` with torch's RNG seeded by `self.seed`, and the caller's RNG restored."""
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with self._rng_lock, torch.random.fork_rng(devices=cuda):
            torch.manual_seed(self.seed)
            return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """bf16 runs a bf16 copy of the weights on bf16 pixels; fp16 runs under autocast.

        bf16 has fp32's exponent range, so casting the weights loses only what autocast
        loses in every convolution anyway, without autocast's per-call casts of the weights
        and of the norms' fp32 outputs: resnet_9blocks, 256x256, bf16 + channels_last on the
        CI host: 108 ms under autocast, 78 ms with bf16 weights, the same error against fp32
        (max 0.060, mean 0.0085 in [-1, 1]). Real-ESRGAN also runs its models in half weights.
        fp16 stays under autocast, whose fp32 ops guard fp16's narrow range.
        """
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.precision == "bf16":
            return self.net(x.to(torch.bfloat16))
        with autocast(self.device, self.precision):
            return self.net(x)

    def _run_tiled(self, x: torch.Tensor, tile: int, tile_pad: int) -> torch.Tensor:
        """Non-overlapping output regions, each from its input region + `tile_pad` context.

        Tile corners and padding are multiples of the size multiple, so every tile sees the
        same sampling grid as the whole image; a region smaller than the minimum size borrows context.
        """
        m, s, least = self.size.multiple, self.scale, self.size.minimum
        tile = max(_round_up(tile, m), least)
        pad = _round_up(tile_pad, m)
        n, _, height, width = x.shape
        out: torch.Tensor | None = None
        for top in range(0, height, tile):
            bottom = min(top + tile, height)
            y0, y1 = _window(top, bottom, pad, height, least)
            for left in range(0, width, tile):
                right = min(left + tile, width)
                x0, x1 = _window(left, right, pad, width, least)
                y = self._run(x[:, :, y0:y1, x0:x1])
                if out is None:
                    out = y.new_empty(n, y.shape[1], height * s, width * s)
                out[:, :, top * s: bottom * s, left * s: right * s] = \
                    y[:, :, (top - y0) * s: (bottom - y0) * s, (left - x0) * s: (right - x0) * s]
        assert out is not None
        return out

    # ------------------------------------------------------------------ precision and layout

    def _choose_speed(self, precision: str, channels_last: bool | None) -> None:
        """Set (precision, channels_last) as asked, or list the candidates `_run` will time."""
        resolved = resolve_precision(precision, self.device)
        self._candidates: list[tuple[str, bool]] = []
        if self.device.type != "cpu":
            if channels_last is None:
                channels_last = self.device.type == "cuda" and resolved in ("bf16", "fp16")
            self._set_speed(resolved, channels_last)
            return
        # The first candidate is the expected winner (bf16 + channels_last on AMX CPUs for
        # real-sized images, see the class doc); the others must prove themselves faster.
        precisions = ["bf16", "fp32"] if precision == "auto" and cpu_has_native_bf16() else [resolved]
        layouts = [True, False] if channels_last is None else [channels_last]
        candidates = [(p, c) for p in precisions for c in layouts]
        self._set_speed(*candidates[0])
        if len(candidates) > 1:
            self._candidates = candidates
            arch = json.dumps(getattr(self.net, "arch", type(self.net).__name__), sort_keys=True, default=str)
            self._tune_key = (arch, str(self.device), precision, channels_last)

    def _set_speed(self, precision: str, channels_last: bool) -> None:
        self.precision, self.channels_last = precision, channels_last
        if precision == "bf16":
            if self._bf16_net is None:
                self._bf16_net = copy.deepcopy(self._fp32_net).to(torch.bfloat16)
            self.net = self._bf16_net
        else:
            self.net = self._fp32_net
        self.net.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)

    def _tune(self, height: int, width: int) -> None:
        """At the first forward pass: time the candidates once per process, network and
        thread count (translate_folder's workers compute on fewer threads than one call)."""
        key = (*self._tune_key, torch.get_num_threads())
        if key not in _TUNED:
            side = _round_up(max(32, 128 // self.scale), self.size.multiple)  # outputs up to 128 px
            _TUNED[key] = self._fastest(self._candidates, min(height, side), min(width, side))
        self._set_speed(*_TUNED[key])
        self._candidates = []
        if self.precision != "bf16":
            self._bf16_net = None  # the probe's copy

    @torch.inference_mode()
    def _fastest(self, candidates: list[tuple[str, bool]], height: int, width: int) -> tuple[str, bool]:
        """The fastest candidate on a probe of the first input's size (up to 128 px out).

        The probe size matters: resnet_9blocks in bf16 is fastest contiguous at 64x64 but
        channels_last from 128x128 up. SR nets get a probe of 128 / scale px (at least 32):
        srresnet x4 ranks bf16 + channels_last first at 32, 128 and 200 px alike, and a 128 px
        probe cost 5 s per process on one thread. On a shared machine, load comes in bursts
        longer than the probe, so the expected winner (the first candidate) stays unless
        another one beats it by 10% in each of 3 rounds; a round runs the candidates back to
        back, so a burst slows them alike.
        """
        probe = torch.rand(1, self.in_channels, height, width, device=self.device)
        expected, rivals = candidates[0], list(candidates[1:])
        best = dict.fromkeys(rivals, float("inf"))
        for round_ in range(4):  # round 0 warms up (oneDNN builds its kernels per shape)
            times = {}
            for candidate in [expected, *rivals]:
                self._set_speed(*candidate)
                start = time.perf_counter()
                self._seeded_forward(probe) if self.stochastic else self._forward(probe)
                times[candidate] = time.perf_counter() - start
            if round_:  # a rival is out at its first loss: fp32 often runs only twice
                rivals = [c for c in rivals if times[c] < 0.9 * times[expected]]
                for c in rivals:
                    best[c] = min(best[c], times[c])
                if not rivals:
                    break
        return min(rivals, key=best.__getitem__) if rivals else expected

    # ------------------------------------------------------------------ folders

    def default_workers(self) -> int:
        """How many batches `translate_folder` translates at once: on the CPU one per torch
        thread, each computing on a single thread; on a GPU one.

        With many images, one single-threaded model per core beats one model spread over all
        cores: no core waits for the others at every layer, and the decoding and encoding
        threads slot in without stalling a whole layer. resnet_9blocks, 256x256, bf16 +
        channels_last on the CI host (2 cores), the network alone: 86 ms per image on 2
        threads, 147 ms on 1 thread, 80 ms per image for two 1-thread workers side by side.
        Each worker holds its own batch, so memory grows with `workers`.
        """
        if self.stochastic:  # the seeded forward passes take turns
            return 1
        return torch.get_num_threads() if self.device.type == "cpu" else 1

    def translate_folder(self, src: str | os.PathLike, dst: str | os.PathLike, *, ext: str = "png",
                         suffix: str = "", batch_size: int = 1, tile: int | None = None,
                         tile_pad: int | None = None, overwrite: bool = False, quality: int = 95,
                         workers: int | None = None, progress: bool = True) -> Summary:
        """Translate an image or a folder tree into `dst`, mirroring its sub-folders.

        Outputs keep their input's stem (+ `suffix`) with extension `ext` ("png", "jpg" or
        "same"). Existing outputs are skipped unless `overwrite`, so an interrupted run
        continues where it stopped; writes are atomic. Images of one size are batched
        (`batch_size`), decoded ahead and written behind in threads while the model runs.
        A bad file costs one stderr line naming it and the run goes on. With `progress`, a
        progress bar (on a terminal) and a summary line are printed to stderr.

        `workers` batches are translated at once, in threads: by default `default_workers()`,
        or 1 with tiles (tiles mean memory is short; each worker holds a whole image). On the
        CPU the torch threads are split between them for the call (torch.set_num_threads, a
        process-wide setting, is restored at the end).
        """
        from tqdm import tqdm

        if batch_size < 1:
            raise UsageError(f"batch_size must be >= 1, not {batch_size}")
        if not 1 <= quality <= 100:
            raise UsageError(f"quality must be 1..100, not {quality}")
        if workers is not None and workers < 1:
            raise UsageError(f"workers must be >= 1, not {workers}")
        start = time.perf_counter()
        summary = Summary()
        jobs, collisions = _plan(Path(src), Path(dst), ext, suffix)
        todo = [job for job in jobs if overwrite or not job.dst.exists()]
        summary.skipped = len(jobs) - len(todo)
        tile = self.tile if tile is None else tile
        workers = min(workers or (1 if tile else self.default_workers()), max(1, -(-len(todo) // batch_size)))
        on_terminal = progress and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
        bar = tqdm(total=len(todo), unit="img", disable=not on_terminal, file=sys.stderr,
                   dynamic_ncols=True)  # its rate is images/s

        def fail(message: str) -> None:
            summary.failed += 1
            summary.failures.append(message)
            if bar.disable:
                print(f"failed: {message}", file=sys.stderr, flush=True)
            else:
                bar.write(f"failed: {message}", file=sys.stderr)

        for message in collisions:
            fail(message)

        def compute(group: list[tuple[_Job, Any]]) -> list[tuple[np.ndarray, np.ndarray | None]]:
            """One batch through the model, in a model worker: pixels (and alpha) to write."""
            x = torch.stack([io.to_tensor(image) for _, image in group])
            alphas = [image.alpha for _, image in group]
            alpha = None if alphas[0] is None else torch.stack([io.to_tensor(a) for a in alphas])
            y, alpha = self.translate_tensor(x, alpha, tile=tile, tile_pad=tile_pad)
            y = y.cpu()
            alpha = None if alpha is None else alpha.cpu()
            return [(io.from_tensor(y[i], image.bit_depth),
                     None if alpha is None else io.from_tensor(alpha[i], image.bit_depth))
                    for i, (_, image) in enumerate(group)]

        def write(job: _Job, pixels: np.ndarray, alpha: np.ndarray | None) -> None:
            io.write_image(job.dst, pixels, alpha, quality=quality)

        # This thread only plans and keeps count; the pools decode, compute and encode
        # (torch, Pillow and zlib release the GIL).
        runs: deque[tuple[list, Future]] = deque()
        writes: deque[tuple[_Job, Future]] = deque()

        def collect(limit: int) -> None:
            """Wait for the oldest writes until at most `limit` are pending."""
            while len(writes) > limit:
                job, future = writes.popleft()
                try:
                    future.result()
                    summary.done += 1
                except Exception as error:
                    fail(_message(job.src, error))
                bar.update(1)

        def finish(limit: int) -> None:
            """Hand the oldest batches' outputs to the writers until at most `limit` run."""
            while len(runs) > limit:
                group, future = runs.popleft()
                try:
                    outputs = future.result()
                except Exception as error:  # one batch failing (e.g. out of memory) fails its images only
                    for job, _ in group:
                        fail(_message(job.src, error))
                        bar.update(1)
                    continue
                for (job, _), (pixels, alpha) in zip(group, outputs):
                    writes.append((job, write_pool.submit(write, job, pixels, alpha)))
                collect(limit=4 * batch_size * workers)

        def run(group: list[tuple[_Job, Any]]) -> None:
            runs.append((group, model_pool.submit(compute, group)))
            finish(limit=workers)  # one batch waits for each worker; the next is being read

        prefetch = max(4, 2 * batch_size * workers)
        threads = torch.get_num_threads()
        if self.device.type == "cpu":
            torch.set_num_threads(max(1, threads // workers))  # model workers start after this
        try:
            with ThreadPoolExecutor(_READERS, thread_name_prefix="i2i-read") as read_pool, \
                    ThreadPoolExecutor(workers, thread_name_prefix="i2i-model") as model_pool, \
                    ThreadPoolExecutor(_WRITERS, thread_name_prefix="i2i-write") as write_pool:
                pending_reads: deque[tuple[_Job, Future]] = deque()
                queue = iter(todo)
                groups: dict[tuple, list] = {}  # same-size images waiting for a full batch
                try:
                    while True:
                        while len(pending_reads) < prefetch and (job := next(queue, None)) is not None:
                            pending_reads.append((job, read_pool.submit(io.read_image, job.src)))
                        if not pending_reads:
                            break
                        job, future = pending_reads.popleft()
                        try:
                            image = future.result()
                        except Exception as error:
                            fail(_message(job.src, error))
                            bar.update(1)
                            continue
                        key = (image.pixels.shape, image.alpha is None)
                        groups.setdefault(key, []).append((job, image))
                        if len(groups[key]) >= batch_size:
                            run(groups.pop(key))
                        elif sum(len(g) for g in groups.values()) > prefetch:
                            run(groups.pop(next(iter(groups))))  # the oldest group: bound memory
                    for group in groups.values():
                        run(group)
                    finish(limit=0)
                    collect(limit=0)
                finally:
                    for _, future in [*pending_reads, *runs]:
                        future.cancel()
        finally:
            torch.set_num_threads(threads)
        bar.close()
        summary.seconds = time.perf_counter() - start
        if progress:
            print(summary, file=sys.stderr, flush=True)
        return summary


# ----------------------------------------------------------------------------- folder planning


@dataclass
class _Job:
    src: Path
    dst: Path


def _plan(src: Path, dst: Path, ext: str, suffix: str) -> tuple[list[_Job], list[str]]:
    """The (input, output) pairs, and one message per input whose output another input takes."""
    from i2i.data.io import IMAGE_EXTENSIONS, list_images

    if ext not in OUTPUT_EXTENSIONS:
        raise UsageError(f"ext must be one of {', '.join(OUTPUT_EXTENSIONS)}, not {ext!r}")
    if not src.exists():
        raise I2IError(f"{src}: no such file or folder")
    if src.is_file():
        if dst.suffix.lower() in IMAGE_EXTENSIONS:  # OUTPUT names the output file
            return [_Job(src, dst)], []
        return [_Job(src, dst / _output_name(src, ext, suffix))], []
    skip = dst.resolve()
    jobs: list[_Job] = []
    taken: dict[Path, Path] = {}
    collisions: list[str] = []
    for path in list_images(src, recursive=True):
        if skip in path.resolve().parents:
            continue  # OUTPUT inside INPUT: never translate our own outputs on a rerun
        out = dst / path.relative_to(src).parent / _output_name(path, ext, suffix)
        if out in taken:
            collisions.append(f"{path}: its output {out} is already made from {taken[out]} "
                              "(use --ext same or --suffix)")
            continue
        taken[out] = path
        jobs.append(_Job(path, out))
    return jobs, collisions


def _output_name(path: Path, ext: str, suffix: str) -> str:
    extension = path.suffix if ext == "same" else f".{ext}"
    return f"{path.stem}{suffix}{extension}"


def _message(path: Path, error: BaseException) -> str:
    """One line naming the file."""
    text = one_line(error, typed=not isinstance(error, I2IError))
    return text if str(path) in text else f"{path}: {text}"


# ----------------------------------------------------------------------------- pixel helpers


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _window(start: int, stop: int, pad: int, size: int, least: int) -> tuple[int, int]:
    """The input rows (or columns) a tile [start, stop) is computed from; >= `least` long."""
    lo, hi = max(start - pad, 0), min(stop + pad, size)
    if hi - lo < least:
        lo = max(hi - least, 0)
    return lo, hi


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
    from i2i.data.color import rgb_to_lab01

    rgb = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    return rgb_to_lab01(rgb)[0]


def _split_alpha_channels(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """2 channels = gray + alpha, 4 = RGB + alpha; the last one is the alpha."""
    channels = x.shape[dim]
    if channels in (2, 4):
        return x.narrow(dim, 0, channels - 1), x.narrow(dim, channels - 1, 1)
    return x, None

