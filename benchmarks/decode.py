"""Decoder speed: Pillow vs torchvision.io vs cv2 for 8-bit PNG and JPEG.

    python benchmarks/decode.py [--repeat 20]

The last column, i2i, is `i2i.data.io.decode_bytes` (the chosen decoder with i2i's
header and EXIF checks), to show what the checks cost. Each decoder gets the same encoded bytes (already in memory, so disk speed does not
count) and must produce an H x W x 3 uint8 RGB numpy array, which is what
`i2i.data.io.read_image` returns. The test picture is a real photo from the training set
(`../shared/data/sr/BSD200`, resized with Lanczos) or, without it, a smooth synthetic
picture with noise. Prints the CPU model and milliseconds per image (best of `--repeat`
runs, to filter out the noise of a shared machine).
"""
from __future__ import annotations

import argparse
import io
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from i2i.device import cpu_model

SHARED_PHOTO = Path(__file__).resolve().parents[1].parent / "shared/data/sr/BSD200/100075.png"


def test_picture(size: int) -> np.ndarray:
    if SHARED_PHOTO.is_file():
        photo = Image.open(SHARED_PHOTO).convert("RGB")
        return np.asarray(photo.resize((size, size), Image.Resampling.LANCZOS))
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([x, y, (x + y) / 2], axis=-1) * 200
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def encode(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    options = {"quality": 95} if fmt == "JPEG" else {}
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def decode_pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def decode_torchvision(data: bytes) -> np.ndarray:
    import torch
    from torchvision.io import ImageReadMode, decode_image

    raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return decode_image(raw, ImageReadMode.RGB).permute(1, 2, 0).numpy()


def decode_cv2(data: bytes) -> np.ndarray:
    import cv2

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_i2i(data: bytes) -> np.ndarray:
    """What i2i.data.io.read_image does once the bytes are read (Pillow, plus checks)."""
    from i2i.data.io import decode_bytes

    return decode_bytes(data).pixels


DECODERS = {
    "pillow": decode_pillow,
    "torchvision": decode_torchvision,
    "cv2": decode_cv2,
    "i2i": decode_i2i,
}


def best_ms(decode, data: bytes, repeat: int) -> float:
    decode(data)  # warm-up: imports, library initialisation
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        decode(data)
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)  # torchvision.io's image decoders

    print(f"CPU: {cpu_model()}; best of {args.repeat}, ms per image (lower is better)")
    print(f"{'format':<10}{'size':>10}" + "".join(f"{name:>13}" for name in DECODERS))
    for fmt in ("PNG", "JPEG"):
        for size in (256, 1024):
            pixels = test_picture(size)
            data = encode(pixels, fmt)
            row = f"{fmt:<10}{f'{size}x{size}':>10}"
            for name, decode in DECODERS.items():
                decoded = decode(data)
                assert decoded.shape == pixels.shape and decoded.dtype == np.uint8, name
                if fmt == "PNG":  # lossless: every decoder must agree exactly
                    assert np.array_equal(decoded, pixels), name
                row += f"{best_ms(decode, data, args.repeat):>13.2f}"
            print(row)


if __name__ == "__main__":
    main()
