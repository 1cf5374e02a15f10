"""i2i.data.io: every format and mode read back exactly, bad files named in one line,
atomic writes, folder listing, tensor conversion, and fuzzed bytes that never escape as
anything but ImageReadError. All files are tiny and written by the tests themselves."""
from __future__ import annotations

import io
import os
import zlib
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import PIL.ImageFile
import PIL.ImageOps
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from i2i.data import io as iio
from i2i.errors import I2IError, ImageReadError

RNG = np.random.default_rng(1234)
H, W = 5, 7  # not square, so a rotation or a transposition shows


def random_u8(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def random_u16(*shape: int) -> np.ndarray:
    return RNG.integers(0, 65536, shape, dtype=np.uint32).astype(np.uint16)


def smooth_rgb(height: int = 16, width: int = 24) -> np.ndarray:
    """A gradient: what lossy codecs keep well, so their round trips can be checked."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 128)], -1).astype(np.uint8)


def save_pil(path: Path, image: PIL.Image.Image, **options) -> Path:
    image.save(path, **options)
    return path


def assert_one_line_error(error: pytest.ExceptionInfo, path: Path, *words: str) -> None:
    message = str(error.value)
    assert "\n" not in message and "\r" not in message
    assert str(path) in message
    for word in words:
        assert word in message.lower(), message
    assert error.value.path == path


# --------------------------------------------------------------------------- reading


def test_rgb_png_8bit(tmp_path: Path) -> None:
    pixels = random_u8(H, W, 3)
    path = save_pil(tmp_path / "rgb.png", PIL.Image.fromarray(pixels))
    image = iio.read_image(path)
    assert image.pixels.dtype == np.uint8 and image.bit_depth == 8
    assert np.array_equal(image.pixels, pixels)
    assert image.alpha is None and image.size == (W, H) and image.path == path
    assert image.pixels.flags.writeable and image.pixels.flags.c_contiguous


def test_gray_png_stays_one_channel(tmp_path: Path) -> None:
    gray = random_u8(H, W)
    image = iio.read_image(save_pil(tmp_path / "gray.png", PIL.Image.fromarray(gray)))
    assert image.pixels.shape == (H, W, 1) and np.array_equal(image.pixels[..., 0], gray)
    assert image.alpha is None


def test_gray_alpha_png(tmp_path: Path) -> None:
    gray_alpha = random_u8(H, W, 2)
    image = iio.read_image(save_pil(tmp_path / "la.png", PIL.Image.fromarray(gray_alpha)))
    assert np.array_equal(image.pixels[..., 0], gray_alpha[..., 0])
    assert np.array_equal(image.alpha, gray_alpha[..., 1])


def test_rgba_png(tmp_path: Path) -> None:
    rgba = random_u8(H, W, 4)
    image = iio.read_image(save_pil(tmp_path / "rgba.png", PIL.Image.fromarray(rgba)))
    assert np.array_equal(image.pixels, rgba[..., :3]) and np.array_equal(image.alpha, rgba[..., 3])
    assert image.alpha.flags.c_contiguous


def palette_image() -> tuple[PIL.Image.Image, np.ndarray, np.ndarray]:
    indices = RNG.integers(0, 4, (H, W), dtype=np.uint8)
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], np.uint8)
    image = PIL.Image.frombytes("P", (W, H), indices.tobytes())
    image.putpalette(colours.flatten().tolist())
    return image, indices, colours


def test_palette_png_becomes_rgb(tmp_path: Path) -> None:
    pil, indices, colours = palette_image()
    image = iio.read_image(save_pil(tmp_path / "p.png", pil))
    assert np.array_equal(image.pixels, colours[indices]) and image.alpha is None


def test_palette_png_with_transparent_index(tmp_path: Path) -> None:
    pil, indices, colours = palette_image()
    image = iio.read_image(save_pil(tmp_path / "pt.png", pil, transparency=2))
    assert np.array_equal(image.pixels[indices != 2], colours[indices][indices != 2])
    assert np.array_equal(image.alpha, np.where(indices == 2, 0, 255))


def test_palette_png_with_alpha_per_entry(tmp_path: Path) -> None:
    pil, indices, _ = palette_image()
    alphas = bytes([0, 80, 160, 255])
    image = iio.read_image(save_pil(tmp_path / "pa.png", pil, transparency=alphas))
    assert np.array_equal(image.alpha, np.array(list(alphas), np.uint8)[indices])


def test_one_bit_png_reads_as_gray(tmp_path: Path) -> None:
    bits = RNG.integers(0, 2, (H, W)).astype(bool)
    image = iio.read_image(save_pil(tmp_path / "bw.png", PIL.Image.fromarray(bits)))
    assert image.pixels.shape == (H, W, 1) and np.array_equal(image.pixels[..., 0], bits * 255)


def test_16bit_gray_png_from_pillow_and_cv2(tmp_path: Path) -> None:
    gray = random_u16(H, W)
    pillow = save_pil(tmp_path / "pil16.png", PIL.Image.fromarray(gray))
    opencv = tmp_path / "cv16.png"
    assert cv2.imwrite(str(opencv), gray)
    for path in (pillow, opencv):
        image = iio.read_image(path)
        assert image.bit_depth == 16 and image.pixels.dtype == np.uint16
        assert np.array_equal(image.pixels[..., 0], gray)


@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_colour_png_written_by_cv2(tmp_path: Path, channels: int) -> None:
    rgb = random_u16(H, W, channels)
    path = tmp_path / "cv16.png"
    order = [2, 1, 0, 3][:channels]  # OpenCV stores BGR(A)
    assert cv2.imwrite(str(path), rgb[..., order])
    image = iio.read_image(path)
    assert image.pixels.dtype == np.uint16 and np.array_equal(image.pixels, rgb[..., :3])
    if channels == 4:
        assert np.array_equal(image.alpha, rgb[..., 3])


def test_16bit_png_written_here_reads_exactly_in_opencv(tmp_path: Path) -> None:
    rgb = random_u16(H, W, 3)
    iio.write_image(tmp_path / "ours.png", rgb)
    assert np.array_equal(cv2.imread(str(tmp_path / "ours.png"), cv2.IMREAD_UNCHANGED)[..., ::-1], rgb)


def test_jpeg_is_close(tmp_path: Path) -> None:
    pixels = smooth_rgb()
    image = iio.read_image(save_pil(tmp_path / "a.jpg", PIL.Image.fromarray(pixels), quality=95))
    assert image.pixels.shape == pixels.shape and image.pixels.dtype == np.uint8
    assert np.abs(image.pixels.astype(int) - pixels).mean() < 3


def test_multi_picture_jpeg_from_cameras_reads_first_picture(tmp_path: Path) -> None:
    first = PIL.Image.new("RGB", (W, H), (200, 10, 10))
    second = PIL.Image.new("RGB", (W, H), (0, 0, 255))
    path = save_pil(tmp_path / "camera.jpg", first, format="MPO", save_all=True, append_images=[second])
    image = iio.read_image(path)
    assert image.size == (W, H) and np.abs(image.pixels.astype(int) - [200, 10, 10]).max() < 8


def test_cmyk_jpeg_colours(tmp_path: Path) -> None:
    # Pillow writes CMYK JPEG the Adobe way (inverted, APP14 marker), like Photoshop.
    cmyk = PIL.Image.new("CMYK", (W, H), (0, 255, 255, 0))  # pure red
    path = save_pil(tmp_path / "cmyk.jpg", cmyk, quality=95)
    assert PIL.Image.open(path).info.get("adobe") is not None
    image = iio.read_image(path)
    assert image.pixels.shape == (H, W, 3)
    assert np.allclose(image.pixels.reshape(-1, 3).mean(0), [255, 0, 0], atol=8)


def test_webp_lossy_and_lossless_with_alpha(tmp_path: Path) -> None:
    pixels = smooth_rgb()
    lossy = iio.read_image(save_pil(tmp_path / "a.webp", PIL.Image.fromarray(pixels), quality=90))
    assert np.abs(lossy.pixels.astype(int) - pixels).mean() < 4
    rgba = random_u8(H, W, 4)
    rgba[..., 3] = np.maximum(rgba[..., 3], 1)  # WebP may drop colour under alpha 0
    lossless = iio.read_image(save_pil(tmp_path / "b.webp", PIL.Image.fromarray(rgba), lossless=True))
    assert np.array_equal(lossless.pixels, rgba[..., :3]) and np.array_equal(lossless.alpha, rgba[..., 3])


def test_bmp(tmp_path: Path) -> None:
    pixels = random_u8(H, W, 3)
    image = iio.read_image(save_pil(tmp_path / "a.bmp", PIL.Image.fromarray(pixels)))
    assert np.array_equal(image.pixels, pixels)


def test_tiff_8bit_and_16bit_from_other_writers(tmp_path: Path) -> None:
    rgb8 = random_u8(H, W, 3)
    assert np.array_equal(iio.read_image(save_pil(tmp_path / "a.tif", PIL.Image.fromarray(rgb8))).pixels, rgb8)
    gray16 = random_u16(H, W)
    image = iio.read_image(save_pil(tmp_path / "g.tiff", PIL.Image.fromarray(gray16)))
    assert image.bit_depth == 16 and np.array_equal(image.pixels[..., 0], gray16)
    rgb16 = random_u16(H, W, 3)
    assert cv2.imwrite(str(tmp_path / "c.tiff"), rgb16[..., ::-1])
    image = iio.read_image(tmp_path / "c.tiff")
    assert image.bit_depth == 16 and np.array_equal(image.pixels, rgb16)


def exif_with_orientation(value: int) -> PIL.Image.Exif:
    exif = PIL.Image.Exif()
    exif[0x0112] = value
    return exif


def test_jpeg_exif_orientation_6_is_rotated(tmp_path: Path) -> None:
    pixels = smooth_rgb(16, 24)
    path = save_pil(tmp_path / "o6.jpg", PIL.Image.fromarray(pixels), exif=exif_with_orientation(6))
    image = iio.read_image(path)
    assert image.pixels.shape == (24, 16, 3)
    upright = np.asarray(PIL.ImageOps.exif_transpose(PIL.Image.open(path)))
    assert np.array_equal(image.pixels, upright)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    rgba = random_u8(H, W, 4)
    path = save_pil(tmp_path / "o.png", PIL.Image.fromarray(rgba), exif=exif_with_orientation(orientation))
    image = iio.read_image(path)
    upright = np.asarray(PIL.ImageOps.exif_transpose(PIL.Image.open(path)))
    assert np.array_equal(image.pixels, upright[..., :3]) and np.array_equal(image.alpha, upright[..., 3])


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def png16_with(chunk: bytes, *, after_pixels: bool, channels: int = 3) -> tuple[np.ndarray, bytes]:
    """A 16-bit PNG written here, with `chunk` right after IHDR or right before IEND."""
    samples = random_u16(H, W, channels)
    png = iio.encode_png(samples)
    at = len(png) - 12 if after_pixels else 33  # IEND is 12 bytes; signature + IHDR 33
    return samples, png[:at] + chunk + png[at:]


def exif_chunk(orientation: int) -> bytes:
    return png_chunk(b"eXIf", exif_with_orientation(orientation).tobytes()[6:])  # no "Exif\0\0"


def xmp_chunk(orientation: int) -> bytes:
    xmp = f'<x:xmpmeta><rdf:Description tiff:Orientation="{orientation}"/></x:xmpmeta>'
    return png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp.encode())


@pytest.mark.parametrize("chunk", ["exif", "xmp"])
@pytest.mark.parametrize("after_pixels", [False, True])
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_16bit_colour_png_exif_orientation_matches_pillow(chunk: str, after_pixels: bool, orientation: int) -> None:
    # OpenCV decodes these pixels; the orientation must still be Pillow's, wherever it is stored
    make = exif_chunk if chunk == "exif" else xmp_chunk
    samples, data = png16_with(make(orientation), after_pixels=after_pixels, channels=4)
    image = iio.decode_bytes(data)
    upright = np.asarray(PIL.ImageOps.exif_transpose(PIL.Image.open(io.BytesIO(data))))  # 8-bit: high bytes
    assert image.pixels.dtype == np.uint16 and image.pixels.shape == upright.shape[:2] + (3,)
    assert np.array_equal(image.pixels >> 8, upright[..., :3]) and np.array_equal(image.alpha >> 8, upright[..., 3])


@pytest.mark.parametrize("chunk", [b"", exif_chunk(6), xmp_chunk(6)], ids=["none", "exif", "xmp"])
def test_16bit_colour_png_orientation_without_a_second_decode(monkeypatch: pytest.MonkeyPatch, chunk: bytes) -> None:
    # Pillow's PNG getexif() would load (decode) the whole image to look for EXIF after the pixels
    loads = []
    monkeypatch.setattr(PIL.ImageFile.ImageFile, "load", lambda self: loads.append(self))
    samples, data = png16_with(chunk, after_pixels=False)
    image = iio.decode_bytes(data)
    assert loads == []
    assert np.array_equal(image.pixels, samples if not chunk else np.rot90(samples, -1))


def test_one_pixel_image(tmp_path: Path) -> None:
    for extension in (".png", ".jpg", ".webp", ".bmp", ".tif", ".avif"):
        path = tmp_path / f"one{extension}"
        iio.write_image(path, np.array([[[10, 200, 30]]], np.uint8))
        image = iio.read_image(path)
        assert image.size == (1, 1), extension
        assert np.abs(image.pixels.astype(int) - [10, 200, 30]).max() < 40, extension


def test_unicode_file_name_with_spaces(tmp_path: Path) -> None:
    pixels = random_u8(H, W, 3)
    path = tmp_path / "ünï cödé 猫 фото" / "my photo ☀.png"
    iio.write_image(path, pixels)
    assert np.array_equal(iio.read_image(path).pixels, pixels)
    assert iio.list_images(tmp_path) == [path]


def test_names_up_to_the_file_system_limit_are_written(tmp_path: Path) -> None:
    """The temp file is 18 bytes longer than its name: a 238-255 byte name could not be written."""
    pixels = random_u8(H, W, 3)
    for name in ("L" * 251 + ".png", "猫" * 82 + ".png"):  # 255 bytes each (猫 is 3 bytes in UTF-8)
        iio.write_image(tmp_path / name, pixels)
        assert np.array_equal(iio.read_image(tmp_path / name).pixels, pixels)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["L" * 251 + ".png", "猫" * 82 + ".png"])


def test_decode_bytes_from_memory() -> None:
    pixels = random_u8(H, W, 3)
    buffer = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buffer, "PNG")
    image = iio.decode_bytes(buffer.getvalue())
    assert np.array_equal(image.pixels, pixels) and image.path is None
    with pytest.raises(ImageReadError) as error:
        iio.decode_bytes(b"nope")
    assert "\n" not in str(error.value) and error.value.path is None


def test_truncated_images_are_not_silently_accepted() -> None:
    import PIL.ImageFile

    assert PIL.ImageFile.LOAD_TRUNCATED_IMAGES is False


# --------------------------------------------------------------------------- bad input


def valid_bytes(extension: str) -> bytes:
    buffer = io.BytesIO()
    formats = {".png": "PNG", ".jpg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF", ".avif": "AVIF"}
    PIL.Image.fromarray(smooth_rgb(32, 32)).save(buffer, formats[extension])
    return buffer.getvalue()


@pytest.mark.parametrize("extension", [".png", ".jpg"])
def test_truncated_file(tmp_path: Path, extension: str) -> None:
    data = valid_bytes(extension)
    path = tmp_path / f"cut{extension}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError) as error:
        iio.read_image(path)
    assert_one_line_error(error, path, "truncated")


def test_truncated_16bit_colour_png(tmp_path: Path) -> None:
    path = tmp_path / "cut16.png"
    data = iio.encode_png(random_u16(40, 40, 3))
    path.write_bytes(data[: len(data) - 30])
    with pytest.raises(ImageReadError) as error:
        iio.read_image(path)
    assert_one_line_error(error, path, "truncated")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError) as error:
        iio.read_image(path)
    assert_one_line_error(error, path, "empty")


@pytest.mark.parametrize("name, head, kind", [
    ("IMG_0001.HEIC", b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", "heic"),  # an iPhone photo
    ("anim.gif", b"GIF89a\x08\0\x08\0", "gif"),
    ("layers.psd", b"8BPS\0\x01", "photoshop"),
    ("photo.jxl", b"\xff\x0a\xfa", "jpeg xl"),
])
def test_an_image_in_a_format_i2i_does_not_read_is_named_as_such(tmp_path: Path, name: str, head: bytes,
                                                                 kind: str) -> None:
    """Not "not an image": the user knows it is one, and needs to hear what to do with it."""
    path = tmp_path / name
    path.write_bytes(head + bytes(64))
    with pytest.raises(ImageReadError) as error:
        iio.read_image(path)
    assert_one_line_error(error, path, kind, "does not read", "convert it")


def test_a_truncated_avif_is_named_corrupt(tmp_path: Path) -> None:
    data = valid_bytes(".avif")
    path = tmp_path / "cut.avif"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError) as error:
        iio.read_image(path)
    assert_one_line_error(error, path, "corrupt avif")


def test_a_tiff_whose_second_page_is_damaged_reads_its_first(tmp_path: Path) -> None:
    """Counting a TIFF's pages walks them all (Pillow's n_frames): a damaged later page raised
    TypeError out of the reader (found by the fuzz test)."""
    import struct

    data = bytearray(valid_bytes(".tif"))
    ifd = struct.unpack("<I", data[4:8])[0]
    next_ifd = ifd + 2 + 12 * struct.unpack("<H", data[ifd:ifd + 2])[0]
    data[next_ifd:next_ifd + 4] = struct.pack("<I", 200)  # a "second page" inside the pixel data
    (tmp_path / "scan.tif").write_bytes(bytes(data))
    image = iio.read_image(tmp_path / "scan.tif")
    assert image.pixels.shape == (32, 32, 3) and image.frames == 1


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("these are\nnot pixels\n")
    with pytest.raises(ImageReadError) as error:
        iio.read_image(path)
    assert_one_line_error(error, path, "not an image")


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError) as error:
        iio.read_image(tmp_path / "nope.png")
    assert_one_line_error(error, tmp_path / "nope.png", "no such file")
    with pytest.raises(ImageReadError) as error:
        iio.read_image(tmp_path)
    assert_one_line_error(error, tmp_path, "folder")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.png"
    iio.write_image(path, random_u8(H, W, 3))
    path.chmod(0)
    try:
        with pytest.raises(ImageReadError) as error:
            iio.read_image(path)
        assert_one_line_error(error, path, "permission")
    finally:
        path.chmod(0o644)


def test_decompression_bomb_refused_from_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.png"
    iio.write_image(path, random_u8(H, W, 3))
    with pytest.raises(ImageReadError) as error:
        iio.read_image(path, max_pixels=W * H - 1)
    assert_one_line_error(error, path, "too large", "max_pixels", iio.MAX_PIXELS_ENV.lower())
    assert iio.read_image(path, max_pixels=W * H).size == (W, H)
    monkeypatch.setenv(iio.MAX_PIXELS_ENV, str(W * H - 1))
    with pytest.raises(ImageReadError):
        iio.read_image(path)
    monkeypatch.setenv(iio.MAX_PIXELS_ENV, "lots")
    with pytest.raises(I2IError, match=iio.MAX_PIXELS_ENV):
        iio.read_image(path)


def test_huge_header_with_tiny_body_is_refused(tmp_path: Path) -> None:
    """A 100000 x 100000 claim in a few bytes: refused from the header, nothing allocated."""
    data = bytearray(iio.encode_png(random_u16(2, 2, 1)))
    data[16:24] = (100_000).to_bytes(4, "big") * 2  # IHDR width, height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # a valid IHDR again
    path = tmp_path / "bomb.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError) as error:
        iio.read_image(path)
    assert_one_line_error(error, path, "too large", iio.MAX_PIXELS_ENV.lower())


def test_damaged_header_is_named_corrupt_not_unknown(tmp_path: Path) -> None:
    data = bytearray(valid_bytes(".png"))
    data[20] ^= 0xFF  # IHDR height, CRC no longer matches
    path = tmp_path / "damaged.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError) as error:
        iio.read_image(path)
    assert_one_line_error(error, path, "corrupt png")


def test_larger_limit_overrides_pillows_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.png"
    iio.write_image(path, random_u8(H, W, 3))
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 10)  # Pillow alone would refuse 35 px
    assert iio.read_image(path, max_pixels=100).size == (W, H)


# --------------------------------------------------------------------------- writing


FORMAT_CASES = [  # extension, exact?, keeps 16 bits?, keeps alpha?, keeps gray?
    (".png", True, True, True, True),
    (".tif", True, True, True, True),
    (".tiff", True, True, True, True),
    (".bmp", True, False, False, True),
    (".webp", False, False, True, False),
    (".avif", False, False, True, True),
    (".jpg", False, False, False, True),
    (".jpeg", False, False, False, True),
]


@pytest.mark.parametrize("extension, exact, keeps16, keeps_alpha, keeps_gray", FORMAT_CASES)
@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_write_read_round_trip(
    tmp_path: Path, extension: str, exact: bool, keeps16: bool, keeps_alpha: bool,
    keeps_gray: bool, depth: int, channels: int, with_alpha: bool,
) -> None:
    make = random_u16 if depth == 16 else random_u8
    pixels, alpha = make(H, W, channels), make(H, W) if with_alpha else None
    if not exact:  # lossy codecs: smooth content, and exact maximum alpha is not at stake
        pixels = (smooth_rgb(H, W)[..., :channels].astype(np.uint16) * (257 if depth == 16 else 1)).astype(pixels.dtype)
    path = tmp_path / f"out{extension}"
    iio.write_image(path, pixels, alpha)
    image = iio.read_image(path)

    assert image.bit_depth == (depth if keeps16 else 8)
    if not keeps_gray and channels == 1:
        assert image.pixels.shape == (H, W, 3)  # WebP has no gray: stored as RGB
        pixels = np.repeat(pixels, 3, axis=2)
    if (extension in (".tif", ".tiff") and depth == 16 or extension == ".avif") and channels == 1 and with_alpha:
        assert image.pixels.shape == (H, W, 3)  # 16-bit gray+alpha TIFF and gray+alpha AVIF are stored as RGBA
        pixels = np.repeat(pixels, 3, axis=2)
    assert image.pixels.shape == pixels.shape
    expected = pixels if image.bit_depth == depth else iio.to_dtype(pixels, np.uint8)
    if exact:
        assert np.array_equal(image.pixels, expected)
    else:  # 5 x 7 steep gradients are hard on 4:2:0 chroma (WebP always uses it)
        assert np.abs(image.pixels.astype(int) - expected).mean() < 10
    if with_alpha and keeps_alpha:
        expected_alpha = alpha if image.bit_depth == depth else iio.to_dtype(alpha, np.uint8)
        tolerance = 0 if exact else 2
        assert np.abs(image.alpha.astype(int) - expected_alpha).max() <= tolerance
    else:
        assert image.alpha is None


def test_write_accepts_2d_and_packed_alpha(tmp_path: Path) -> None:
    rgba = random_u8(H, W, 4)
    iio.write_image(tmp_path / "packed.png", rgba)
    image = iio.read_image(tmp_path / "packed.png")
    assert np.array_equal(image.pixels, rgba[..., :3]) and np.array_equal(image.alpha, rgba[..., 3])
    gray = random_u16(H, W)
    iio.write_image(tmp_path / "flat.png", gray)
    assert np.array_equal(iio.read_image(tmp_path / "flat.png").pixels[..., 0], gray)


def test_alpha_depth_follows_pixels(tmp_path: Path) -> None:
    iio.write_image(tmp_path / "a.png", random_u16(H, W, 3), np.full((H, W), 255, np.uint8))
    assert iio.read_image(tmp_path / "a.png").alpha.max() == 65535


def test_uint16_to_jpeg_rounds_to_8bit() -> None:
    values = np.array([0, 128, 129, 385, 65535], np.uint16)
    assert iio.to_dtype(values, np.uint8).tolist() == [round(v / 257) for v in values.tolist()]


def test_write_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(I2IError) as error:
        iio.write_image(tmp_path / "a.gif", random_u8(H, W, 3))
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError):
        iio.write_image(tmp_path / "a.png", np.zeros((H, W, 3), np.float32))
    with pytest.raises(ValueError):
        iio.write_image(tmp_path / "a.png", random_u8(H, W, 3), random_u8(H + 1, W))


def test_encoder_limit_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(I2IError) as error:
        iio.write_image(tmp_path / "wide.webp", np.zeros((1, 17000, 3), np.uint8))  # WebP max 16383
    assert "\n" not in str(error.value) and "wide.webp" in str(error.value)
    assert os.listdir(tmp_path) == []


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "out.png"
    iio.write_image(path, random_u8(H, W, 3))
    iio.write_image(path, random_u8(H, W, 3))  # overwrite
    assert os.listdir(path.parent) == ["out.png"]


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failed_write_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException) -> None:
    path = tmp_path / "out.png"
    iio.write_image(path, random_u8(H, W, 3))
    before = path.read_bytes()

    def broken_replace(source, target):
        raise failure

    monkeypatch.setattr(iio.os, "replace", broken_replace)
    expected = I2IError if isinstance(failure, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as error:
        iio.write_image(path, random_u8(H, W, 3))
    if expected is I2IError:
        assert str(path) in str(error.value) and "no space" in str(error.value).lower()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.png"]


def test_write_under_a_file_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(I2IError) as error:
        iio.write_image(tmp_path / "file" / "out.png", random_u8(H, W, 3))
    assert "\n" not in str(error.value) and "out.png" in str(error.value)


def test_written_file_has_normal_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        iio.write_image(tmp_path / "a.png", random_u8(H, W, 3))
    finally:
        os.umask(old)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o644


# --------------------------------------------------------------------------- listing


def test_list_images(tmp_path: Path) -> None:
    names = ["b.png", "a.JPG", "c.JpEg", "sub/d.webp", "sub/deeper/e.TIFF", "sub/f.bmp", "g.tif"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    for ignored in ["MANIFEST.json", "README", "notes.txt", "._a.jpg", ".hidden/h.png", "x.png.tmp", "jpg"]:
        (tmp_path / ignored).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / ignored).write_bytes(b"x")
    (tmp_path / "folder.png").mkdir()  # a folder with an image name is not a file

    found = iio.list_images(tmp_path)
    assert found == sorted(tmp_path / name for name in names)
    assert iio.list_images(str(tmp_path), recursive=False) == sorted(
        tmp_path / name for name in ["a.JPG", "b.png", "c.JpEg", "g.tif"]
    )
    assert iio.list_images(tmp_path / "b.png") == [tmp_path / "b.png"]
    with pytest.raises(I2IError) as error:
        iio.list_images(tmp_path / "missing")
    assert "missing" in str(error.value)


def test_a_broken_link_with_an_image_name_is_listed_and_reading_it_says_so(tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(b"x")
    os.symlink(tmp_path / "moved-away.png", tmp_path / "link.png")
    assert iio.list_images(tmp_path) == [tmp_path / "link.png", tmp_path / "photo.png"]
    with pytest.raises(I2IError, match="link.png: no such file"):
        iio.read_image(tmp_path / "link.png")


def test_extensions_constant() -> None:
    assert iio.IMAGE_EXTENSIONS == {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".avif"}
    assert iio.DEFAULT_MAX_PIXELS >= 100_000_000


# --------------------------------------------------------------------------- tensors


@pytest.mark.parametrize("depth", [8, 16])
def test_tensor_round_trip_is_exact(depth: int) -> None:
    pixels = random_u16(H, W, 3) if depth == 16 else random_u8(H, W, 3)
    tensor = iio.to_tensor(iio.Image(pixels=pixels, alpha=None))
    assert tensor.dtype == torch.float32 and tensor.shape == (3, H, W)
    assert 0.0 <= tensor.min() and tensor.max() <= 1.0
    assert np.array_equal(iio.from_tensor(tensor, bit_depth=depth), pixels)


def test_from_tensor_clips_rounds_and_survives_nan() -> None:
    tensor = torch.tensor([[[-0.5, 0.5 / 255, 0.6 / 255, 1.7, float("nan")]]])
    assert iio.from_tensor(tensor)[0, :, 0].tolist() == [0, 0, 1, 255, 0]
    assert iio.from_tensor(torch.ones(1, 2, 2), bit_depth=16).max() == 65535
    assert iio.to_tensor(iio.Image(pixels=random_u8(H, W, 1), alpha=None)).shape == (1, H, W)


# --------------------------------------------------------------------------- fuzzing


FUZZ = settings(
    max_examples=300, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def assert_reads_or_fails_cleanly(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        image = iio.read_image(path, max_pixels=200_000)
    except ImageReadError as error:
        message = str(error)
        assert "\n" not in message and message.startswith(str(path))
        return
    assert image.pixels.ndim == 3 and image.pixels.shape[2] in (1, 3)
    assert image.pixels.dtype in (np.uint8, np.uint16)
    assert image.alpha is None or image.alpha.shape == image.pixels.shape[:2]


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's "Corrupt EXIF data" notes
@FUZZ
@given(data=st.binary(max_size=512))
def test_fuzz_random_bytes(tmp_path: Path, data: bytes) -> None:
    assert_reads_or_fails_cleanly(tmp_path / "random.png", data)


def seeds() -> dict[str, bytes]:
    buffers = {extension: valid_bytes(extension) for extension in (".png", ".jpg", ".webp", ".bmp", ".tif", ".avif")}
    buffers[".png16"] = iio.encode_png(random_u16(12, 12, 4))
    buffers[".tif16"] = iio.encode_tiff16(random_u16(12, 12, 3))
    palette, _, _ = palette_image()
    out = io.BytesIO()
    palette.save(out, "PNG", transparency=1)
    buffers[".ppng"] = out.getvalue()
    return buffers


SEEDS = seeds()


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, max(len(data) - 1, 0)))
        action = draw(st.sampled_from(["flip", "truncate", "insert", "zero"]))
        if action == "flip" and data:
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif action == "truncate":
            del data[where:]
        elif action == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=16))
        elif data:
            data[where : where + 4] = b"\0\0\0\0"
    return name, bytes(data)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's "Corrupt EXIF data" notes
@FUZZ
@given(case=mutated())
def test_fuzz_mutated_images(tmp_path: Path, case: tuple[str, bytes]) -> None:
    name, data = case
    assert_reads_or_fails_cleanly(tmp_path / f"mutated{name[:4]}", data)


@pytest.mark.parametrize("channels, dtype", [(1, np.uint8), (3, np.uint8), (3, np.uint16), (1, np.uint16)])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_streamed_png_round_trips_through_independent_decoders(tmp_path: Path, channels, dtype, with_alpha) -> None:
    """write_png filters and compresses a band of rows at a time: bands that split the image
    unevenly must still give a PNG that Pillow / OpenCV decode to exactly the samples."""
    import cv2

    rng = np.random.default_rng(channels)
    top = 255 if dtype == np.uint8 else 65535
    pixels = rng.integers(0, top + 1, (23, 17, channels)).astype(dtype)
    alpha = rng.integers(0, top + 1, (23, 17)).astype(dtype) if with_alpha else None
    buffer = io.BytesIO()
    iio.write_png(buffer, pixels, alpha, band=5)
    (tmp_path / "x.png").write_bytes(buffer.getvalue())
    expected = pixels if alpha is None else np.dstack([pixels, alpha])
    if dtype == np.uint8:
        decoded = np.asarray(PIL.Image.open(tmp_path / "x.png"))
    else:
        decoded = cv2.imread(str(tmp_path / "x.png"), cv2.IMREAD_UNCHANGED)
        if decoded.ndim == 3 and decoded.shape[2] >= 3:  # BGR(A); gray + alpha comes as BGRA, B = G = R
            decoded = np.concatenate([decoded[..., 2::-1][..., :channels], decoded[..., 3:]], axis=2)
    np.testing.assert_array_equal(decoded.reshape(expected.shape), expected)
    image = iio.read_image(tmp_path / "x.png")
    np.testing.assert_array_equal(image.pixels, pixels)
    np.testing.assert_array_equal(image.alpha, alpha) if with_alpha else None


def test_png_writer_takes_rows_in_any_pieces_and_refuses_a_short_image(tmp_path: Path) -> None:
    """What a streamed translation hands over (rows of tiles of any height) gives the same
    picture as one write_png call; a file missing rows is an error, not a short PNG."""
    pixels = np.random.default_rng(4).integers(0, 256, (40, 13, 3)).astype(np.uint8)
    buffer = io.BytesIO()
    png = iio.PngWriter(buffer, 40, 13, 3, np.uint8, band=6)
    for top, bottom in ((0, 7), (7, 8), (8, 39), (39, 40)):
        png.write(pixels[top:bottom])
    png.close()
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(io.BytesIO(buffer.getvalue()))), pixels)

    short = iio.PngWriter(io.BytesIO(), 40, 13, 3, np.uint8)
    short.write(pixels[:39])
    with pytest.raises(ValueError, match="39 of the PNG's 40 rows"):
        short.close()
    with pytest.raises(ValueError, match="more than the PNG's 40 rows"):
        short.write(pixels[:2])

    with pytest.raises(I2IError, match="no rows were computed"):
        with iio.stream_png(tmp_path / "empty.png"):
            pass
    assert list(tmp_path.iterdir()) == []  # nothing half-written stays behind


def test_pages_of_a_tiff_are_counted_along_its_offsets_not_parsed_and_a_camera_jpeg_is_one_frame(
        tmp_path: Path, monkeypatch) -> None:
    """Pillow's n_frames parses every page of a TIFF (seconds for a 10,000-page stack, on every
    read); a camera JPEG with a Multi-Picture preview (Canon, Sony: Pillow's MPO) is one photo."""
    import PIL.TiffImagePlugin

    pages = [PIL.Image.fromarray(np.full((8, 8, 3), i, np.uint8)) for i in range(3)]
    pages[0].save(tmp_path / "stack.tif", save_all=True, append_images=pages[1:])
    pages[0].save(tmp_path / "big.tif", save_all=True, append_images=pages[1:], big_tiff=True)
    pages[0].save(tmp_path / "camera.jpg", format="MPO", save_all=True, append_images=pages[1:2])

    def walked(self):
        raise AssertionError("every page parsed")

    monkeypatch.setattr(PIL.TiffImagePlugin.TiffImageFile, "n_frames", property(walked))
    assert [iio.read_image(tmp_path / name).frames for name in ("stack.tif", "big.tif", "camera.jpg")] == [3, 3, 1]
