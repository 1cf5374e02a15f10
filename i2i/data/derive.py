"""`i2i data derive`: training pairs written to disk from a folder of photos.

Reads only image files (`i2i.data.io.list_images`); a file that fails to decode is
reported on one line and skipped.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from i2i.atomic import WriteError, atomic_path, write_errors
from i2i.errors import I2IError, UsageError
from i2i.progress import progress_bar

DERIVE_TASKS = ("sketch", "colorize", "sr")
ALIASES = {"gray": "colorize"}  # its first name; `i2i train --task colorize` is the same pairs


@dataclass
class DeriveResult:
    written: int
    problems: list[str]


def derive_pairs(task: str, src: Path | str, dst: Path | str, scale: int = 4, *,
                 overwrite: bool = False) -> DeriveResult:
    """Write `dst/A/<stem>.png` (inputs) and `dst/B/<stem>.png` (targets) for every image of
    `src` (recursively), keeping each file's stem:

    * `sketch`: A = the photo, B = its XDoG sketch (8-bit gray, `i2i.data.sketch`);
    * `colorize` (or `gray`): A = BT.601 luminance (1 channel, the photo's bit depth), B = the photo;
    * `sr`:     B = the photo mod-cropped to `scale`, A = MATLAB `imresize(B, 1/scale)`
                in B's integer type (bit-identical to MATLAB's uint8 output), so every B
                is exactly `scale` times its A.

    Alpha is dropped (the pairs are for training). A file that fails to decode, one too
    small for the task, or a second file with the same stem, is one line in `problems`;
    the others are written. A full or read-only disk stops the run at the first pair it
    fails (its line, the last in `problems`): every later pair would fail the same way.
    `dst` must lie outside `src` (the next scan would read the pairs as photos), and its A/
    and B/ must hold no images unless `overwrite` (same stems replaced).
    """
    from i2i.data.io import file_problem, list_images, no_images_hint, read_image

    task = ALIASES.get(task, task)
    if task not in DERIVE_TASKS:
        raise UsageError(f"unknown task {task!r}; choose one of {', '.join(DERIVE_TASKS)}")
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise I2IError(f"{src}/ does not exist or is not a folder")
    if task == "sr" and int(scale) < 2:
        raise UsageError(f"--scale must be 2 or more for sr, got {scale}")
    real_src, real_dst = Path(os.path.realpath(src)), Path(os.path.realpath(dst))  # a loop of links: no raise
    if real_dst == real_src or real_src in real_dst.parents:
        raise UsageError(f"{dst}/ is inside {src}/: the pairs would be read as photos next time; "
                         "choose an output folder outside it")
    files = list_images(src)
    if not files:
        raise UsageError(f"{src}/ has no images{no_images_hint(src)}")
    held = [side for side in ("A", "B") if (dst / side).is_dir() and list_images(dst / side, recursive=False)]
    if held and not overwrite:
        raise UsageError(f"{dst}/{held[0]} already holds images; pass --overwrite to write into it "
                         "(pairs with the same names are replaced, the others stay)")
    for side in ("A", "B"):
        try:
            (dst / side).mkdir(parents=True, exist_ok=True)
        except OSError as error:  # read-only, a file in the way, a loop of links
            raise I2IError(f"{dst / side}/: cannot make the folder ({error.strerror or error})") from None
    seen: dict[str, Path] = {}
    problems: list[str] = []
    written = 0
    for path in progress_bar(files, f"derive {task}"):
        if path.stem in seen:
            problems.append(f"{path}: same stem as {seen[path.stem]}; skipped (stems name the outputs)")
            continue
        seen[path.stem] = path
        try:
            a, b = _pair(task, read_image(path).pixels, scale)
            _write_pair(dst, f"{path.stem}.png", a, b)
        except I2IError as error:  # unreadable, too small for the task, or its pair not writable
            problems.append(file_problem(path, error))
            if isinstance(error, WriteError) and error.no_room:
                problems[-1] += (f"; stopped after {written} pair{'s' if written != 1 else ''} written (run the "
                                 "same command again with --overwrite once the disk has room and is writable)")
                break
            continue
        written += 1
    return DeriveResult(written, problems)


def _write_pair(dst: Path, name: str, a: np.ndarray, b: np.ndarray) -> None:
    """A/name and B/name, or neither: both go to temp files, renamed (B, then A) only once both
    are written, so a failed write leaves the pair that was there; should A's rename fail after
    B's, a B that had no A before is removed again (with --overwrite the old A stays beside the
    new B: a rename in a folder that just took a file is all that can fail there)."""
    from i2i.data.io import encode_image

    a_path, b_path = dst / "A" / name, dst / "B" / name
    a_png, b_png = encode_image(".png", a), encode_image(".png", b)
    b_is_new = not b_path.exists()
    try:
        with write_errors(a_path), atomic_path(a_path) as a_tmp:
            a_tmp.write_bytes(a_png)
            with write_errors(b_path), atomic_path(b_path) as b_tmp:
                b_tmp.write_bytes(b_png)
    except I2IError:
        if b_is_new and not a_path.exists():  # A's rename failed: no B without its A
            b_path.unlink(missing_ok=True)
        raise


def _pair(task: str, pixels: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) of one photo; an image too small for the task is an I2IError (one line)."""
    import torch

    from i2i.data.bicubic import imresize, modcrop, round_to
    from i2i.data.datasets import gray
    from i2i.data.io import to_tensor
    from i2i.data.sketch import sketch

    if task == "sr":
        b = modcrop(pixels, scale)
        if min(b.shape[:2]) < scale:
            raise I2IError(f"{pixels.shape[1]}x{pixels.shape[0]} is smaller than the scale {scale}")
        return imresize(b, scale=1.0 / scale), b
    if task == "colorize":
        return gray(pixels), pixels
    with torch.no_grad():
        lines = sketch(to_tensor(pixels))
    return pixels, round_to(lines.numpy().transpose(1, 2, 0) * 255.0, np.uint8)
