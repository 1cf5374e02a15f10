"""`Translator`: the public face of inference, one call for an image of any kind and one
for a folder; the rooms it is made of are beside it in this package."""
from __future__ import annotations

import functools
import os
from typing import Any, Callable

import numpy as np
import torch

from i2i.data import io
from i2i.infer.folder import Summary, run_folder
from i2i.infer.images import check_alpha_upsampler, check_outscale, translate_batch, translate_image
from i2i.infer.model import ImageModel, check_tiles


class Translator(ImageModel):
    """A generator plus everything around it: ranges, channels, padding, tiles, precision.

    `Translator(net, spec)` runs `net` as `spec` (an `i2i.spec.ModelSpec`; by default the
    one the network implies) says; `i2i.load_model` builds one from a model file.
    `precision="auto"`: bf16 where the hardware computes it natively, but on the CPU only
    if it is faster for *this* network, and `channels_last=None`: the faster layout; on the
    CPU both are measured at the first forward pass (`i2i.infer.speed`). `tile` and
    `tile_pad`: the defaults of the calls (`i2i.infer.tiles`; 0: whole images).

    `test_mode` ("train" or "eval"; None: the model's `test_mode` setting) and `seed`:
    "train" runs the generator as the pix2pix paper and the reference's test.py do (batch
    statistics, dropout with masks seeded by `seed`, one image at a time); "eval" uses the
    running statistics and no dropout (`i2i.infer.model`).
    """

    def __call__(self, image: Any, *, tile: int | None = None, tile_pad: int | None = None,
                 outscale: float | None = None, alpha_upsampler: str = "model") -> Any:
        """Translate a PIL image, a numpy array (HxWxC or HxW; uint8, uint16 or float in [0,1])
        or a CxHxW / NxCxHxW float tensor in [0,1]; returns the same kind. Floats outside [0, 1]
        (0..255, or a network's [-1, 1]), NaN, infinities and empty images are a UsageError.

        A PIL image comes back in the same mode family (L/LA/RGB/RGBA, I;16 for 16-bit gray;
        Pillow has no 16-bit colour, so 16-bit gray into a colour model comes back 8-bit RGB).
        An alpha channel (the last of 2 or 4 channels) is kept; SR models run it through the
        network too (`alpha_upsampler="model"`, Real-ESRGAN's default) or resize it bicubically
        ("resize", cheaper). `outscale` (Real-ESRGAN's): the output is resized with Lanczos to
        int(side * outscale) of the input's sides (None: the model's scale). A PIL image is taken
        as it is: apply PIL.ImageOps.exif_transpose first if it may be rotated (`translate_folder`
        turns files upright itself).
        """
        options = {"tile": tile, "tile_pad": tile_pad, "alpha_upsampler": alpha_upsampler, "outscale": outscale}
        return translate_image(image, functools.partial(self.translate_tensor, **options),
                               functools.partial(self.translate_arrays, **options))

    def default_workers(self) -> int:
        """How many batches `translate_folder` translates at once: on the CPU one per torch
        thread, each computing on a single thread; on a GPU one.

        With many images, one single-threaded model per core beats one model spread over all
        cores: no core waits for the others at every layer, and the decoding and encoding
        threads slot in without stalling a whole layer (benchmarks/README.md). Each worker
        holds its own batch, so memory grows with `workers`.
        """
        if self.stochastic:  # the seeded forward passes take turns
            return 1
        return torch.get_num_threads() if self.device.type == "cpu" else 1

    def translate_folder(self, src: str | os.PathLike, dst: str | os.PathLike, *, ext: str = "png",
                         suffix: str = "", batch_size: int = 1, tile: int | None = None,
                         tile_pad: int | None = None, overwrite: bool = False, quality: int = 95,
                         workers: int | None = None, progress: bool = True, ab_side: str | None = None,
                         outscale: float | None = None, alpha_upsampler: str = "model",
                         keep_metadata: bool = False) -> Summary:
        """Translate an image or a folder tree into `dst`, mirroring its sub-folders.

        Outputs keep their input's stem (+ `suffix`) with extension `ext` ("png", "jpg" or
        "same"); for one image, a `dst` with an image extension names the output file
        (`i2i.infer.folder.check_paths` says what is refused). Existing outputs are skipped
        unless `overwrite`, so an interrupted run continues where it stopped; writes are
        atomic. Images of one size are batched (`batch_size`), decoded ahead and written
        behind in threads while the model runs. A bad file costs one stderr line naming it
        and the run goes on; a folder without images is an I2IError. With `progress`, a
        progress bar (on a terminal) and a summary line are printed to stderr.

        `workers` batches are translated at once, in threads: by default `default_workers()`,
        or 1 with tiles (tiles mean memory is short; each worker holds a whole image). On the
        CPU the torch threads are split between them for the call (torch.set_num_threads, a
        process-wide setting, is restored at the end).

        `ab_side` ("A" or "B"): the inputs are pix2pix pairs side by side (A|B, the reference's
        aligned layout); translate only that half of each, as the reference's test.py does.

        `outscale` and `alpha_upsampler`: as `__call__`. An output too small (under 1 px) or too
        large for its format fails before it is computed; with an outscale other than the
        model's, huge images are resized whole, not streamed to their PNG a row at a time.

        Each output carries its input's colour profile (ICC) where it fits; with `keep_metadata`
        its EXIF too (date, camera, GPS), made true of the output (`i2i.data.io.upright_exif`).
        """
        tile, tile_pad = check_tiles(self.tile if tile is None else tile,  # once here, not once per image
                                     self.tile_pad if tile_pad is None else tile_pad)
        outscale, alpha_upsampler = check_outscale(outscale), check_alpha_upsampler(alpha_upsampler)
        translate = functools.partial(self.translate_arrays, tile=tile, tile_pad=tile_pad,
                                      alpha_upsampler=alpha_upsampler, outscale=outscale)

        def stream(image: io.Image, write_rows: Callable[[np.ndarray, int], None]) -> None:
            self.translate_streamed(image.pixels, write_rows, tile=tile, tile_pad=tile_pad, name=str(image.path))

        return run_folder(src, dst, functools.partial(translate_batch, translate=translate), ext=ext, suffix=suffix,
                          batch_size=batch_size, overwrite=overwrite, quality=quality, workers=workers,
                          default_workers=1 if tile else self.default_workers(),
                          split_threads=self.device.type == "cpu", progress=progress, ab_side=ab_side,
                          stream=stream if outscale in (None, self.scale) else None, scale=self.scale,
                          outscale=outscale, keep_metadata=keep_metadata)
