"""`i2i serve` fed the photo files people have, over real HTTP (uvicorn on 127.0.0.1 in a thread,
a tiny x2 SR model): AVIF (alpha, gray, profile), phone photos turned by EXIF, CMYK JPEG, 16-bit
PNG with a profile, animations, formats i2i does not read, broken and oversized files, and a
body sent the way `curl -d @photo.jpg` sends it."""
from __future__ import annotations

import http.client
import io as stdio
import json
import struct
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageCms
import PIL.ImageOps
import pytest
from test_infer import SR_RANGES, pattern, tiny_sr

from i2i.checkpoint import save_model
from i2i.data import io
from i2i.spec import spec_for_network

pytest.importorskip("starlette", reason='the serve extra is not installed: pip install -e ".[serve]"')
pytest.importorskip("uvicorn", reason='the serve extra is not installed: pip install -e ".[serve]"')

from i2i.serve.app import create_app
from i2i.serve.catalog import Catalog
from i2i.serve.engine import Engine
from i2i.serve.server import ServerThread, uvicorn_server

needs_avif = pytest.mark.skipif(not io.AVIF, reason="this Pillow has no AVIF (libavif)")

MAX_UPLOAD = 200_000
MAX_PIXELS = 1_000_000
PROFILE = PIL.ImageCms.ImageCmsProfile(PIL.ImageCms.createProfile("sRGB")).tobytes()
RGB = pattern(12, 16)  # H x W


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve_photos")
    net = tiny_sr()
    (root / "models").mkdir()
    save_model(root / "models" / "sr.safetensors", {"G": net}, spec_for_network(net, "srgan", task="sr", **SR_RANGES))
    app = create_app(Catalog([str(root / "models")]), Engine(device="cpu", precision="fp32"),
                     max_upload_bytes=MAX_UPLOAD, max_pixels=MAX_PIXELS)
    thread = ServerThread(uvicorn_server(app))
    yield thread
    thread.stop()


def post(server: ServerThread, body: bytes, headers: dict | None = None) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection(server.url.split("//")[1], timeout=120)
    try:
        connection.request("POST", "/api/translate?model=sr", body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def answer_png(answer: tuple[int, dict, bytes]) -> PIL.Image.Image:
    status, headers, body = answer
    assert status == 200, body[:300]
    assert headers["content-type"] == "image/png"
    return PIL.Image.open(stdio.BytesIO(body))


def error_of(answer: tuple[int, dict, bytes], status: int) -> str:
    got, headers, body = answer
    assert got == status, body[:300]
    assert headers["content-type"] == "application/json"
    message = json.loads(body)["error"]
    assert "\n" not in message and "/tmp" not in message and "Traceback" not in message
    return message


def saved(pil: PIL.Image.Image, kind: str, **options) -> bytes:
    buffer = stdio.BytesIO()
    pil.save(buffer, kind, **options)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- what works


@needs_avif
def test_avif_with_alpha_gray_or_a_profile_comes_back_as_such(server):
    alpha = np.tile(np.linspace(0, 255, 16).astype(np.uint8), (12, 1))
    out = answer_png(post(server, saved(PIL.Image.fromarray(np.dstack([RGB, alpha]), "RGBA"), "AVIF", quality=90)))
    assert out.mode == "RGBA" and out.size == (32, 24)
    assert np.asarray(out)[..., 3].max() > 200 and np.asarray(out)[..., 3].min() < 30
    out = answer_png(post(server, saved(PIL.Image.fromarray(RGB[..., 0], "L"), "AVIF", quality=90),
                          {"Content-Type": "image/avif"}))
    assert out.mode == "L" and out.size == (32, 24)
    out = answer_png(post(server, saved(PIL.Image.fromarray(RGB), "AVIF", quality=90, icc_profile=PROFILE)))
    assert out.info.get("icc_profile") == PROFILE


def test_a_phone_jpeg_comes_back_upright_with_its_profile(server):
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # stored on its side: turn 90 degrees clockwise
    upload = saved(PIL.Image.fromarray(RGB), "JPEG", quality=95, exif=exif.tobytes(), icc_profile=PROFILE)
    out = answer_png(post(server, upload, {"Content-Type": "image/jpeg"}))
    assert out.size == (24, 32) and out.info.get("icc_profile") == PROFILE and "exif" not in out.info
    upright = np.asarray(PIL.ImageOps.exif_transpose(PIL.Image.open(stdio.BytesIO(upload)))).astype(int)
    assert np.abs(np.asarray(out.resize((12, 16), PIL.Image.BICUBIC)).astype(int) - upright).mean() < 20


def test_a_cmyk_jpeg_and_a_16_bit_png_with_a_profile(server):
    out = answer_png(post(server, saved(PIL.Image.fromarray(RGB).convert("CMYK"), "JPEG", quality=95)))
    assert out.mode == "RGB" and out.size == (32, 24) and "icc_profile" not in out.info
    assert np.abs(np.asarray(out.resize((16, 12), PIL.Image.BICUBIC)).astype(int) - RGB.astype(int)).mean() < 30
    status, _, body = post(server, io.encode_png(RGB.astype(np.uint16) * 257, icc=PROFILE))
    assert status == 200 and body[24] == 16  # IHDR bit depth: 16-bit in, 16-bit out
    assert PIL.Image.open(stdio.BytesIO(body)).info.get("icc_profile") == PROFILE


@pytest.mark.parametrize("name, head, said", [
    ("heic", b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(64), "HEIC"),
    ("gif", saved(PIL.Image.fromarray(RGB).convert("P"), "GIF"), "GIF"),
    ("psd", b"8BPS" + bytes(64), "PSD"),
    ("jxl", b"\xff\x0a" + bytes(64), "JPEG XL"),
    ("text", b"hello, world", "not an image"),
])
def test_a_format_i2i_does_not_read_is_named_in_one_line(server, name, head, said):
    assert said in error_of(post(server, head), 400)


@needs_avif
def test_broken_empty_huge_and_oversized_uploads(server):
    good = saved(PIL.Image.fromarray(RGB), "AVIF", quality=90)
    assert "truncated" in error_of(post(server, good[:int(len(good) * 0.9)]), 400)
    assert "no image" in error_of(post(server, b""), 400)
    huge = bytearray(good)
    struct.pack_into(">II", huge, huge.find(b"ispe") + 8, 2000, 2000)  # header: 2000 x 2000
    assert "image too large" in error_of(post(server, bytes(huge)), 422)
    assert "upload too large" in error_of(post(server, bytes(MAX_UPLOAD + 1)), 413)
    assert "not as a form" in error_of(post(server, good, {"Content-Type": "multipart/form-data; boundary=x"}), 400)
    answer_png(post(server, good, {"Content-Type": "text/plain"}))  # the bytes count, not the label


def test_the_page_takes_avif_files():
    page = (Path(io.__file__).parents[1] / "serve" / "static" / "index.html").read_text()
    assert ".avif" in page.split('type="file"', 1)[1].split(">", 1)[0]


# ----------------------------------------------------------------------------- defects found


def test_a_photo_sent_with_curl_d_is_told_to_use_data_binary(server):
    """`curl -d @photo.png` (not --data-binary) drops every CR and LF byte of the file and labels
    it a form: the server said "not an image" of a photo that is fine."""
    upload = io.encode_png(RGB)
    mangled = upload.replace(b"\r", b"").replace(b"\n", b"")
    message = error_of(post(server, mangled, {"Content-Type": "application/x-www-form-urlencoded"}), 400)
    assert "--data-binary" in message
    answer_png(post(server, upload, {"Content-Type": "application/x-www-form-urlencoded"}))  # urllib's default label
    assert "--data-binary" not in error_of(post(server, mangled, {"Content-Type": "image/png"}), 400)


def test_an_animation_or_multi_page_file_says_only_its_first_frame_was_translated(server):
    """`i2i translate` says so in its summary; the endpoint (and the page) said nothing."""
    frames = [PIL.Image.fromarray(pattern(12, 16, seed=seed)) for seed in range(3)]
    for kind, options in (("WEBP", {"lossless": True}), ("TIFF", {})):
        answer = post(server, saved(frames[0], kind, save_all=True, append_images=frames[1:], **options))
        assert answer_png(answer).size == (32, 24)
        assert answer[1].get("x-i2i-frames") == "3", kind
    assert "x-i2i-frames" not in post(server, saved(frames[0], "WEBP"))[1]
    script = (Path(io.__file__).parents[1] / "serve" / "static" / "app.js").read_text()
    assert "X-I2I-Frames" in script  # the page says it too
