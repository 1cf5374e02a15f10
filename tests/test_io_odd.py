"""i2i.data.io on odd files a tester found: a 16-bit TIFF with an Orientation tag, damaged EXIF,
PNGs whose image data ends early, a bad I2I_MAX_PIXELS, decoder noise on stderr, lazily opened
PIL images and big-endian arrays. Every file is tiny and written here."""
from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageOps
import pytest

from i2i.data import io as iio
from i2i.errors import ImageReadError, UsageError

RNG = np.random.default_rng(7)
H, W = 5, 7  # not square, so a rotation or a transposition shows


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def png_file(width: int, height: int, depth: int, colour_type: int, image_data: bytes, *,
             extra: bytes = b"", interlaced: bool = False) -> bytes:
    """A PNG with this header and these (already filtered, uncompressed) image data bytes."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, int(interlaced))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + extra
            + png_chunk(b"IDAT", zlib.compress(image_data)) + png_chunk(b"IEND", b""))


def assert_one_line(error: pytest.ExceptionInfo, path: Path, *words: str) -> None:
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(path)), message
    for word in words:
        assert word in message.lower(), message


# ----------------------------------------------------------------- orientation, applied once


def with_tiff_orientation(tiff: bytes, orientation: int) -> bytes:
    """encode_tiff16's TIFF (little-endian, its IFD last in the file) with an Orientation tag."""
    ifd = int.from_bytes(tiff[4:8], "little")
    count = int.from_bytes(tiff[ifd:ifd + 2], "little")
    entries = [tiff[ifd + 2 + 12 * i:ifd + 14 + 12 * i] for i in range(count)]
    entries.append(struct.pack("<HHIHH", 274, 3, 1, orientation, 0))  # SHORT, 1 value
    entries.sort(key=lambda entry: int.from_bytes(entry[:2], "little"))
    return tiff[:ifd] + len(entries).to_bytes(2, "little") + b"".join(entries) + bytes(4)


@pytest.mark.parametrize("channels", [1, 3, 4])  # gray (Pillow decodes), RGB and RGBA (OpenCV)
@pytest.mark.parametrize("orientation", range(1, 9))
def test_16bit_tiff_orientation_is_applied_once(tmp_path: Path, channels: int, orientation: int) -> None:
    # OpenCV's TIFF decoder turns the pixels by the tag itself, even with IMREAD_UNCHANGED
    stored = RNG.integers(0, 256, (H, W, channels), dtype=np.uint8)
    eight = io.BytesIO()
    PIL.Image.fromarray(stored[..., 0] if channels == 1 else stored).save(eight, "TIFF", tiffinfo={274: orientation})
    upright = np.asarray(PIL.ImageOps.exif_transpose(PIL.Image.open(eight)))  # Pillow's own turn, 8 bits
    upright = upright[..., None] if channels == 1 else upright
    path = tmp_path / "turned.tif"
    path.write_bytes(with_tiff_orientation(iio.encode_tiff16(stored.astype(np.uint16) * 257), orientation))
    image = iio.read_image(path)
    got = image.pixels if image.alpha is None else np.dstack([image.pixels, image.alpha])
    assert image.bit_depth == 16 and got.shape == upright.shape
    assert np.array_equal(got, upright.astype(np.uint16) * 257)


# ----------------------------------------------------------------- damaged EXIF


@pytest.mark.filterwarnings("ignore:Corrupt EXIF")  # in-process: pytest dropped i2i's filter (see below)
def test_corrupt_exif_reads_as_stored_without_a_warning(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 256, (8, 10, 3), dtype=np.uint8)
    files = []
    for name in ("badexif.png", "badexif.jpg"):
        files.append(tmp_path / name)
        PIL.Image.fromarray(pixels).save(files[-1], exif=b"Exif\0\0MM\0*\0\0\0\x08\0\x05garbage")
    assert np.array_equal(iio.read_image(files[0]).pixels, pixels)  # no orientation: as stored
    assert iio.read_image(files[1]).pixels.shape == (8, 10, 3)
    # Pillow's two-line "Corrupt EXIF data" warning, as a user's process shows it (pytest swaps
    # the warning filters around each test and around collection, dropping i2i's)
    code = "import sys\nfrom i2i.data.io import read_image\nfor name in sys.argv[1:]: read_image(name)"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    result = subprocess.run([sys.executable, "-c", code, *map(str, files)], capture_output=True, text=True,
                            timeout=120, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert "EXIF" not in result.stderr and "Warning" not in result.stderr, result.stderr


# ----------------------------------------------------------------- I2I_MAX_PIXELS


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5e9"])
def test_bad_max_pixels_setting_is_one_usage_error_not_a_bad_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   value: str) -> None:
    monkeypatch.setenv(iio.MAX_PIXELS_ENV, value)
    with pytest.raises(UsageError) as error:
        iio.check_environment()
    message = str(error.value)
    assert "\n" not in message and iio.MAX_PIXELS_ENV in message and repr(value) in message
    path = tmp_path / "fine.png"
    PIL.Image.fromarray(RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(path)
    with pytest.raises(UsageError) as error:  # the setting's fault, not the file's
        iio.read_image(path)
    assert not isinstance(error.value, ImageReadError)


def test_good_max_pixels_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, limit in (("1_000_000", 1_000_000), (" 4000 ", 4000), ("", iio.DEFAULT_MAX_PIXELS)):
        monkeypatch.setenv(iio.MAX_PIXELS_ENV, value)
        iio.check_environment()
        assert iio.max_pixels_limit() == limit
    monkeypatch.delenv(iio.MAX_PIXELS_ENV)
    assert iio.max_pixels_limit() == iio.DEFAULT_MAX_PIXELS
    with pytest.raises(UsageError, match="max_pixels"):
        iio.decode_bytes(b"\x89PNG", max_pixels=0)


# ----------------------------------------------------------------- noise on stderr


def test_corrupt_16bit_tiff_prints_only_i2i_line(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    data = bytearray(iio.encode_tiff16(RNG.integers(0, 65536, (40, 30, 3), dtype=np.uint32).astype(np.uint16)))
    data[20:60] = b"\x13" * 40  # inside the Deflate strip, which starts at byte 8
    path = tmp_path / "broken16.tif"
    path.write_bytes(bytes(data))
    capfd.readouterr()
    with pytest.raises(ImageReadError) as error:
        iio.read_image(path)
    assert_one_line(error, path, "corrupt")
    assert capfd.readouterr().err == ""  # no OpenCV / libtiff lines


# ----------------------------------------------------------------- PNG data that ends early

PALETTE = png_chunk(b"PLTE", bytes(range(48)))  # 16 entries
SHORT = {  # name: (depth, colour type, bytes a row of 16 pixels, extra chunks); Pillow decodes all
    "gray16": (16, 0, 32, b""),
    "palette": (8, 3, 16, PALETTE),
    "palette-2bit": (2, 3, 4, PALETTE),
    "gray-1bit": (1, 0, 2, b""),
    "gray-2bit": (2, 0, 4, b""),
    "gray-4bit": (4, 0, 8, b""),
    "gray-alpha": (8, 4, 32, b""),
    "gray-colour-key": (8, 0, 16, png_chunk(b"tRNS", b"\0\x05")),
    "rgb-colour-key": (8, 2, 48, png_chunk(b"tRNS", b"\0\x05\0\x05\0\x05")),
}


@pytest.mark.parametrize("name", sorted(SHORT))
def test_png_whose_image_data_ends_early_is_refused(tmp_path: Path, name: str) -> None:
    depth, colour_type, row, extra = SHORT[name]
    path = tmp_path / f"{name}.png"
    path.write_bytes(png_file(16, 24, depth, colour_type, b"\0" + b"\x80" * row, extra=extra))  # 1 row of 24
    with pytest.raises(ImageReadError) as error:
        iio.read_image(path)
    assert_one_line(error, path, "truncated")


def test_interlaced_png_whose_image_data_ends_early_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "interlaced.png"
    path.write_bytes(png_file(16, 24, 8, 3, b"\0\x01\x02", extra=PALETTE, interlaced=True))  # pass 1's first row
    with pytest.raises(ImageReadError) as error:
        iio.read_image(path)
    assert_one_line(error, path, "truncated")


ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def test_complete_pngs_ending_in_a_blank_row_still_read(tmp_path: Path) -> None:
    # a last row of 0 is what missing rows look like, so these get the full check, and pass it
    indices = RNG.integers(0, 16, (24, 16), dtype=np.uint8)
    indices[-1] = 0
    palette = PIL.Image.fromarray(indices, "P")
    palette.putpalette(bytes(range(48)))
    palette.save(tmp_path / "p.png")
    expected = np.asarray(palette.convert("RGB"))
    assert np.array_equal(iio.read_image(tmp_path / "p.png").pixels, expected)
    gray16 = RNG.integers(0, 65536, (24, 16), dtype=np.uint32).astype(np.uint16)
    gray16[-1] = 0
    PIL.Image.fromarray(gray16).save(tmp_path / "g16.png")
    assert np.array_equal(iio.read_image(tmp_path / "g16.png").pixels[..., 0], gray16)
    passes = b"".join(b"\0" + indices[y0::dy, x0::dx][row].tobytes()  # Adam7, filter None
                      for x0, y0, dx, dy in ADAM7 for row in range(len(indices[y0::dy, x0::dx])))
    (tmp_path / "i.png").write_bytes(png_file(16, 24, 8, 3, passes, extra=PALETTE, interlaced=True))
    assert np.array_equal(iio.read_image(tmp_path / "i.png").pixels, expected)


# ----------------------------------------------------------------- PIL images and arrays


def test_lazily_opened_truncated_pil_image_is_named_truncated(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    PIL.Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    path = tmp_path / "trunc.png"
    path.write_bytes(buffer.getvalue()[:len(buffer.getvalue()) // 2])
    with PIL.Image.open(path) as lazy, pytest.raises(ImageReadError) as error:
        iio.pil_to_arrays(lazy)
    assert_one_line(error, path, "truncated")
    assert "colour mode" not in str(error.value)


def test_big_endian_uint16_arrays_are_taken(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 65536, (H, W, 3), dtype=np.uint32).astype(np.uint16)
    swapped = pixels.astype(">u2")
    iio.write_image(tmp_path / "be.png", swapped, alpha=swapped[..., 0])
    image = iio.read_image(tmp_path / "be.png")
    assert np.array_equal(image.pixels, pixels) and np.array_equal(image.alpha, pixels[..., 0])
    assert np.array_equal(iio.to_tensor(swapped).numpy(), iio.to_tensor(pixels).numpy())
    assert np.array_equal(iio.to_dtype(swapped, np.uint8), iio.to_dtype(pixels, np.uint8))
