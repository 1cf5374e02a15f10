"""`i2i translate` as Real-ESRGAN users expect it: `--outscale` (the output resized with Lanczos
to int(side * outscale) of the input) and the alpha channel run through the SR model
(`--alpha-upsampler model`, its default) or resized (`resize`).

Every expected value is computed here without i2i's inference code, as Real-ESRGAN's
`RealESRGANer.enhance` computes it: the network called directly, cv2 for the colour
conversions and the final resize. Tiny networks saved as real model files; real PNG files.
"""
from __future__ import annotations

import copy
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from test_infer import SR_RANGES, make_models, pattern

import i2i.nn
from i2i.checkpoint import save_model
from i2i.cli import main
from i2i.data import io
from i2i.errors import UsageError
from i2i.infer import Translator, load_model
from i2i.spec import spec_for_network


def tiny_compact(in_channels: int = 3, seed: int = 3) -> torch.nn.Module:
    """Real-ESRGAN's compact net (x2), small, its residual made strong enough that running the
    alpha through it differs clearly from resizing the alpha."""
    torch.manual_seed(seed)
    net = i2i.nn.create("srvggnet_compact", in_channels=in_channels, out_channels=in_channels, width=8,
                        num_blocks=2, scale=2, act="lrelu")
    with torch.no_grad():
        net.body[-1].weight.mul_(4)
    return net.eval()


@pytest.fixture(scope="module")
def nets(tmp_path_factory) -> dict[str, tuple[torch.nn.Module, Path]]:
    """name -> (the reference's copy of the network, its model file)."""
    folder = tmp_path_factory.mktemp("models")
    found = {}
    for name, net in (("rgb", tiny_compact()), ("gray", tiny_compact(in_channels=1))):
        path = folder / f"{name}.safetensors"
        save_model(path, {"G": net}, spec_for_network(net, "srgan", task="sr", **SR_RANGES))
        found[name] = (copy.deepcopy(net), path)
    found["cyclegan"] = (None, make_models(folder / "more")["cyclegan"])  # a scale-1 model
    return found


def translator(net: torch.nn.Module) -> Translator:
    """fp32, contiguous layout: the reference's numerics, so outputs compare exactly."""
    return Translator(copy.deepcopy(net), spec_for_network(net, "srgan", task="sr", **SR_RANGES),
                      device="cpu", precision="fp32", channels_last=False)


def translate(*args: object):
    return CliRunner().invoke(main, ["translate", *map(str, args)])


def rgba(height: int, width: int, bits: int = 8, seed: int = 0) -> np.ndarray:
    """An RGBA picture whose alpha has edges and noise (what an SR model changes)."""
    rng = np.random.default_rng(seed)
    alpha = np.where(np.add.outer(np.arange(height), np.arange(width)) % 7 < 3, 40, 230)
    alpha = np.clip(alpha + rng.normal(0, 12, (height, width)), 0, 255).astype(np.uint8)
    image = np.dstack([pattern(height, width, seed=seed), alpha])
    if bits == 8:
        return image
    return image.astype(np.uint16) * 256 + rng.integers(0, 256, image.shape, dtype=np.uint16)  # all 16 bits used


# ----------------------------------------------------------------------------- the reference


def reference_planes(net: torch.nn.Module, planes: np.ndarray) -> np.ndarray:
    """HxWxC floats in [0, 1] through the network (range (0, 1)), clamped: Real-ESRGAN's
    process() and post_process()."""
    with torch.no_grad():
        y = net(torch.from_numpy(np.ascontiguousarray(planes, np.float32)).permute(2, 0, 1)[None])
    return y[0].clamp(0, 1).permute(1, 2, 0).numpy()


def reference_alpha(net: torch.nn.Module, alpha: np.ndarray) -> np.ndarray:
    """Real-ESRGAN's `--alpha_upsampler realesrgan`: the alpha / 255 (or / 65535) replicated by
    GRAY2RGB, through the network, back to one plane by BGR2GRAY (of the BGR output), rounded."""
    top = 65535.0 if alpha.dtype == np.uint16 else 255.0
    plane = alpha.astype(np.float32) / top
    planes = cv2.cvtColor(plane, cv2.COLOR_GRAY2RGB) if net.in_channels == 3 else plane[..., None]
    out = reference_planes(net, planes)
    out = cv2.cvtColor(np.ascontiguousarray(out[..., ::-1]), cv2.COLOR_BGR2GRAY) if out.shape[2] == 3 else out[..., 0]
    return (out * top).round().astype(alpha.dtype)


def assert_alpha_matches(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal but for float32 rounding of the luma's sum (cv2 adds B first, i2i R first): one
    level at most, on a few pixels."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    difference = np.abs(actual.astype(np.int64) - expected)
    assert difference.max() <= 1 and np.count_nonzero(difference) <= max(1, difference.size // 100)


def bicubic_alpha(alpha: np.ndarray, scale: int = 2) -> np.ndarray:
    """What `--alpha-upsampler resize` gives (i2i's bicubic, as before it had a choice)."""
    top = 65535.0 if alpha.dtype == np.uint16 else 255.0
    plane = torch.from_numpy(alpha.astype(np.float32) / top)[None, None]
    out = F.interpolate(plane, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)
    return (out[0, 0] * top).round().numpy().astype(alpha.dtype)


def outscaled(output: np.ndarray, input_hw: tuple[int, int], outscale: float) -> np.ndarray:
    """Real-ESRGAN's final resize: the finished output (alpha included) to int(side * outscale)
    of the input's sides `input_hw`, by cv2's Lanczos."""
    height, width = input_hw
    out = cv2.resize(output, (int(width * outscale), int(height * outscale)), interpolation=cv2.INTER_LANCZOS4)
    return out.reshape(*out.shape[:2], -1) if output.ndim == 3 else out


# ----------------------------------------------------------------------------- alpha through the model


@pytest.mark.parametrize("bits", [8, 16])
def test_sr_alpha_goes_through_the_model_by_default(nets, bits):
    net, _ = nets["rgb"]
    image = rgba(13, 11, bits)
    out = translator(net)(image)
    assert out.shape == (26, 22, 4) and out.dtype == image.dtype
    expected = reference_alpha(net, image[..., 3])
    assert_alpha_matches(out[..., 3], expected)
    colour = (reference_planes(net, image[..., :3].astype(np.float32) / (2 ** bits - 1)) * (2 ** bits - 1)).round()
    np.testing.assert_array_equal(out[..., :3], colour.astype(image.dtype))  # the colour as before
    # and it is not what resizing the alpha gives: that is --alpha-upsampler resize
    resized = bicubic_alpha(image[..., 3])
    assert np.abs(expected.astype(np.int64) - resized).max() > (2 ** bits - 1) // 20
    np.testing.assert_array_equal(translator(net)(image, alpha_upsampler="resize")[..., 3], resized)


@pytest.mark.parametrize("bits", [8, 16])
def test_an_opaque_alpha_stays_opaque_without_a_second_pass(nets, bits, monkeypatch):
    """Most RGBA files are opaque: their alpha comes back full, and the network runs once."""
    net, _ = nets["rgb"]
    image = rgba(13, 11, bits)
    image[..., 3] = 2 ** bits - 1
    model = translator(net)
    passes = []
    original = type(model).translate_pixels
    monkeypatch.setattr(type(model), "translate_pixels",
                        lambda self, *args, **kwargs: passes.append(1) or original(self, *args, **kwargs))
    out = model(image)
    assert len(passes) == 1 and out.shape == (26, 22, 4)
    assert (out[..., 3] == 2 ** bits - 1).all()


def test_a_flat_alpha_stays_flat_whatever_shares_its_batch_and_for_every_input_kind(nets):
    net, _ = nets["rgb"]
    model = translator(net)
    opaque, soft = rgba(9, 11, seed=1), rgba(9, 11, seed=2)
    opaque[..., 3] = 255
    together = model.translate_arrays([opaque[..., :3], soft[..., :3]], [opaque[..., 3], soft[..., 3]])
    alone = model.translate_arrays([soft[..., :3]], [soft[..., 3]])
    assert (together[0][1] == 255).all()
    np.testing.assert_array_equal(together[1][1], alone[0][1])
    assert (model(opaque.astype(np.float32) / 255)[..., 3] == 1).all()  # floats and tensors alike
    assert (model(torch.from_numpy(opaque).permute(2, 0, 1).float() / 255)[3] == 1).all()
    half = np.dstack([opaque[..., :3], np.full((9, 11), 128, np.uint8)])
    assert (model(half)[..., 3] == 128).all()


def test_an_opaque_rgba_to_jpeg_loses_nothing_and_says_nothing(tmp_path, nets):
    net, _ = nets["rgb"]
    (tmp_path / "in").mkdir()
    opaque = rgba(8, 8)
    io.write_image(tmp_path / "in" / "opaque.png", opaque[..., :3], np.full((8, 8), 255, np.uint8))
    io.write_image(tmp_path / "in" / "soft.png", opaque[..., :3], opaque[..., 3])
    summary = translator(net).translate_folder(tmp_path / "in", tmp_path / "out", ext="jpg", progress=False)
    assert summary.done == 2 and summary.alpha_dropped == 1  # the soft one only


def test_rgba_to_jpeg_runs_the_network_once(tmp_path, nets):
    """JPEG holds no alpha: it is dropped before the compute, not computed and thrown away."""
    net, _ = nets["rgb"]
    (tmp_path / "in").mkdir()
    io.write_image(tmp_path / "in" / "a.png", rgba(16, 16)[..., :3], rgba(16, 16)[..., 3])
    model = translator(net)
    model(rgba(16, 16)[..., :3])  # the speed probe's passes are done before counting
    calls = []
    forward = model.speed.forward
    model.speed.forward = lambda x: calls.append(tuple(x.shape)) or forward(x)
    summary = model.translate_folder(tmp_path / "in", tmp_path / "out", ext="jpg", progress=False)
    assert len(calls) == 1 and summary.done == 1 and summary.alpha_dropped == 1


def test_sr_alpha_through_the_model_in_tiles_and_for_gray_models(nets):
    net, _ = nets["rgb"]
    image = rgba(30, 27)
    # tile_pad 8 covers the tiny net's receptive field: tiles are exact, the alpha's too
    tiled = translator(net)(image, tile=8, tile_pad=8)
    assert_alpha_matches(tiled[..., 3], reference_alpha(net, image[..., 3]))
    gray_net, _ = nets["gray"]  # one input channel: the alpha goes through as one plane
    gray_alpha = np.dstack([pattern(12, 10, 1), image[:12, :10, 3]])
    out = translator(gray_net)(gray_alpha, tile=8, tile_pad=8)
    assert out.shape == (24, 20, 2)
    np.testing.assert_array_equal(out[..., 1], reference_alpha(gray_net, gray_alpha[..., 1]))
    # tensors: the same alpha, as floats
    x = torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)
    alpha = translator(net)(x)[3].numpy()
    assert np.abs(alpha * 255 - reference_alpha(net, image[..., 3])).max() <= 0.5 + 1e-3


@pytest.mark.parametrize("bits", [8, 16])
def test_cli_alpha_upsampler_on_rgba_pngs(tmp_path, nets, bits):
    net, model = nets["rgb"]
    image = rgba(17, 14, bits, seed=bits)
    io.write_image(tmp_path / "in/a.png", image[..., :3], image[..., 3])
    for choice, expected in (("model", reference_alpha(net, image[..., 3])), ("resize", bicubic_alpha(image[..., 3]))):
        out = tmp_path / choice
        result = translate(model, tmp_path / "in", out, "--alpha-upsampler", choice, "--device", "cpu",
                           "--precision", "fp32")
        assert result.exit_code == 0, result.output
        written = io.read_image(out / "a.png")
        assert written.bit_depth == bits and written.alpha is not None and written.alpha.dtype == image.dtype
        if choice == "model":
            assert_alpha_matches(written.alpha, expected)
        else:
            np.testing.assert_array_equal(written.alpha, expected)
    default = tmp_path / "default"
    assert translate(model, tmp_path / "in", default, "--device", "cpu", "--precision", "fp32").exit_code == 0
    assert (default / "a.png").read_bytes() == (tmp_path / "model/a.png").read_bytes()


def test_scale_1_models_keep_the_alpha_whichever_upsampler(nets):
    cyclegan = load_model(nets["cyclegan"][1], device="cpu", precision="fp32")
    image = rgba(9, 12)
    for choice in ("model", "resize"):
        np.testing.assert_array_equal(cyclegan(image, alpha_upsampler=choice)[..., 3], image[..., 3])


# ----------------------------------------------------------------------------- --outscale


@pytest.mark.parametrize("outscale", [1.5, 3, 0.5, 2.7])
def test_outscale_resizes_the_finished_output_with_lanczos(nets, outscale):
    net, _ = nets["rgb"]
    model = translator(net)
    for image in (rgba(13, 11), rgba(13, 11, 16), pattern(10, 9), pattern(10, 9, 1)[..., 0]):
        own = model(image)  # the model's own scale, alpha through the model
        out = model(image, outscale=outscale)
        assert out.dtype == image.dtype and out.shape[:2] == (int(image.shape[0] * outscale),
                                                              int(image.shape[1] * outscale))
        np.testing.assert_array_equal(out, outscaled(own, image.shape[:2], outscale))


def test_outscale_equal_to_the_scale_changes_nothing_and_floats_stay_in_range(nets):
    net, _ = nets["rgb"]
    model = translator(net)
    image = rgba(8, 10)
    np.testing.assert_array_equal(model(image, outscale=2), model(image))
    x = torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)
    own = model(x)
    y = model(x, outscale=1.25)
    expected = np.clip(outscaled(own.permute(1, 2, 0).numpy(), (8, 10), 1.25), 0, 1)
    assert y.shape == (4, 10, 12)
    np.testing.assert_array_equal(y.permute(1, 2, 0).numpy(), expected)


def test_outscale_works_for_scale_1_models(nets):
    cyclegan = load_model(nets["cyclegan"][1], device="cpu", precision="fp32")
    image = rgba(9, 12)
    own = cyclegan(image)
    out = cyclegan(image, outscale=2)
    assert out.shape == (18, 24, 4)
    np.testing.assert_array_equal(out, outscaled(own, (9, 12), 2))


@pytest.mark.parametrize("bits", [8, 16])
def test_cli_outscale_on_files(tmp_path, nets, bits):
    _, model = nets["rgb"]
    image = rgba(15, 12, bits, seed=1)
    gray = pattern(11, 9, 1).astype(image.dtype) * (257 if bits == 16 else 1)
    io.write_image(tmp_path / "in/rgba.png", image[..., :3], image[..., 3])
    io.write_image(tmp_path / "in/sub/gray.png", gray)
    result = translate(model, tmp_path / "in", tmp_path / "out", "--outscale", "3.5", "--device", "cpu",
                       "--precision", "fp32")
    assert result.exit_code == 0, result.output
    written = io.read_image(tmp_path / "out/rgba.png")
    assert written.size == (42, 52) and written.bit_depth == bits
    # the API at its own scale, resized: the same to one level (the CLI's workers run on fewer
    # threads, so each measures its own fastest memory layout, whose float sums may round apart)
    api = load_model(model, device="cpu", precision="fp32")
    expected = outscaled(api(image), (15, 12), 3.5)
    assert np.abs(np.dstack([written.pixels, written.alpha]).astype(int) - expected).max() <= 1
    gray_out = io.read_image(tmp_path / "out/sub/gray.png")
    assert gray_out.pixels.shape == (38, 31, 1) and gray_out.bit_depth == bits  # gray stays gray
    assert np.abs(gray_out.pixels.astype(int) - outscaled(api(gray), (11, 9), 3.5)).max() <= 1

    scale_1 = tmp_path / "pix"
    result = translate(nets["cyclegan"][1], tmp_path / "in/rgba.png", scale_1, "--outscale", "2", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert io.read_image(scale_1 / "rgba.png").size == (24, 30)


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "-inf"])
def test_cli_refuses_a_nonsense_outscale_before_loading_the_model(tmp_path, value):
    io.write_image(tmp_path / "a.png", pattern(8, 8))
    result = translate(tmp_path / "no-such-model.safetensors", tmp_path / "a.png", tmp_path / "out",
                       f"--outscale={value}")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: outscale must be a finite number above 0")
    assert result.output.count("\n") == 1 and not (tmp_path / "out").exists()


def test_cli_refuses_outputs_too_small_or_too_large_before_the_compute(tmp_path, nets, monkeypatch):
    _, model = nets["rgb"]
    io.write_image(tmp_path / "in/small.png", pattern(9, 20))
    io.write_image(tmp_path / "in/big.png", pattern(30, 40))
    computed = []
    original = Translator.translate_pixels
    monkeypatch.setattr(Translator, "translate_pixels",
                        lambda self, source, *a, **k: computed.append(source.shape) or original(self, source, *a, **k))
    # 0.1: small.png (9 px high) would be 0 px high; big.png gives 3x4 px
    result = translate(model, tmp_path / "in", tmp_path / "out", "--outscale", "0.1", "--device", "cpu")
    assert result.exit_code == 1
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed: ")]
    assert failed == [f"failed: {tmp_path / 'in/small.png'}: outscale 0.1 makes its 20x9 px input 2x0 px, "
                      "under 1 px a side"]
    assert io.read_image(tmp_path / "out/big.png").size == (4, 3)
    assert [shape[-2:] for shape in computed] == [(30, 40)]
    # JPEG holds 65500 px a side: big.png at 2000x would be 80000 px wide
    computed.clear()
    result = translate(model, tmp_path / "in/big.png", tmp_path / "jpg", "--ext", "jpg", "--outscale", "2000")
    assert result.exit_code == 1 and not computed
    assert "its output would be 80000x60000 px; JPEG holds at most 65500 px a side" in result.stderr


def test_api_refuses_nonsense_in_one_line(nets):
    net, _ = nets["rgb"]
    model = translator(net)
    image = pattern(8, 8)
    for value in (0, -2.5, float("nan"), float("inf"), True, "2", 10 ** 400):
        with pytest.raises(UsageError, match="outscale must be a finite number above 0"):
            model(image, outscale=value)
    with pytest.raises(UsageError, match=r"outscale 0\.05 makes its 8x8 px input 0x0 px, under 1 px a side"):
        model(image, outscale=0.05)
    with pytest.raises(UsageError, match=r"^outscale 1e\+300 makes its 8x8 px input over 2147483647 px a side$"):
        model(image, outscale=1e300)  # not two 300-digit sizes
    with pytest.raises(UsageError, match="alpha_upsampler must be one of model, resize, not 'bicubic'"):
        model(rgba(8, 8), alpha_upsampler="bicubic")
    with pytest.raises(UsageError, match="outscale must be"):
        model.translate_folder("nowhere/", "out/", outscale=-1, progress=False)
