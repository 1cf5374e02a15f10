"""Inference API: load_model, Translator on PIL/numpy/tensors, padding, tiles, folders.

Tiny networks (width 4) saved as real model files; tiny images written as real files.
"""
from __future__ import annotations

import io as bytes_io
import json
import os
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

import i2i
import i2i.nn
from conftest import save
from i2i.checkpoint import save_model
from i2i.data import io
from i2i.errors import I2IError, UsageError
from i2i.infer import Translator, load_model
from i2i.spec import spec_for_network

CYCLEGAN_DIRECTIONS = {"AtoB": "G_A", "BtoA": "G_B"}
SR_RANGES = {"input_range": (0, 1), "output_range": (0, 1)}


def tiny_resnet(seed: int) -> torch.nn.Module:
    """resnet_6blocks, width 4, BatchNorm; xavier(1) init so outputs vary (normal 0.02 gives ~0.5 everywhere)."""
    torch.manual_seed(seed)
    return i2i.nn.init_weights(i2i.nn.create("resnet_6blocks", width=4, norm="batch"), "xavier", 1.0)


def tiny_sr() -> torch.nn.Module:
    torch.manual_seed(2)
    return i2i.nn.create("srresnet", width=4, num_blocks=1, scale=2)


def make_models(folder: Path) -> dict[str, Path]:
    """A CycleGAN model file (G_A, G_B) and an SR model file (x2)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"cyclegan": folder / "cyclegan.safetensors", "sr": folder / "sr.safetensors"}
    g_a, sr = tiny_resnet(0), tiny_sr()
    save_model(paths["cyclegan"], {"G_A": g_a, "G_B": tiny_resnet(1)},
               spec_for_network(g_a, "cyclegan", directions=CYCLEGAN_DIRECTIONS))
    save_model(paths["sr"], {"G": sr}, spec_for_network(sr, "srgan", task="sr", **SR_RANGES))
    return paths


def pattern(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A smooth uint8 picture with some noise (JPEG-friendly)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / max(width, 1), y * 255 / max(height, 1), (x + y) * 127 / max(width + height, 1)], -1)
    base = base[..., :channels] + rng.normal(0, 10, (height, width, channels))
    return np.clip(base, 0, 255).astype(np.uint8)


def make_tree(root: Path) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """A real folder tree of awkward images. Returns ({good relative path: (w, h) upright}, [bad paths])."""
    good: dict[str, tuple[int, int]] = {}

    def save(rel: str, pil: PIL.Image.Image, size: tuple[int, int] | None = None, **options) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pil.save(path, **options)
        good[rel] = size or pil.size

    save("rgb.png", PIL.Image.fromarray(pattern(16, 20)))
    save("sub/odd.jpg", PIL.Image.fromarray(pattern(23, 37)), quality=90)
    save("sub/gray.png", PIL.Image.fromarray(pattern(11, 15, 1)[..., 0]))
    rgba = np.dstack([pattern(10, 12), np.linspace(0, 255, 120).reshape(10, 12).astype(np.uint8)])
    save("sub/deeper/rgba.png", PIL.Image.fromarray(rgba))
    save("palette.png", PIL.Image.fromarray(pattern(9, 14)).convert("P", palette=PIL.Image.Palette.ADAPTIVE))
    save("cmyk.jpg", PIL.Image.fromarray(pattern(13, 17)).convert("CMYK"))
    save("tiny.png", PIL.Image.fromarray(pattern(1, 1)))
    save("uni/dir with space/café photo é.png", PIL.Image.fromarray(pattern(8, 9)))
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # stored 20 wide x 10 high, shown rotated: 10 x 20
    save("rotated.jpg", PIL.Image.fromarray(pattern(10, 20)), size=(10, 20), exif=exif.tobytes())
    sixteen = (pattern(9, 10).astype(np.uint16) * 257 + 100).astype(np.uint16)
    io.write_image(root / "sub/deeper/deep16.png", sixteen)
    good["sub/deeper/deep16.png"] = (10, 9)
    io.write_image(root / "gray16.png", sixteen[..., :1])
    good["gray16.png"] = (10, 9)

    buffer = bytes_io.BytesIO()
    PIL.Image.fromarray(pattern(30, 30)).save(buffer, "PNG")
    (root / "broken").mkdir()
    (root / "broken/truncated.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (root / "broken/empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an image")
    return good, ["broken/truncated.png", "broken/empty.png"]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return make_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def cyclegan(models) -> Translator:
    return load_model(models["cyclegan"], device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def sr(models) -> Translator:
    return load_model(models["sr"], device="cpu", precision="fp32")


def output_for(root: Path, rel: str, ext: str = ".png", suffix: str = "") -> Path:
    path = root / rel
    return path.with_name(path.stem + suffix + ext)


# ----------------------------------------------------------------------------- one image


def test_public_api_is_lazy_and_builds_translators(models):
    translator = i2i.load_model(models["cyclegan"], device="cpu")
    assert isinstance(translator, i2i.Translator)
    assert translator.precision in ("fp32", "bf16")
    assert (translator.scale, translator.size.multiple) == (1, 4)


def test_returns_the_kind_it_is_given(cyclegan):
    for mode in ("RGB", "L", "RGBA", "LA", "P", "CMYK"):
        out = cyclegan(PIL.Image.new(mode, (13, 7)))
        assert isinstance(out, PIL.Image.Image) and out.size == (13, 7)
        assert out.mode == ("RGBA" if mode in ("RGBA", "LA") else "RGB"), mode
    gray16 = PIL.Image.fromarray(np.full((5, 6), 40000, np.uint16))
    assert cyclegan(gray16).mode == "RGB"  # Pillow has no 16-bit colour

    array = pattern(7, 9)
    out = cyclegan(array)
    assert out.dtype == np.uint8 and out.shape == (7, 9, 3)
    assert cyclegan(array[..., 0]).shape == (7, 9, 3)  # HxW gray into an RGB model
    assert cyclegan(array.astype(np.uint16) * 257).dtype == np.uint16
    floats = cyclegan(array.astype(np.float32) / 255)
    assert floats.dtype == np.float32 and 0 <= floats.min() and floats.max() <= 1
    with_alpha = np.dstack([array, np.full((7, 9), 77, np.uint8)])
    assert (cyclegan(with_alpha)[..., 3] == 77).all()

    x = torch.rand(3, 7, 9, dtype=torch.float64)
    y = cyclegan(x)
    assert isinstance(y, torch.Tensor) and y.shape == (3, 7, 9) and y.dtype == torch.float64
    assert cyclegan(x[None].float()).shape == (1, 3, 7, 9)
    assert 0 <= y.min() and y.max() <= 1
    with pytest.raises(UsageError, match="float"):
        cyclegan(torch.zeros(3, 4, 4, dtype=torch.uint8))
    with pytest.raises(UsageError, match="PIL image, a numpy array or a tensor"):
        cyclegan([[0]])


def test_kinds_agree(cyclegan):
    array = pattern(12, 10)
    from_array = cyclegan(array)
    from_pil = np.asarray(cyclegan(PIL.Image.fromarray(array)))
    from_tensor = io.from_tensor(cyclegan(io.to_tensor(array)))
    np.testing.assert_array_equal(from_array, from_pil)
    assert np.abs(from_array.astype(int) - from_tensor.astype(int)).max() <= 1


@pytest.mark.parametrize("height,width", [(1, 1), (1, 7), (2, 2), (3, 5), (23, 37), (64, 4)])
def test_any_size_comes_back_at_its_size(cyclegan, sr, height, width):
    assert cyclegan(pattern(height, width)).shape == (height, width, 3)
    assert sr(pattern(height, width)).shape == (2 * height, 2 * width, 3)


def test_sr_keeps_gray_alpha_and_16_bits(sr):
    gray16 = PIL.Image.fromarray((pattern(7, 5, 1)[..., 0].astype(np.uint16) * 257))
    out = sr(gray16)
    assert out.mode == "I;16" and out.size == (10, 14)
    rgba = np.dstack([pattern(6, 8), np.tile(np.linspace(0, 255, 8).astype(np.uint8), (6, 1))])
    out = sr(rgba)
    assert out.shape == (12, 16, 4)
    # the alpha goes through the model (Real-ESRGAN's default), still a left-to-right ramp
    assert out[..., 3].astype(int)[:, 0].max() < 30 and out[..., 3].astype(int)[:, -1].min() > 225


def test_direction_picks_the_generator(models):
    x = io.to_tensor(pattern(16, 16))[None]
    a_to_b = load_model(models["cyclegan"], device="cpu", precision="fp32")
    b_to_a = load_model(models["cyclegan"], device="cpu", precision="fp32", direction="BtoA")
    expected = (tiny_resnet(1).eval()(x * 2 - 1) + 1) / 2
    torch.testing.assert_close(b_to_a(x), expected.clamp(0, 1), atol=1e-5, rtol=0)
    assert (a_to_b(x) - b_to_a(x)).abs().max() > 0.01


def test_tiled_equals_untiled_away_from_borders(models):
    # SR nets reach ~10 px: a 16 px pad is exact (float noise only)
    sr = load_model(models["sr"], device="cpu", precision="fp32")
    x = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 70, 58), 3, 1, 1)
    full = sr(x)
    tiled = sr(x, tile=16, tile_pad=16)
    torch.testing.assert_close(tiled, full, atol=1e-5, rtol=0)
    # a ResNet generator (BatchNorm, eval) reaches further: a 48 px pad gets within 1/255
    net = load_model(models["cyclegan"], device="cpu", precision="fp32")
    x = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 136, 120), 5, 1, 2)
    full = net(x)
    tiled = net(x, tile=32, tile_pad=48)
    assert full.std() > 0.05  # the net really varies its output
    assert (tiled - full)[..., 8:-8, 8:-8].abs().max() < 1 / 255
    assert (net(x, tile=32, tile_pad=0) - full).abs().max() > 0.05  # context is what matters


def test_lab_colorization_model(tmp_path):
    torch.manual_seed(0)
    unet = i2i.nn.init_weights(i2i.nn.create("unet_32", in_channels=1, out_channels=2, width=4), "xavier", 1.0)
    save_model(tmp_path / "color.safetensors", {"G": unet},
               spec_for_network(unet, "pix2pix", color_space="lab", task="colorize_lab"))
    colorize = load_model(tmp_path / "color.safetensors", device="cpu", precision="fp32")
    gray = pattern(20, 18, 1)[..., 0]
    out = colorize(gray)
    assert out.shape == (20, 18, 3)
    assert np.abs(out.astype(int) - out.astype(int).mean(axis=2, keepdims=True)).max() > 3  # coloured
    assert colorize(pattern(5, 3)).shape == (5, 3, 3)
    with pytest.raises(UsageError, match="AtoB"):
        load_model(tmp_path / "color.safetensors", device="cpu", direction="BtoA")


def test_precision_choices(models):
    fp32 = load_model(models["sr"], device="cpu", precision="fp32")
    assert fp32.precision == "fp32"
    bf16 = load_model(models["sr"], device="cpu", precision="bf16")
    x = torch.rand(1, 3, 16, 12)
    assert bf16.precision == "bf16" and (bf16(x) - fp32(x)).abs().max() < 0.05
    auto = load_model(models["sr"], device="cpu")
    assert auto.precision in ("fp32", "bf16") and auto.channels_last in (False, True)
    with pytest.raises(UsageError):
        load_model(models["sr"], device="cpu", precision="fp16")


def test_bad_models_are_one_line_errors(tmp_path, models):
    (tmp_path / "text.safetensors").write_text("hello")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    torch.save({"w": torch.zeros(2)}, tmp_path / "foreign.pth")
    (tmp_path / "run3/checkpoints").mkdir(parents=True)
    torch.save({"step": 5}, tmp_path / "run3/checkpoints/step_5.pt")
    (tmp_path / "run").mkdir()
    cases = {
        tmp_path / "missing.safetensors": "not found",
        tmp_path / "text.safetensors": "not a safetensors",
        tmp_path / "foreign.safetensors": "not an i2i model.*i2i models import",
        tmp_path / "foreign.pth": "a PyTorch checkpoint.*i2i models import FILE --out",
        tmp_path / "run3/checkpoints/step_5.pt": "a training checkpoint .*run3/model.safetensors",
        tmp_path / "run": "no model.safetensors",
        "no-such-model-name": "no-such-model-name",
    }
    for model, words in cases.items():
        with pytest.raises(I2IError, match=words) as caught:
            load_model(model, device="cpu")
        assert "\n" not in str(caught.value)
    (tmp_path / "run2").mkdir()
    (tmp_path / "run2/model.safetensors").write_bytes(models["sr"].read_bytes())
    assert load_model(tmp_path / "run2", device="cpu").scale == 2  # a run folder


# ----------------------------------------------------------------------------- folders


def test_translate_folder_tree(tmp_path, cyclegan, capsys):
    src, dst = tmp_path / "in", tmp_path / "out"
    good, bad = make_tree(src)
    summary = cyclegan.translate_folder(src, dst, suffix="_fake", batch_size=2)
    assert (summary.done, summary.skipped, summary.failed) == (len(good), 0, len(bad))
    err = capsys.readouterr().err
    for rel in bad:
        assert str(src / rel) in err
    assert "Traceback" not in err and "notes" not in err
    assert f"done {len(good)}, skipped 0, failed {len(bad)}" in err

    outputs = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file())
    assert outputs == sorted(output_for(Path(), rel, suffix="_fake").as_posix() for rel in good)
    for rel, size in good.items():
        out = io.read_image(output_for(dst, rel, suffix="_fake"))
        assert out.size == size, rel
        assert out.pixels.shape[2] == 3, rel
    rgba = io.read_image(output_for(dst, "sub/deeper/rgba.png", suffix="_fake"))
    np.testing.assert_array_equal(rgba.alpha, io.read_image(src / "sub/deeper/rgba.png").alpha)
    assert io.read_image(output_for(dst, "sub/deeper/deep16.png", suffix="_fake")).bit_depth == 16
    assert io.read_image(output_for(dst, "gray16.png", suffix="_fake")).bit_depth == 16
    assert io.read_image(output_for(dst, "rgb.png", suffix="_fake")).bit_depth == 8

    # the folder run gives what the one-image API gives
    expected = cyclegan(io.read_image(src / "sub/odd.jpg").pixels)
    np.testing.assert_array_equal(io.read_image(output_for(dst, "sub/odd.jpg", suffix="_fake")).pixels, expected)


def test_skip_and_overwrite(tmp_path, cyclegan, capsys):
    src, dst = tmp_path / "in", tmp_path / "out"
    good, bad = make_tree(src)
    cyclegan.translate_folder(src, dst, progress=False)
    target = dst / "rgb.png"
    original = target.read_bytes()
    io.write_image(target, np.zeros((2, 2, 3), np.uint8))  # a stale output
    again = cyclegan.translate_folder(src, dst, progress=False)
    assert (again.done, again.skipped, again.failed) == (0, len(good), len(bad))
    assert io.read_image(target).size == (2, 2)
    redo = cyclegan.translate_folder(src, dst, progress=False, overwrite=True)
    assert (redo.done, redo.skipped, redo.failed) == (len(good), 0, len(bad))
    assert target.read_bytes() == original
    capsys.readouterr()


def test_sr_folder_sizes_alpha_gray(tmp_path, sr, capsys):
    src, dst = tmp_path / "in", tmp_path / "out"
    good, bad = make_tree(src)
    summary = sr.translate_folder(src, dst, ext="same", tile=8, tile_pad=8, progress=False)
    assert (summary.done, summary.failed) == (len(good), len(bad))
    for rel, (width, height) in good.items():
        out = io.read_image(dst / rel)
        assert out.size == (2 * width, 2 * height), rel
    assert io.read_image(dst / "sub/gray.png").pixels.shape[2] == 1  # SR keeps gray gray
    assert io.read_image(dst / "sub/deeper/rgba.png").alpha.shape == (20, 24)
    assert io.read_image(dst / "gray16.png").bit_depth == 16
    assert "truncated.png" in capsys.readouterr().err


def test_batches_match_single_images(tmp_path, cyclegan):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        io.write_image(src / f"{i}.png", pattern(12, 16, seed=i))
    io.write_image(src / "other.png", pattern(8, 8))  # a different size between batches
    one = cyclegan.translate_folder(src, tmp_path / "one", batch_size=1, progress=False)
    many = cyclegan.translate_folder(src, tmp_path / "many", batch_size=4, progress=False)
    assert one.done == many.done == 6
    for path in sorted((tmp_path / "one").iterdir()):
        a = io.read_image(path).pixels.astype(int)
        b = io.read_image(tmp_path / "many" / path.name).pixels.astype(int)
        assert np.abs(a - b).max() <= 1


def test_workers_match_one_worker_and_restore_threads(tmp_path, models):
    src = tmp_path / "in"
    for i in range(7):
        io.write_image(src / f"{i}.png", pattern(12 + 4 * (i % 2), 16, seed=i))  # two sizes
    threads = torch.get_num_threads()
    translator = load_model(models["cyclegan"], device="cpu", precision="auto")  # workers agree on the tuning
    one = translator.translate_folder(src, tmp_path / "one", workers=1, progress=False)
    many = translator.translate_folder(src, tmp_path / "many", workers=3, batch_size=2, progress=False)
    assert (one.done, many.done, many.failed) == (7, 7, 0)
    assert torch.get_num_threads() == threads
    for path in sorted((tmp_path / "one").iterdir()):
        a = io.read_image(path).pixels.astype(int)
        b = io.read_image(tmp_path / "many" / path.name).pixels.astype(int)
        assert np.abs(a - b).max() <= 1
    with pytest.raises(UsageError, match="workers"):
        translator.translate_folder(src, tmp_path / "x", workers=0, progress=False)


class FailsOnTallImages(torch.nn.Module):
    """Stands in for a batch that runs out of memory: fails on inputs taller than 12 rows."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] > 12:
            raise RuntimeError("not enough memory: you tried to allocate 9 GB")
        return x


def test_a_failing_batch_fails_only_its_images(tmp_path, capsys):
    src = tmp_path / "in"
    for i in range(4):
        io.write_image(src / f"small{i}.png", pattern(8, 8, seed=i))
        io.write_image(src / f"tall{i}.png", pattern(16, 8, seed=i))
    translator = Translator(FailsOnTallImages(), device="cpu", precision="fp32")
    summary = translator.translate_folder(src, tmp_path / "out", batch_size=2, workers=2, progress=False)
    assert (summary.done, summary.failed) == (4, 4)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"small{i}.png" for i in range(4)]
    err = capsys.readouterr().err
    assert "tall3.png" in err and "not enough memory" in err and "Traceback" not in err


def test_a_rerun_removes_the_temp_files_a_killed_run_left(tmp_path, cyclegan):
    """kill -9 skips the temp file's cleanup; the next run into that folder removes it, but
    never the temp file another live process is writing (it holds it locked)."""
    import fcntl

    src, dst = tmp_path / "in", tmp_path / "out"
    io.write_image(src / "a.png", pattern(8, 8))
    io.write_image(src / "sub/b.png", pattern(8, 8, seed=1))
    killed = [dst / ".a.png.0123456789ab.tmp", dst / "sub/.b.png.ba9876543210.tmp"]
    for path in killed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a png")
    live = dst / ".c.png.aaaaaaaaaaaa.tmp"
    live.write_bytes(b"being written")
    with open(live, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        summary = cyclegan.translate_folder(src, dst, progress=False)
    assert summary.done == 2 and not any(path.exists() for path in killed) and live.exists()


def test_a_full_disk_stops_the_run_at_the_first_write(tmp_path, cyclegan, monkeypatch):
    """Every write after the first failing one fails the same way: one line, the images
    written so far kept, the rest not computed for nothing; a rerun continues."""
    import errno

    import i2i.atomic

    src, dst = tmp_path / "in", tmp_path / "out"
    for i in range(12):
        io.write_image(src / f"{i:02d}.png", pattern(8, 8, seed=i))
    replace, room = os.replace, [2]

    def full_after_two(a, b):  # the disk fills up after two images
        if not room[0]:
            raise OSError(errno.ENOSPC, "No space left on device")
        room[0] -= 1
        replace(a, b)

    monkeypatch.setattr(i2i.atomic.os, "replace", full_after_two)
    with pytest.raises(I2IError) as error:
        cyclegan.translate_folder(src, dst, progress=False, workers=1)
    message = str(error.value)
    assert "cannot write the file (No space left on device); stopped after 2 images were written" in message
    assert "\n" not in message and len(list(dst.iterdir())) == 2  # no temp file left either
    monkeypatch.setattr(i2i.atomic.os, "replace", replace)
    again = cyclegan.translate_folder(src, dst, progress=False)
    assert (again.done, again.skipped) == (10, 2)


def test_single_file_outputs_and_collisions(tmp_path, cyclegan, capsys):
    src = tmp_path / "in"
    src.mkdir()
    io.write_image(src / "a.png", pattern(8, 8))
    io.write_image(src / "a.jpg", pattern(8, 8))
    summary = cyclegan.translate_folder(src, tmp_path / "out", progress=False)
    assert (summary.done, summary.failed) == (1, 1)
    assert "a.jpg" in capsys.readouterr().err
    assert cyclegan.translate_folder(src, tmp_path / "out2", ext="same", progress=False).done == 2

    cyclegan.translate_folder(src / "a.png", tmp_path / "named.jpg", progress=False)
    assert io.read_image(tmp_path / "named.jpg").size == (8, 8)
    cyclegan.translate_folder(src / "a.png", tmp_path / "folder", ext="jpg", progress=False)
    assert (tmp_path / "folder/a.jpg").is_file()


def test_output_inside_input_is_not_reprocessed(tmp_path, cyclegan):
    src = tmp_path / "in"
    src.mkdir()
    io.write_image(src / "a.png", pattern(8, 8))
    first = cyclegan.translate_folder(src, src / "out", progress=False)
    second = cyclegan.translate_folder(src, src / "out", progress=False)
    assert (first.done, second.skipped, second.done) == (1, 1, 0)
    assert not (src / "out/out").exists()


def test_folder_errors(tmp_path, cyclegan):
    with pytest.raises(I2IError, match="no such file"):
        cyclegan.translate_folder(tmp_path / "missing", tmp_path / "out", progress=False)
    with pytest.raises(UsageError):
        cyclegan.translate_folder(tmp_path, tmp_path / "out", ext="gif", progress=False)


def test_instance_norm_swap_is_exact():
    torch.manual_seed(0)
    net = i2i.nn.init_weights(i2i.nn.create("resnet_6blocks", width=4, norm="instance"), "xavier", 1.0).eval()
    x = torch.rand(2, 3, 24, 20)
    with torch.inference_mode():
        expected = ((net(x * 2 - 1) + 1) / 2).clamp(0, 1)
    translator = Translator(net, device="cpu", precision="fp32", channels_last=True)
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in translator.net.modules())
    torch.testing.assert_close(translator(x), expected, atol=1e-5, rtol=0)


def test_auto_speed_is_measured_at_the_first_call(models):
    translator = load_model(models["sr"], device="cpu", precision="auto")
    translator(pattern(6, 6))
    assert not translator._candidates  # decided, and cached for the next load
    again = load_model(models["sr"], device="cpu", precision="auto")
    again(pattern(6, 6))
    assert (again.precision, again.channels_last) == (translator.precision, translator.channels_last)


def test_the_probe_winner_is_kept_for_later_processes(models, tmp_path, monkeypatch, capsys):
    """A later process (here: the in-process table cleared) takes the kept winner without
    measuring; a damaged file or a winner that is no longer a candidate is measured again."""
    from i2i.infer import speed

    monkeypatch.setenv("I2I_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(speed, "_TUNED", {})
    first = load_model(models["sr"], device="cpu", precision="auto")
    first(pattern(6, 6))
    assert "measuring which precision" in capsys.readouterr().err
    store = tmp_path / "home" / speed.STORE_NAME
    (key, winner), = json.loads(store.read_text()).items()
    assert winner == [first.precision, first.channels_last]

    speed._TUNED.clear()
    other = [c for c in [["fp32", True], ["fp32", False]] if c != winner][0]
    store.write_text(json.dumps({key: other}))  # what a later process finds: it is taken as it is
    kept = load_model(models["sr"], device="cpu", precision="auto")
    kept(pattern(6, 6))
    assert "measuring" not in capsys.readouterr().err
    assert [kept.precision, kept.channels_last] == other

    for damaged in ("{not json", json.dumps({key: ["fp64", True]})):
        speed._TUNED.clear()
        store.write_text(damaged)
        again = load_model(models["sr"], device="cpu", precision="auto")
        again(pattern(6, 6))
        assert "measuring which precision" in capsys.readouterr().err
        assert json.loads(store.read_text())[key] == [again.precision, again.channels_last]


def test_an_unwritable_home_says_why_every_run_measures_again(models, tmp_path, monkeypatch, capsys):
    """A read-only $I2I_HOME: the choice cannot be kept, so each run measured again without a word."""
    from i2i.infer import speed

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("I2I_HOME", str(tmp_path / "a-file" / "home"))  # cannot be made, even by root
    monkeypatch.setattr(speed, "_TUNED", {})
    load_model(models["sr"], device="cpu", precision="auto")(pattern(6, 6))
    err = capsys.readouterr().err
    assert "measuring which precision" in err and "cannot keep the choice" in err and "I2I_HOME" in err


class SlowIn(torch.nn.Module):
    """Identity that sleeps in one memory layout, and counts calls per layout."""

    def __init__(self, slow_channels_last: bool):
        super().__init__()
        self.slow_channels_last = slow_channels_last
        self.calls = {True: 0, False: 0}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        self.calls[channels_last] += 1
        if channels_last == self.slow_channels_last:
            time.sleep(0.03)
        return x


def test_speed_probe_keeps_the_expected_winner_unless_beaten():
    candidates = [("fp32", True), ("fp32", False)]  # the first is the expected winner
    slow_expected = SlowIn(slow_channels_last=True)
    translator = Translator(slow_expected, device="cpu", precision="fp32", channels_last=True)
    assert translator._fastest(candidates, 16, 16) == ("fp32", False)
    assert slow_expected.calls == {True: 4, False: 4}  # a warm-up and 3 rounds, all won by the rival

    slow_rival = SlowIn(slow_channels_last=False)
    translator = Translator(slow_rival, device="cpu", precision="fp32", channels_last=True)
    assert translator._fastest(candidates, 16, 16) == ("fp32", True)
    assert slow_rival.calls == {True: 2, False: 2}  # the rival is out at its first loss


def test_a_model_file_missing_or_adding_a_tensor_is_refused(tmp_path, models):
    """Weights load strictly: one tensor missing or one extra is one line naming it (a loose
    load would leave a layer at its uninitialised values and translate garbage)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from i2i.checkpoint import load_model as load_model_file

    with safe_open(str(models["sr"]), framework="pt") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    missing, extra = dict(tensors), {**tensors, "G.conv_first.extra": torch.zeros(2)}
    del missing["G.conv_last.bias"]
    for name, state, key in (("missing", missing, "conv_last.bias"), ("extra", extra, "conv_first.extra")):
        path = tmp_path / f"{name}.safetensors"
        save_file(state, str(path), metadata=metadata)
        for load in (lambda p: load_model_file(p), lambda p: load_model(p, device="cpu")):
            with pytest.raises(I2IError) as caught:
                load(path)
            message = str(caught.value)
            assert "\n" not in message and str(path) in message and key in message


class _PointwiseSR(torch.nn.Module):
    """Each output pixel depends on one input pixel only, so tiles with no context at all
    must reproduce the whole image exactly: any misplaced tile changes values, not shapes."""

    def __init__(self, scale: int, size_multiple: int):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3 * scale * scale, 1)
        self.shuffle = torch.nn.PixelShuffle(scale)
        self.scale, self.size_multiple, self.in_channels, self.out_channels = scale, size_multiple, 3, 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


@pytest.mark.parametrize("scale,multiple", [(1, 1), (2, 4), (3, 1)])
def test_tiles_land_exactly_where_they_belong(scale, multiple):
    torch.manual_seed(0)
    net = _PointwiseSR(scale, multiple)
    translator = Translator(net, spec_for_network(net, **SR_RANGES), device="cpu",
                            precision="fp32", channels_last=False)
    x = torch.rand(2, 3, 37, 29) * 0.5 + 0.25
    with torch.no_grad():
        expected = net(x).clamp(0, 1)
    full = translator(x)
    torch.testing.assert_close(full, expected, atol=1e-6, rtol=0)
    for tile, pad in ((8, 0), (12, 4), (9, 0), (16, 8), (30, 0)):  # remainders smaller than MIN_SIZE too
        torch.testing.assert_close(translator(x, tile=tile, tile_pad=pad), expected, atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------- pix2pix test mode


def _golden_unet_128(shared: Path) -> torch.nn.Module:
    from safetensors.torch import load_file

    net = i2i.nn.create("unet_128", width=8, norm="batch", dropout=True)
    net.load_state_dict(load_file(str(shared / "golden/cyclegan/unet_128.weights.safetensors")), strict=True)
    return net


def test_pix2pix_test_modes_reproduce_the_reference(shared_dir):
    """"train" is the reference's test.py without --eval (batch statistics, dropout on): its
    output, made by the reference code with a seed (tests/data/pix2pix_test_mode.safetensors),
    comes back for the same seed; "eval" gives the reference's eval-mode golden."""
    from safetensors.torch import load_file

    golden = load_file(str(shared_dir / "golden/cyclegan/unet_128.io.safetensors"))
    reference = load_file(str(Path(__file__).parent / "data/pix2pix_test_mode.safetensors"))
    x = (golden["input"] + 1) / 2
    seed = int(reference["seed"])
    spec = spec_for_network(_golden_unet_128(shared_dir), "pix2pix", test_mode="train")
    for mode, expected in (("train", reference["output_train_seeded"]), ("eval", golden["output"])):
        translator = Translator(_golden_unet_128(shared_dir), spec, device="cpu",
                                precision="fp32", seed=seed, test_mode=None if mode == "train" else mode)
        assert translator.test_mode == mode
        torch.testing.assert_close(translator(x), ((expected + 1) / 2).clamp(0, 1), atol=1e-5, rtol=0)
    other_seed = Translator(_golden_unet_128(shared_dir), spec, device="cpu", precision="fp32",
                            seed=seed + 1)
    assert (other_seed(x) - (reference["output_train_seeded"] + 1) / 2).abs().max() > 0.01  # dropout really on


def test_batch_statistics_match_the_reference_train_forward(shared_dir):
    """The BatchNorm half of the test mode, on the reference's train-mode golden (batch 2, no
    dropout); the running statistics stay as loaded."""
    from safetensors.torch import load_file

    from i2i.nn.inference import use_batch_statistics

    net = i2i.nn.create("resnet_6blocks", width=8, norm="batch", dropout=False)
    weights = load_file(str(shared_dir / "golden/cyclegan/resnet_6blocks_bn_train.weights.safetensors"))
    net.load_state_dict(weights, strict=True)
    golden = load_file(str(shared_dir / "golden/cyclegan/resnet_6blocks_bn_train.io.safetensors"))
    use_batch_statistics(net)
    with torch.no_grad():
        out = net(golden["input"])
    torch.testing.assert_close(out, golden["output"], atol=1e-5, rtol=1e-5)
    for key, value in net.state_dict().items():
        assert torch.equal(value, weights[key]), key


def _tiny_pix2pix_file(path: Path, test_mode: str = "train") -> Path:
    torch.manual_seed(3)
    net = i2i.nn.init_weights(i2i.nn.create("unet_64", width=4, norm="batch", dropout=True), "xavier", 1.0)
    assert any(isinstance(m, torch.nn.Dropout) for m in net.modules())
    with torch.no_grad():  # running statistics far from any image's own
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.fill_(0.5)
                module.running_var.fill_(4.0)
    save_model(path, {"G": net}, spec_for_network(net, "pix2pix", test_mode=test_mode))
    return path


def test_pix2pix_model_files_run_in_their_test_mode(tmp_path):
    new = _tiny_pix2pix_file(tmp_path / "new.safetensors")
    x = torch.rand(3, 3, 64, 64)
    train = load_model(new, device="cpu", precision="fp32")
    assert train.test_mode == "train"
    evaluate = load_model(new, device="cpu", precision="fp32", test_mode="eval")
    assert evaluate.test_mode == "eval"
    assert (train(x) - evaluate(x)).abs().max() > 0.05
    # each image on its own statistics and the same dropout seed: a batch is its images alone
    torch.testing.assert_close(train(x), torch.cat([train(x[i:i + 1]) for i in range(3)]), atol=1e-6, rtol=0)
    torch.testing.assert_close(train(x), train(x), atol=0, rtol=0)
    assert (load_model(new, device="cpu", precision="fp32", seed=1)(x) - train(x)).abs().max() > 0.01
    with pytest.raises(UsageError, match="test mode"):
        load_model(new, device="cpu", test_mode="predict")


def test_pix2pix_folder_in_train_mode_is_reproducible(tmp_path):
    model = _tiny_pix2pix_file(tmp_path / "model.safetensors")
    src = tmp_path / "in"
    for i in range(4):
        save(src / f"img_{i}.png", pattern(64, 64, seed=i))
    outputs = {}
    for name, kwargs in (("one", {}), ("batched", {"batch_size": 3, "workers": 2})):
        translator = load_model(model, device="cpu", precision="fp32")
        assert translator.translate_folder(src, tmp_path / name, progress=False, **kwargs).done == 4
        outputs[name] = [(tmp_path / name / f"img_{i}.png").read_bytes() for i in range(4)]
    assert outputs["one"] == outputs["batched"]
    single = load_model(model, device="cpu", precision="fp32")(PIL.Image.open(src / "img_2.png"))
    assert np.array_equal(np.asarray(single), np.asarray(PIL.Image.open(tmp_path / "one" / "img_2.png")))


def test_colour_into_a_gray_model_is_read_as_training_reads_it(tmp_path):
    """An RGB file into a 1-channel-input model: its luma rounded to 8-bit levels, as the
    training datasets (and the reference's PIL convert("L")) make gray images, not float luma."""
    from i2i.data.datasets import gray

    torch.manual_seed(0)
    net = i2i.nn.init_weights(i2i.nn.create("resnet_6blocks", in_channels=1, out_channels=3, width=4), "normal", 0.2)
    path = tmp_path / "gray_in.safetensors"
    save_model(path, {"G": net}, spec_for_network(net, "cyclegan"))
    model = load_model(path, device="cpu", precision="fp32")
    rgb = np.random.default_rng(1).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    with torch.no_grad():
        net.eval()
        expected = net(torch.from_numpy(gray(rgb)).permute(2, 0, 1)[None].float() / 255 * 2 - 1)
    expected = ((expected[0].permute(1, 2, 0).numpy() + 1) / 2 * 255).round().clip(0, 255).astype(np.uint8)
    np.testing.assert_array_equal(model(rgb), expected)
