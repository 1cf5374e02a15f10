"""Scoring super-resolution on a folder of HR images: the bicubic baseline, and the
pieces a model's evaluation reuses (`score_pair`, `format_table`, `write_json`).

Two protocols, both described in ../shared/data/README.md:

* ``"default"`` (how EDSR, RCAN and BasicSR score a model): HR = modcrop(HR, s);
  LR = imresize(HR, 1/s) on the uint8 RGB image; the output (here SR = imresize(LR, s))
  as uint8 RGB; then Y (BT.601, not rounded), crop s pixels, PSNR/SSIM.
* ``"vdsr"`` (the MATLAB test code of VDSR/DRRN, which produced the published bicubic
  rows): Y is taken first and rounded to uint8 (`rgb2ycbcr` on uint8), the Y plane is
  resized down and up in double, the upscaled Y is rounded to uint8, then crop and score.
  This protocol is defined for 8-bit images: a 16-bit image's Y is rounded to 8 bits too.

`i2i eval bicubic` uses "vdsr": it reproduces the published rows to 0.01 dB / 0.001 SSIM.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from i2i.data.bicubic import imresize, modcrop, round_to
from i2i.errors import I2IError, UsageError
from i2i.metrics import crop_border, min_scored_size, psnr, rgb_to_y, ssim, y_pair

PROTOCOLS = ("vdsr", "default")


def score_pair(sr: np.ndarray, hr: np.ndarray, scale: int) -> tuple[float, float]:
    """(PSNR-Y, SSIM-Y) of an SR output against its (mod-cropped) HR image.

    Both are uint8 (or uint16) HxWxC arrays of the same shape; a model's output must be
    rounded to uint8 RGB first. Y is BT.601 in [0, 255] units, `scale` pixels are cropped
    from every border (steps 3-5 of the default protocol).
    """
    y_sr, y_hr = y_pair(sr, hr, scale)
    return psnr(y_sr, y_hr), ssim(y_sr, y_hr)


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def bicubic_scores(hr: np.ndarray, scale: int, protocol: str = "vdsr") -> tuple[float, float]:
    """(PSNR-Y, SSIM-Y) of bicubic down- and up-scaling of one HR image by `scale`."""
    _check_protocol(protocol)
    return _bicubic_scores(hr, scale, protocol)


def _bicubic_scores(hr: np.ndarray, scale: int, protocol: str) -> tuple[float, float]:
    """`bicubic_scores` with `protocol` already checked (once per folder, not per image)."""
    hr = modcrop(hr, scale)
    if protocol == "default":
        sr = imresize(imresize(hr, 1 / scale), scale)
        return score_pair(sr, hr, scale)
    y_hr = round_to(rgb_to_y(hr), np.uint8).astype(np.float64)
    y_sr = round_to(imresize(imresize(y_hr, 1 / scale), scale), np.uint8).astype(np.float64)
    y_hr, y_sr = crop_border(y_hr, scale), crop_border(y_sr, scale)
    return psnr(y_sr, y_hr), ssim(y_sr, y_hr)


def _hr_images(data_dir: str | os.PathLike) -> list[Path]:
    """The image files directly in `data_dir` (others ignored); one-line errors if none."""
    from i2i.data.io import list_images

    root = Path(data_dir)
    if not root.is_dir():
        raise I2IError(f"{root}: not a folder")
    paths = list_images(root, recursive=False)
    if not paths:
        from i2i.data.io import no_images_hint

        raise I2IError(f"{root}: no images found{no_images_hint(root, recursive=False)}")
    return paths


def _read_hr(path: Path, scale: int) -> np.ndarray:
    """An HR image's pixels; one too small to score at `scale` is one line naming it, before
    any work: after the mod-crop, a `scale`-pixel border on each side and SSIM's window must fit."""
    from i2i.data.io import read_image

    pixels = read_image(path).pixels
    h, w = pixels.shape[:2]
    needed = min_scored_size(scale)
    if min(h // scale, w // scale) * scale < needed:
        smallest = -(-needed // scale) * scale  # the mod-crop keeps multiples of the scale
        raise I2IError(f"{path}: {w}x{h} is too small for x{scale} with a {scale}-pixel border "
                       f"(at least {smallest}x{smallest} pixels)")
    return pixels


def _add_scores(
    per_image: dict[str, dict[str, float]], path: Path, score: Callable[..., tuple[float, float]], *args: Any
) -> None:
    """per_image[stem] = score(*args) as PSNR-Y/SSIM-Y (the file name when two files share a
    stem); a ValueError (too small for SSIM after cropping, channels a model changed) is a
    one-line I2IError naming the file."""
    try:
        psnr_y, ssim_y = score(*args)
    except ValueError as error:
        raise I2IError(f"{path}: {error}") from None
    key = path.stem if path.stem not in per_image else path.name
    per_image[key] = {"psnr_y": psnr_y, "ssim_y": ssim_y}


def summarize(per_image: dict[str, dict[str, float]], **extra: Any) -> dict[str, Any]:
    """The result dict every SR evaluation returns: means, counts, per-image figures.

    An image reconstructed exactly (on Y, inside the border) has PSNR-Y inf, which stays in
    its own row; one such image (a flat one, say) would make the mean inf and hide the
    others, so the PSNR-Y mean is over the other images and "n_exact" counts those left out
    (the mean is inf if every image is exact). SSIM-Y is finite for every image: its mean is over all.
    """
    n = len(per_image)
    finite = [v["psnr_y"] for v in per_image.values() if v["psnr_y"] != math.inf]
    return {
        "psnr_y": sum(finite) / len(finite) if finite else math.inf,
        "ssim_y": sum(v["ssim_y"] for v in per_image.values()) / n,
        "n_images": n,
        "n_exact": n - len(finite),
        **extra,
        "per_image": per_image,
    }


def evaluate_bicubic(
    data_dir: str | os.PathLike, scale: int, protocol: str = "vdsr"
) -> dict[str, Any]:
    """Bicubic baseline on a folder of HR images.

    Returns `{"psnr_y", "ssim_y", "n_images", "n_exact", "scale", "protocol", "per_image":
    {stem: {"psnr_y", "ssim_y"}}}`, the means taken over images (see `summarize`).
    """
    from i2i.data.datasets import sr_folders

    _check_protocol(protocol)
    if int(scale) != scale or scale < 1:
        raise UsageError(f"scale must be a positive integer, got {scale}")
    scale = int(scale)
    paths = _hr_images(sr_folders(data_dir, scale, lr_flag=None, recursive=False)[0])  # DATA/HR, DATA/B or DATA itself; no --lr here
    for path in paths:  # every file read first: a bad one is one line, not the end of a long run
        _read_hr(path, scale)
    per_image: dict[str, dict[str, float]] = {}
    for path in paths:
        _add_scores(per_image, path, _bicubic_scores, _read_hr(path, scale), scale, protocol)
    return summarize(per_image, scale=scale, protocol=protocol)


def format_table(result: dict[str, Any]) -> str:
    """A per-image table with the mean as the last row (PSNR-Y in dB, SSIM-Y), and one line
    saying how many exact images (PSNR-Y inf) the PSNR-Y mean leaves out, if any."""
    names = list(result["per_image"])
    n, exact = result["n_images"], result.get("n_exact", 0)
    mean_label = f"mean ({n})"
    width = max([len("image"), len(mean_label), *map(len, names)])
    lines = [f"{'image':<{width}}  {'PSNR-Y':>8}  {'SSIM-Y':>7}"]
    for name in names:
        row = result["per_image"][name]
        lines.append(f"{name:<{width}}  {row['psnr_y']:8.3f}  {row['ssim_y']:7.4f}")
    lines.append("-" * len(lines[0]))
    mean_psnr = f"{result['psnr_y']:8.3f}" if exact < n else f"{'-':>8}"
    lines.append(f"{mean_label:<{width}}  {mean_psnr}  {result['ssim_y']:7.4f}")
    if exact == n:
        lines.append(f"PSNR-Y: {'the image is' if n == 1 else f'all {n} images are'} reconstructed exactly "
                     "(inf), so there is no PSNR-Y mean")
    elif exact:
        lines.append(f"PSNR-Y mean over {n - exact} of {n} images: {exact} reconstructed exactly (inf) left out")
    if result.get("lr"):
        lines.append(f"LR images from {result['lr']}/ (not bicubic downscales of the HR images)")
    return "\n".join(lines)


def _finite_or_none(value: Any) -> Any:
    """Strict JSON has no inf/nan: store them as null (PSNR of identical images is inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    return value


def json_text(result: dict[str, Any]) -> str:
    """A result dict as strict JSON (an infinite PSNR as null), what `--json` writes."""
    return json.dumps(_finite_or_none(result), indent=2) + "\n"


def write_json(result: dict[str, Any], path: str | os.PathLike) -> None:
    """Write a result dict as strict JSON, atomically (temp file + rename)."""
    from i2i.atomic import write_text

    write_text(path, json_text(result))


# ----------------------------------------------------------------------------- a model's figures

#: What `--lpips` / `--fid` would need; i2i computes neither itself and never downloads.
OPTIONAL_METRICS = {
    "lpips": "the 'lpips' package (pip install lpips) and torchvision's AlexNet weights as a local file "
             "($TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth)",
    "fid": "the 'torch-fidelity' package (pip install torch-fidelity) and its Inception weights as a local "
           "file ($TORCH_HOME/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth)",
}


def optional_metric_error(name: str) -> I2IError:
    """The one-line error for an optional metric this install cannot compute."""
    return UsageError(f"--{name} is not available: it needs {OPTIONAL_METRICS[name]}; "
                      "i2i installs and downloads neither")


def _lr_images(lr_dir: str | os.PathLike, scale: int, hr_dir: str | os.PathLike,
               hr_paths: list[Path]) -> dict[str, Path]:
    """LR files by the HR stem they belong to ('baby', 'babyx4', 'baby_x4' -> 'baby'), every
    HR image with one and no LR file without its HR, checked before scoring."""
    from i2i.data.datasets import pair_lr_files  # the same matching rule as training's LR folders
    from i2i.data.io import list_images

    root = Path(lr_dir)
    if not root.is_dir():
        raise I2IError(f"{root}: not a folder (--lr)")
    pairs = pair_lr_files(Path(hr_dir), hr_paths, root, list_images(root, recursive=False), scale)
    return {hr.stem: lr for hr, lr in pairs}


def evaluate_model(
    model: str | os.PathLike,
    data_dir: str | os.PathLike,
    scale: int | None = None,
    *,
    lr_dir: str | os.PathLike | None = None,
    device: str = "auto",
    precision: str = "fp32",
    tile: int = 0,
) -> dict[str, Any]:
    """A super-resolution model's PSNR-Y/SSIM-Y on a folder of HR images ("default" protocol).

    Each HR image is mod-cropped to the scale; its LR is MATLAB `imresize(HR, 1/scale)` on
    the uint8 image (or the file of `lr_dir` with the same stem, `baby`/`babyx4`/`baby_x4`,
    given the HR image's channels: a gray LR of an RGB HR is replicated to RGB, as inference
    gives gray to an RGB model); the model runs through `i2i.infer.load_model`, as
    `i2i translate` runs it, and its output, rounded to uint8, is scored with `score_pair`
    (Y, border `scale`). Every file is read before the model runs (twice in all: decoding is
    cheap beside the model), so an unreadable one, an HR image too small for the scale and
    border, or an LR of the wrong size is one line naming it before any work, not after it.
    `precision` defaults to fp32 so figures do not depend on the hardware's half-precision
    support.

    `data_dir` may also be a folder in the layouts `i2i train srgan` reads: DATA/HR with
    DATA/LR (or DATA/LR/X<scale>), DATA/B with DATA/A (`i2i data derive sr`); their LR files
    are then used as `lr_dir`'s would be.

    Returns `summarize(...)`'s dict plus "scale", "protocol", "model" and "lr" (the LR folder
    used, None for bicubic LR).
    """
    from i2i.data.datasets import lr_size_problem, sr_folders, to_channels
    from i2i.data.io import read_image
    from i2i.infer import load_model, resolve_model_path

    path = resolve_model_path(model)
    translator = load_model(path, device=device, precision=precision)
    if translator.scale == 1:
        raise UsageError(f"{path}: not a super-resolution model (its output is the input's size)")
    if scale is None:
        scale = translator.scale
    if scale != translator.scale:
        raise UsageError(f"{path} upscales x{translator.scale}, not x{scale}: use --scale {translator.scale}")
    # DATA/HR + DATA/LR[/X<s>], DATA/B + DATA/A, --lr DIV2K_train_LR_bicubic[/X<s>]: as `i2i train srgan` reads them
    data_dir, lr_dir = sr_folders(data_dir, scale, lr_dir, lr_flag="--lr", recursive=False)
    hr_paths = _hr_images(data_dir)
    lr_files = _lr_images(lr_dir, scale, data_dir, hr_paths) if lr_dir is not None else None

    def load(hr_path: Path) -> tuple[np.ndarray, np.ndarray | None]:
        """(HR mod-cropped, its LR file's pixels or None for bicubic), or one line naming the file."""
        hr = modcrop(_read_hr(hr_path, scale), scale)
        if lr_files is None:
            return hr, None
        lr = to_channels(read_image(lr_files[hr_path.stem]).pixels, hr.shape[2])  # every HR has one
        problem = lr_size_problem(lr.shape, hr.shape, lr_files[hr_path.stem], hr_path, scale)
        if problem:
            raise I2IError(problem)
        return hr, lr

    for hr_path in hr_paths:  # every file read before the model runs: a bad one costs no scores
        load(hr_path)
    per_image: dict[str, dict[str, float]] = {}
    for hr_path in hr_paths:
        hr, lr = load(hr_path)
        sr = translator(imresize(hr, 1 / scale) if lr is None else lr, tile=tile)
        _add_scores(per_image, hr_path, score_pair, sr, hr, scale)
    return summarize(per_image, scale=scale, protocol="default", model=str(path),
                     lr=None if lr_dir is None else str(lr_dir))
