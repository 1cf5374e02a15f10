"""Wrong inputs to the Python API (`i2i.load_model`, then `model(image, tile=..., tile_pad=...)`)
are one-line UsageErrors naming what is wrong, never a traceback or a silently wrong image."""
from __future__ import annotations


import numpy as np
import PIL.Image
import pytest
import torch

import i2i
from i2i.errors import UsageError
from i2i.infer import Translator, load_model
from test_infer import models, pattern  # noqa: F401  (models: the tiny model files, a fixture)


@pytest.fixture(scope="module")
def sr(models) -> Translator:
    return load_model(models["sr"], device="cpu", precision="fp32")


def refused(match: str, call, *args, **kwargs) -> str:
    """The one-line UsageError message `call(*args, **kwargs)` raises (it must match `match`)."""
    with pytest.raises(UsageError, match=match) as error:
        call(*args, **kwargs)
    assert "\n" not in str(error.value)
    return str(error.value)


def test_float_pixels_outside_0_1_are_refused_with_the_fix(sr):
    x = pattern(8, 10).astype(np.float32) / 255
    message = refused(r"float images must hold values in \[0, 1\], got ", sr, x * 255)
    assert "divide by 255 (or pass uint8)" in message and f"..{x.max() * 255:.4g};" in message
    refused(r"not the networks' \[-1, 1\]: pass \(x \+ 1\) / 2", sr, torch.from_numpy(x * 2 - 1).permute(2, 0, 1))
    refused("divide by 65535", sr, x * 65535)
    alpha_0_255 = np.dstack([x, np.full((8, 10), 200, np.float32)])
    refused("divide by 255", sr, alpha_0_255)
    # rounding just outside [0, 1] is accepted
    rounded = x * 1.0005 - 0.0004
    np.testing.assert_allclose(sr(rounded), sr(np.clip(rounded, 0, 1)), atol=2e-3, rtol=0)
    assert sr(torch.from_numpy(x).permute(2, 0, 1)).shape == (3, 16, 20)


def test_nan_or_infinite_input_is_blamed_on_the_input(sr):
    x = pattern(8, 8).astype(np.float32) / 255
    x[3, 4, 1] = np.nan
    refused("^the input image holds NaN or infinite values$", sr, x)
    refused("^the input image holds NaN", sr, torch.full((1, 3, 8, 8), float("inf")))
    nan_alpha = np.dstack([np.nan_to_num(x), np.full((8, 8), np.nan, np.float32)])
    refused("^the input image holds NaN", sr, nan_alpha)  # the alpha channel too


def test_empty_images_are_one_line_errors(sr):
    refused(r"^the image is empty \(0x5, height x width\)$", sr, np.zeros((0, 5, 3), np.uint8))
    refused(r"^the image is empty \(4x0", sr, np.zeros((4, 0), np.float32))
    refused(r"^the image is empty \(0x16", sr, torch.rand(3, 0, 16))
    refused(r"^the batch is empty", sr, torch.rand(0, 3, 8, 8))
    refused(r"^the image is empty \(5x0", sr, PIL.Image.new("RGB", (0, 5)))


def test_tile_options_must_be_ints(sr, tmp_path):
    image = pattern(16, 16)
    for tile in ("16", 16.5, True, -1):
        refused(rf"^tile must be an int >= 0 \(0: whole images\), not {tile!r}$", sr, image, tile=tile)
    for tile_pad in ("8", 1.5, -2):
        refused(rf"^tile_pad must be an int >= 0, not {tile_pad!r}$", sr, image, tile=8, tile_pad=tile_pad)
    np.testing.assert_array_equal(sr(image, tile=np.int64(8)), sr(image, tile=8))
    (tmp_path / "in").mkdir()
    PIL.Image.fromarray(image).save(tmp_path / "in" / "a.png")
    refused("^tile must", sr.translate_folder, tmp_path / "in", tmp_path / "out", tile="16", progress=False)
    assert not (tmp_path / "out").exists()
    refused("^tile must", Translator, sr.net, sr.spec, device="cpu", tile=1.5)


def test_load_model_checks_its_arguments(models):
    for seed in ("x", 1.5, None, 2 ** 64):
        refused(rf"^seed must be an int .*, not {seed!r}$", i2i.load_model, models["sr"], seed=seed)
    for model in (None, 3, ""):
        refused(rf"^model must be a path or a model name, not {model!r}$", i2i.load_model, model)
    loaded = i2i.load_model(models["sr"], device="cpu", precision="fp32", seed=np.int64(7))
    assert loaded.seed == 7 and type(loaded.seed) is int


def test_tiles_are_noted_once_for_models_that_normalise_per_image(models, tmp_path, capsys):
    """CycleGAN's instance norm in tiles gave up to 64 levels off the whole image's result,
    without a word; an SR network (no normalisation) tiles exactly and says nothing."""
    from i2i.checkpoint import save_model
    from i2i.spec import spec_for_network

    torch.manual_seed(0)
    net = i2i.nn.init_weights(i2i.nn.create("resnet_6blocks", width=4, norm="instance"), "xavier", 1.0)
    path = tmp_path / "instance.safetensors"
    save_model(path, {"G_A": net}, spec_for_network(net, "cyclegan", directions={"AtoB": "G_A"}))
    image = pattern(40, 40)
    cyclegan = i2i.load_model(path, device="cpu", precision="fp32")
    cyclegan(image, tile=16)
    cyclegan(image, tile=16)
    cyclegan(image)  # whole: nothing to note
    assert capsys.readouterr().err.count("normalises each image by its own statistics") == 1
    sr = i2i.load_model(models["sr"], device="cpu", precision="fp32")
    assert np.abs(sr(image, tile=16).astype(int) - sr(image)).max() <= 1  # float rounding only
    assert "normalises" not in capsys.readouterr().err


def test_big_endian_pixels_are_the_same_pixels(sr):
    """A '>u2' array (FITS files, np.frombuffer of a file's bytes) was refused as not uint16."""
    image = (pattern(8, 8).astype(np.uint16) * 257)
    assert np.array_equal(sr(image.astype(">u2")), sr(image))


def test_a_bad_max_pixels_setting_is_one_line_before_any_work(tmp_path, models):
    """I2I_MAX_PIXELS=abc (or 0) failed every image, each as if the file were at fault."""
    from click.testing import CliRunner

    from i2i.cli import main
    from i2i.data import io

    io.write_image(tmp_path / "in/a.png", pattern(8, 8))
    for value in ("abc", "0", "-5"):
        result = CliRunner().invoke(main, ["translate", str(models["sr"]), str(tmp_path / "in"), str(tmp_path / "out")],
                                    env={"I2I_MAX_PIXELS": value})
        assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
        assert result.output.startswith(f"error: I2I_MAX_PIXELS={value!r} is not a whole number of pixels above 0")
    assert not (tmp_path / "out").exists()
