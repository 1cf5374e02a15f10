"""What a photo file carries besides its pixels, through i2i.

Colour profiles (ICC) travel from an input file to its output: a Display P3 phone photo or an
Adobe RGB camera file upscaled by i2i shows the same colours as the original, instead of being
read as sRGB by every viewer (what Real-ESRGAN's cv2 round trip does; Upscayl issue #565).
EXIF (date taken, camera, GPS) goes along on request (`--keep-metadata`), made true of the
output (upright, its size); files in formats i2i does not read are named, not "no images"."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageCms
import pytest
from click.testing import CliRunner
from test_infer import SR_RANGES, pattern, tiny_sr

import i2i.cli
import i2i.nn
from i2i.checkpoint import save_model
from i2i.data import io
from i2i.infer import Translator
from i2i.spec import spec_for_network

RGB_PROFILE = PIL.ImageCms.ImageCmsProfile(PIL.ImageCms.createProfile("sRGB")).tobytes()
# A profile's data colour space is header bytes 16-19; i2i carries profiles as they are, so a
# gray one is made by relabelling (viewers are not involved here).
GRAY_PROFILE = RGB_PROFILE[:16] + b"GRAY" + RGB_PROFILE[20:]
CMYK_PROFILE = RGB_PROFILE[:16] + b"CMYK" + RGB_PROFILE[20:]


def stored_profile(path: Path) -> bytes | None:
    """The profile in the file, as another program (Pillow) reads it."""
    with PIL.Image.open(path) as pil:
        return pil.info.get("icc_profile")


@pytest.mark.parametrize("name", ["a.png", "a.jpg", "a.webp", "a.tif"])
@pytest.mark.parametrize("bits", [8, 16])
def test_a_profile_written_with_an_image_is_read_back(tmp_path, name, bits):
    pixels = pattern(12, 20) if bits == 8 else pattern(12, 20).astype(np.uint16) * 257
    io.write_image(tmp_path / name, pixels, icc=RGB_PROFILE)
    assert stored_profile(tmp_path / name) == RGB_PROFILE
    assert io.read_image(tmp_path / name).icc == RGB_PROFILE


def test_a_16_bit_tiff_with_alpha_and_profile_stays_readable(tmp_path):
    pixels = pattern(9, 7).astype(np.uint16) * 257
    alpha = np.full((9, 7), 40000, np.uint16)
    io.write_image(tmp_path / "a.tif", pixels, alpha, icc=RGB_PROFILE)
    image = io.read_image(tmp_path / "a.tif")
    np.testing.assert_array_equal(image.pixels, pixels)
    np.testing.assert_array_equal(image.alpha, alpha)
    assert image.icc == RGB_PROFILE


def test_only_a_profile_that_describes_the_written_pixels_is_kept(tmp_path):
    gray, rgb = pattern(8, 8, channels=1), pattern(8, 8)
    io.write_image(tmp_path / "gray.png", gray, icc=GRAY_PROFILE)
    assert io.read_image(tmp_path / "gray.png").icc == GRAY_PROFILE
    io.write_image(tmp_path / "colorized.png", rgb, icc=GRAY_PROFILE)  # a gray input's profile on colour
    io.write_image(tmp_path / "sketch.jpg", gray, icc=RGB_PROFILE)  # a colour input's profile on gray
    io.write_image(tmp_path / "cmyk.tif", rgb, icc=CMYK_PROFILE)
    io.write_image(tmp_path / "a.bmp", rgb, icc=RGB_PROFILE)  # BMP holds none
    for name in ("colorized.png", "sketch.jpg", "cmyk.tif", "a.bmp"):
        assert stored_profile(tmp_path / name) is None, name


def test_a_cmyk_jpeg_is_read_as_rgb_without_its_cmyk_profile(tmp_path):
    PIL.Image.new("CMYK", (8, 8), (10, 200, 30, 0)).save(tmp_path / "print.jpg", icc_profile=CMYK_PROFILE)
    image = io.read_image(tmp_path / "print.jpg")
    assert image.pixels.shape == (8, 8, 3) and image.icc is None


def _sr_translator() -> Translator:
    net = tiny_sr().eval()
    return Translator(net, spec_for_network(net, "srgan", task="sr", **SR_RANGES), device="cpu",
                      precision="fp32", channels_last=False)


def test_i2i_translate_keeps_each_input_s_profile(tmp_path):
    net = tiny_sr()
    save_model(tmp_path / "sr.safetensors", {"G": net}, spec_for_network(net, "srgan", task="sr", **SR_RANGES))
    (tmp_path / "in").mkdir()
    PIL.Image.fromarray(pattern(16, 16)).save(tmp_path / "in/p3.jpg", icc_profile=RGB_PROFILE)
    PIL.Image.fromarray(pattern(16, 16, seed=1)).save(tmp_path / "in/plain.png")
    PIL.Image.fromarray(pattern(16, 16, seed=2)).save(tmp_path / "in/tagged.tif", icc_profile=RGB_PROFILE)
    result = CliRunner().invoke(i2i.cli.main, ["translate", str(tmp_path / "sr.safetensors"), str(tmp_path / "in"),
                                               str(tmp_path / "out"), "--device", "cpu", "--ext", "same"])
    assert result.exit_code == 0, result.output
    assert stored_profile(tmp_path / "out/p3.jpg") == RGB_PROFILE
    assert stored_profile(tmp_path / "out/tagged.tif") == RGB_PROFILE
    assert stored_profile(tmp_path / "out/plain.png") is None


def test_a_streamed_output_keeps_its_profile(tmp_path, monkeypatch):
    from i2i.infer import folder

    monkeypatch.setattr(folder, "STREAM_PIXELS", 40 * 30)
    (tmp_path / "in").mkdir()
    PIL.Image.fromarray(pattern(40, 30)).save(tmp_path / "in/big.png", icc_profile=RGB_PROFILE)
    summary = _sr_translator().translate_folder(tmp_path / "in", tmp_path / "out", tile=16, tile_pad=4,
                                                progress=False)
    assert summary.done == 1 and stored_profile(tmp_path / "out/big.png") == RGB_PROFILE


def test_a_pil_image_comes_back_with_its_profile():
    pil = PIL.Image.fromarray(pattern(8, 8))
    pil.info["icc_profile"] = RGB_PROFILE  # as Image.open gives it
    out = _sr_translator()(pil)
    assert out.info.get("icc_profile") == RGB_PROFILE
    assert "icc_profile" not in _sr_translator()(PIL.Image.fromarray(pattern(8, 8))).info


def test_i2i_serve_answers_with_the_upload_s_profile(tmp_path):
    from i2i.serve.catalog import Catalog
    from i2i.serve.engine import Engine

    net = tiny_sr()
    (tmp_path / "models").mkdir()
    save_model(tmp_path / "models/sr.safetensors", {"G": net},
               spec_for_network(net, "srgan", task="sr", **SR_RANGES))
    entry = Catalog([str(tmp_path / "models")]).model("sr")
    assert entry is not None
    upload = io.encode_image(".jpg", pattern(8, 8), icc=RGB_PROFILE)
    png = Engine(device="cpu", precision="fp32").translate(entry, upload, direction=entry.default_direction,
                                                          tile=0, job="profile")
    (tmp_path / "answer.png").write_bytes(png)
    assert stored_profile(tmp_path / "answer.png") == RGB_PROFILE


def _camera_exif(orientation: int = 6) -> bytes:
    tags = PIL.Image.Exif()
    tags[0x0112], tags[0x010F] = orientation, "Apple"  # Orientation, Make
    sub = tags.get_ifd(0x8769)
    sub[0x9003], sub[0xA002], sub[0xA003] = "2024:05:01 10:00:00", 20, 10  # DateTimeOriginal, pixel size
    return tags.tobytes()


@pytest.mark.parametrize("extension", [".jpg", ".png", ".webp", ".avif"])
def test_exif_written_with_an_output_is_true_of_it(tmp_path, extension):
    """Date and camera kept; the orientation 1 (the pixels are upright already: a viewer would turn
    the output a second time) and the size tags the output's."""
    PIL.Image.fromarray(pattern(10, 20)).save(tmp_path / "camera.jpg", exif=_camera_exif())
    image = io.read_image(tmp_path / "camera.jpg")
    assert image.pixels.shape == (20, 10, 3) and image.exif is not None
    io.write_image(tmp_path / f"out{extension}", np.repeat(np.repeat(image.pixels, 2, 0), 2, 1), exif=image.exif)
    with PIL.Image.open(tmp_path / f"out{extension}") as pil:
        tags = pil.getexif()
        assert pil.size == (20, 40) and tags.get(0x0112, 1) == 1 and tags.get(0x010F) == "Apple"
        sub = tags.get_ifd(0x8769)
        assert (sub.get(0x9003), sub.get(0xA002), sub.get(0xA003)) == ("2024:05:01 10:00:00", 20, 40)
    assert io.read_image(tmp_path / f"out{extension}").pixels.shape == (40, 20, 3)  # not turned again


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's "Corrupt EXIF data" notes
@pytest.mark.parametrize("block", [b"Exif\0\0MM\0*garbage", b"Exif\0\0II*\0\xff\xff\xff\x7f", b"\0" * 3])
def test_a_damaged_exif_block_does_not_fail_the_write(tmp_path, block):
    for extension in (".jpg", ".png", ".webp"):
        io.write_image(tmp_path / f"out{extension}", pattern(8, 8), exif=block)
        assert io.read_image(tmp_path / f"out{extension}").pixels.shape == (8, 8, 3)


def test_image_files_i2i_does_not_read_are_counted_by_extension(tmp_path):
    for name in ("IMG_1.HEIC", "IMG_2.heic", "sub/anim.gif", ".hidden.heic", "notes.txt", "ok.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert io.unread_images_note(tmp_path) == "2 .heic files, 1 .gif file i2i does not read: convert them to PNG or JPEG"
    assert io.unread_images_note(tmp_path, recursive=False) == "2 .heic files i2i does not read: convert them to PNG or JPEG"
    assert io.unread_images_note(tmp_path / "sub/anim.gif") == ""


def test_a_folder_of_heic_photos_is_told_so_by_every_command(tmp_path):
    """An iPhone's folder: "no images" would deny what the user sees; every command that lists a
    folder names the files it does not read, and a mixed folder's run says it left them out."""
    heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(64)
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("IMG_1.HEIC", "IMG_2.heic"):
        (photos / name).write_bytes(heic)
    said = "2 .heic files i2i does not read: convert them to PNG or JPEG"
    net = tiny_sr()
    save_model(tmp_path / "sr.safetensors", {"G": net}, spec_for_network(net, "srgan", task="sr", **SR_RANGES))
    commands = [["translate", str(tmp_path / "sr.safetensors"), str(photos), str(tmp_path / "out")],
                ["train", "pix2pix", "--data", str(photos), "--task", "sketch", "--out", str(tmp_path / "run")],
                ["train", "srgan", "--data", str(photos), "--out", str(tmp_path / "sr")],
                ["data", "derive", "sr", str(photos), str(tmp_path / "pairs")],
                ["eval", "bicubic", str(photos), "--scale", "4"],
                ["data", "inspect", str(photos)]]
    for command in commands:
        result = CliRunner().invoke(i2i.cli.main, command)
        assert result.exit_code != 0 and said in result.output, (command, result.output)
    PIL.Image.fromarray(pattern(8, 8)).save(photos / "ok.png")
    result = CliRunner().invoke(i2i.cli.main, ["translate", str(tmp_path / "sr.safetensors"), str(photos),
                                               str(tmp_path / "out"), "--device", "cpu"])
    assert result.exit_code == 0 and f"note: {said}; translating the other 1" in result.output, result.output


def test_i2i_translate_keeps_exif_only_when_asked(tmp_path):
    """Real-ESRGAN writes outputs without metadata, and so does i2i by default (GPS tags stay
    home); `--keep-metadata` carries date and camera, the orientation made 1 since the pixels
    are written upright, for outputs written whole and for those streamed a row of tiles at a time."""
    net = tiny_sr()
    save_model(tmp_path / "sr.safetensors", {"G": net}, spec_for_network(net, "srgan", task="sr", **SR_RANGES))
    (tmp_path / "in").mkdir()
    PIL.Image.fromarray(pattern(10, 20)).save(tmp_path / "in/camera.jpg", exif=_camera_exif())
    command = ["translate", str(tmp_path / "sr.safetensors"), str(tmp_path / "in"), "--device", "cpu"]
    result = CliRunner().invoke(i2i.cli.main, [*command, str(tmp_path / "plain"), "--ext", "jpg"])
    assert result.exit_code == 0, result.output
    with PIL.Image.open(tmp_path / "plain/camera.jpg") as pil:
        assert pil.size == (20, 40) and not pil.getexif()
    for out, ext in (("kept", "jpg"), ("kept_png", "png")):
        result = CliRunner().invoke(i2i.cli.main, [*command, str(tmp_path / out), "--ext", ext, "--keep-metadata"])
        assert result.exit_code == 0, result.output
        with PIL.Image.open(tmp_path / f"{out}/camera.{ext}") as pil:
            tags = pil.getexif()
            assert pil.size == (20, 40) and tags.get(0x0112) == 1 and tags.get(0x010F) == "Apple"
            assert tags.get_ifd(0x8769).get(0xA003) == 40


def test_a_streamed_output_keeps_exif_when_asked(tmp_path, monkeypatch):
    from i2i.infer import folder

    monkeypatch.setattr(folder, "STREAM_PIXELS", 20 * 10)
    (tmp_path / "in").mkdir()
    PIL.Image.fromarray(pattern(10, 20)).save(tmp_path / "in/camera.jpg", exif=_camera_exif())
    summary = _sr_translator().translate_folder(tmp_path / "in", tmp_path / "out", tile=16, tile_pad=4,
                                                progress=False, keep_metadata=True)
    assert summary.done == 1
    with PIL.Image.open(tmp_path / "out/camera.png") as pil:
        assert pil.size == (20, 40) and pil.getexif().get(0x0112) == 1 and pil.getexif().get(0x010F) == "Apple"


def test_an_animation_or_a_multi_page_tiff_is_translated_as_its_first_frame_and_said(tmp_path):
    frames = [PIL.Image.fromarray(pattern(8, 8, seed=i)) for i in range(3)]
    (tmp_path / "in").mkdir()
    frames[0].save(tmp_path / "in/anim.webp", save_all=True, append_images=frames[1:], duration=100, lossless=True)
    frames[0].save(tmp_path / "in/pages.tif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "in/still.png")
    assert [io.read_image(tmp_path / "in" / n).frames for n in ("anim.webp", "pages.tif", "still.png")] == [3, 3, 1]
    summary = _sr_translator().translate_folder(tmp_path / "in", tmp_path / "out", progress=False)
    assert summary.done == 3 and summary.frames_dropped == 2
    assert "2 inputs held several frames or pages (an animation, a multi-page TIFF): the first was translated" \
        in str(summary)


def test_a_folder_translation_walks_its_input_folder_once_for_images_and_unread_files(tmp_path, monkeypatch, capsys):
    """The note on HEIC files comes from the walk that lists the images: a huge input folder
    (a network share of a million photos) is not walked a second time for it."""
    import os

    (tmp_path / "in/sub").mkdir(parents=True)
    PIL.Image.fromarray(pattern(8, 8)).save(tmp_path / "in/sub/ok.png")
    (tmp_path / "in/IMG_1.heic").write_bytes(b"x")
    walks = []
    real_walk = os.walk
    monkeypatch.setattr(io.os, "walk", lambda top, *a, **k: walks.append(top) or real_walk(top, *a, **k))
    summary = _sr_translator().translate_folder(tmp_path / "in", tmp_path / "out", progress=True)
    assert summary.done == 1 and len(walks) == 1, walks
    assert "note: 1 .heic file i2i does not read: convert them to PNG or JPEG; translating the other 1" \
        in capsys.readouterr().err
