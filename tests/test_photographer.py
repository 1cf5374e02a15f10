"""A photographer's own files through i2i: what the file says about its pixels (alpha kind,
orientation, colour profile, format) is honoured the same way whatever the file's depth or maker."""
from __future__ import annotations

import io as bytes_io

import numpy as np
import PIL.Image
import PIL.ImageCms
import PIL.ImageOps
import pytest

from i2i.data import io

RGB_PROFILE = PIL.ImageCms.ImageCmsProfile(PIL.ImageCms.createProfile("sRGB")).tobytes()
EXTRA_SAMPLES = 338  # TIFF tag: what a channel after the colour holds (0 unspecified, 1 associated, 2 unassociated alpha)


def _with_extra_samples(tiff: bytes, kind: int) -> bytes:
    """`tiff` (one IFD, little-endian, as io.encode_tiff16 writes it) with ExtraSamples set to `kind`."""
    data = bytearray(tiff)
    ifd = int.from_bytes(data[4:8], "little")
    for i in range(int.from_bytes(data[ifd:ifd + 2], "little")):
        entry = ifd + 2 + 12 * i
        if int.from_bytes(data[entry:entry + 2], "little") == EXTRA_SAMPLES:
            data[entry + 8:entry + 10] = kind.to_bytes(2, "little")
            return bytes(data)
    raise AssertionError("no ExtraSamples tag")


def test_a_16_bit_tiff_with_premultiplied_alpha_reads_as_straight_colour(tmp_path):
    """Compositing programs store colour premultiplied (ExtraSamples 1); Pillow takes the 8-bit
    such file as straight colour, and i2i writes its alpha as unassociated: a 16-bit one read raw
    came out half as bright where half transparent."""
    straight = np.full((4, 6, 3), 20000, np.uint16)
    alpha = np.full((4, 6), 32768, np.uint16)
    alpha[0] = 0
    premultiplied = np.rint(straight * (alpha[..., None] / 65535)).astype(np.uint16)
    path = tmp_path / "render.tif"
    path.write_bytes(_with_extra_samples(io.encode_tiff16(np.dstack([premultiplied, alpha])), 1))
    image = io.read_image(path)
    np.testing.assert_array_equal(image.alpha, alpha)
    np.testing.assert_allclose(image.pixels[1:], straight[1:], atol=1)
    assert not image.pixels[0].any()  # fully transparent: no colour to recover


def test_a_16_bit_tiff_s_unspecified_extra_channel_is_no_alpha_as_at_8_bits(tmp_path):
    """Photoshop stores a saved selection as an extra channel of unspecified kind (ExtraSamples 0);
    Pillow reads the 8-bit file as opaque RGB, so the 16-bit one must not turn it into transparency."""
    pixels = np.full((4, 6, 3), 20000, np.uint16)
    selection = np.zeros((4, 6), np.uint16)
    selection[:2] = 65535
    (tmp_path / "scan16.tif").write_bytes(_with_extra_samples(io.encode_tiff16(np.dstack([pixels, selection])), 0))
    eight = PIL.Image.fromarray(np.dstack([io.to_dtype(pixels, np.uint8), io.to_dtype(selection, np.uint8)]))
    eight.save(tmp_path / "rgba8.tif")
    (tmp_path / "scan8.tif").write_bytes(_with_extra_samples((tmp_path / "rgba8.tif").read_bytes(), 0))
    assert io.read_image(tmp_path / "scan8.tif").alpha is None  # what Pillow makes of it
    image = io.read_image(tmp_path / "scan16.tif")
    assert image.alpha is None
    np.testing.assert_array_equal(image.pixels, pixels)


def _avif_bytes() -> bytes:
    buffer = bytes_io.BytesIO()
    PIL.Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, "AVIF")
    return buffer.getvalue()


@pytest.mark.skipif(not io.AVIF, reason="this Pillow has no AVIF")
def test_a_damaged_avif_with_the_generic_mif1_brand_is_named_a_damaged_avif(tmp_path):
    """Some encoders give an AVIF the generic major brand mif1 and list avif among the compatible
    brands; a damaged one was called 'an image in HEIC format, which i2i does not read'."""
    good = _avif_bytes()
    assert good[4:12] == b"ftypavif" and b"avif" in good[16:32]
    mif1 = good[:8] + b"mif1" + good[12:]
    (tmp_path / "ok.avif").write_bytes(mif1)
    assert io.read_image(tmp_path / "ok.avif").pixels.shape == (8, 8, 3)
    (tmp_path / "cut.avif").write_bytes(mif1[:200])
    with pytest.raises(io.ImageReadError, match="corrupt AVIF"):
        io.read_image(tmp_path / "cut.avif")
    samsung_heic = (28).to_bytes(4, "big") + b"ftypmif1" + bytes(4) + b"mif1heicmiaf" + bytes(40)
    (tmp_path / "phone.heic").write_bytes(samsung_heic)
    with pytest.raises(io.ImageReadError, match="HEIC format"):
        io.read_image(tmp_path / "phone.heic")


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("extension", [".jpg", ".png", ".webp", ".tif"])
def test_a_turned_phone_photo_is_written_upright_once_with_its_profile(tmp_path, orientation, extension):
    """Guard: the pixels are turned as Pillow's exif_transpose turns them, the profile goes along,
    and no output carries an orientation a viewer would apply a second time."""
    stored = np.zeros((6, 10, 3), np.uint8)
    stored[:2, :3] = (255, 0, 0)
    tags = PIL.Image.Exif()
    tags[0x0112] = orientation
    PIL.Image.fromarray(stored).save(tmp_path / "phone.png", exif=tags, icc_profile=RGB_PROFILE)
    image = io.read_image(tmp_path / "phone.png")
    with PIL.Image.open(tmp_path / "phone.png") as pil:
        expected = np.asarray(PIL.ImageOps.exif_transpose(pil).convert("RGB"))
    np.testing.assert_array_equal(image.pixels, expected)
    out = tmp_path / f"out{extension}"
    io.write_image(out, image.pixels, icc=image.icc, exif=image.exif, quality=100)
    with PIL.Image.open(out) as pil:
        assert pil.info.get("icc_profile") == RGB_PROFILE
        assert pil.getexif().get(0x0112, 1) == 1
        assert pil.size == (expected.shape[1], expected.shape[0])
