"""Bounded memory for huge images, and broken models refused (inference hardening).

Everything here runs on small images and tiny networks: the tiled path is checked bit for
bit against the whole-image path and against the pre-tiling pipeline (pad the whole image,
slice, run, crop: `_reference`), one window at a time is checked by watching the network's
inputs and numpy's allocations, and the automatic tiles by pretending the machine has
little free memory. The big figures (13000x13000) are in benchmarks/README.md.
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from test_infer import SR_RANGES, _tiny_pix2pix_file, pattern, tiny_resnet, tiny_sr

import i2i.cli
import i2i.nn
from i2i.checkpoint import save_model
from i2i.data import io
from i2i.errors import I2IError
from i2i.infer import Translator, load_model, tiles
from i2i.spec import spec_for_network


def _reference(model: Translator, pixels: list[np.ndarray], tile: int, tile_pad: int) -> list[np.ndarray]:
    """What translate_folder computed before windows: the whole batch as floats, padded as a
    whole, run whole or in tiles sliced from it, cropped, converted back."""
    x = torch.stack([io.to_tensor(p) for p in pixels])
    height, width, s = x.shape[-2], x.shape[-1], model.scale
    net_in = model._to_network(x)
    ph, pw = model.size.padded(height, width)
    if pw > width:
        net_in = F.pad(net_in, (0, pw - width, 0, 0), mode="reflect" if pw - width < width else "replicate")
    if ph > height:
        net_in = F.pad(net_in, (0, 0, 0, ph - height), mode="reflect" if ph - height < height else "replicate")
    y = torch.empty(x.shape[0], model.out_channels, ph * s, pw * s)
    for part in tiles.plan(ph, pw, tile, tile_pad, model.size):
        (y0, y1), (x0, x1) = part.rows, part.cols
        (top, bottom), (left, right) = part.region
        out = model._run(net_in[:, :, y0:y1, x0:x1])
        y[:, :, top * s:bottom * s, left * s:right * s] = \
            out[:, :, (top - y0) * s:(bottom - y0) * s, (left - x0) * s:(right - x0) * s]
    y = model._from_network(y[:, :, :height * s, :width * s], x)
    return [io.from_tensor(y[i], 16 if p.dtype == np.uint16 else 8) for i, p in enumerate(pixels)]


def _translators() -> dict[str, Translator]:
    net = tiny_resnet(0)
    torch.manual_seed(3)
    unet = i2i.nn.init_weights(i2i.nn.create("unet_32", width=4, norm="batch", dropout=True), "xavier", 1.0)
    sr = tiny_sr()
    return {
        "resnet": Translator(net, device="cpu", precision="fp32", channels_last=False),
        "unet-train": Translator(unet, spec_for_network(unet, "pix2pix", test_mode="train"), device="cpu",
                                 precision="fp32", channels_last=False),
        "sr": Translator(sr, spec_for_network(sr, "srgan", task="sr", **SR_RANGES),
                         device="cpu", precision="fp32", channels_last=False),
    }


@pytest.fixture(scope="module")
def translators() -> dict[str, Translator]:
    return _translators()


@pytest.mark.parametrize("name", ["resnet", "unet-train", "sr"])
@pytest.mark.parametrize("channels,bits", [(3, 8), (3, 16), (1, 8), (1, 16)])
def test_windows_give_the_pre_window_pixels(translators, name, channels, bits):
    """Bit for bit what the whole-float pipeline gave, tiled (odd sizes: padding read at the
    bottom/right edges, remainders smaller than a tile) and whole."""
    model = translators[name]
    pixels = [pattern(45, 37, channels, seed=seed) for seed in (0, 1)]
    if bits == 16:
        pixels = [p.astype(np.uint16) * 257 + np.uint16(99) for p in pixels]
    for tile, pad in ((16, 8), (12, 0), (32, 4), (0, 0)):
        got = model.translate_arrays(pixels, tile=tile, tile_pad=pad)
        for (out, alpha), expected in zip(got, _reference(model, pixels, tile, pad)):
            assert alpha is None and out.dtype == expected.dtype
            np.testing.assert_array_equal(out, expected, err_msg=f"{name} tile {tile} pad {pad}")


def test_tiles_whose_context_covers_the_image_equal_the_whole_image(translators):
    """With a pad as large as the image every window is the whole padded image, so tiles must
    reproduce the whole-image output exactly: any misplaced window or region shows."""
    for name, model in translators.items():
        image = pattern(29, 22, seed=4)
        (whole, _), = model.translate_arrays([image], tile=0)
        (tiled, _), = model.translate_arrays([image], tile=8, tile_pad=32)
        np.testing.assert_array_equal(tiled, whole, err_msg=name)
        x = io.to_tensor(image)[None]
        torch.testing.assert_close(model(x, tile=8, tile_pad=32), model(x), atol=0, rtol=0)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("padded_to", [8, 9, 12, 16])
def test_pad_index_reads_what_padding_the_image_gives(size, padded_to):
    if padded_to < size:
        return
    row = torch.arange(float(size))[None, None]
    mode = "reflect" if padded_to - size < size else "replicate"
    expected = F.pad(row, (0, padded_to - size), mode=mode)[0, 0] if padded_to > size else row[0, 0]
    for start, stop in ((0, padded_to), (max(0, size - 2), padded_to), (size, padded_to)):
        index = tiles.pad_index(start, stop, size, padded_to)
        assert np.arange(size)[index].tolist() == expected[start:stop].tolist()


def test_alpha_of_a_scale_1_model_passes_through_exactly():
    """The float round trip it replaces (to_tensor, clamp, from_tensor) is the identity."""
    for dtype, bits in ((np.uint8, 8), (np.uint16, 16)):
        values = np.arange(np.iinfo(dtype).max + 1, dtype=dtype).reshape(1, -1)
        assert np.array_equal(io.from_tensor(io.to_tensor(values).clamp(0, 1), bits)[..., 0], values)


def test_alpha_through_arrays_matches_the_tensor_path(translators):
    image = pattern(20, 24, seed=2)
    alpha = np.tile(np.linspace(0, 255, 24).astype(np.uint8), (20, 1))
    for name in ("resnet", "sr"):
        model = translators[name]
        (out, out_alpha), = model.translate_arrays([image], [alpha], tile=8, tile_pad=8)
        x = io.to_tensor(np.dstack([image, alpha]))[None]
        expected = model(x, tile=8, tile_pad=8)  # the tensor path, alpha resized as before
        np.testing.assert_array_equal(out_alpha, io.from_tensor(expected[0, 3:], 8)[..., 0])
        assert out.shape == (20 * model.scale, 24 * model.scale, 3)


class Recorder(torch.nn.Module):
    """Wraps a network and records the size of every input it is given."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net, self.sizes = net, []
        for key in ("in_channels", "out_channels", "scale", "size_multiple"):
            if hasattr(net, key):
                setattr(self, key, getattr(net, key))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(tuple(x.shape[-2:]))
        return self.net(x)


def test_a_tiled_call_converts_one_window_at_a_time(monkeypatch):
    recorder = Recorder(tiny_sr().eval())
    model = Translator(recorder, spec_for_network(recorder, **SR_RANGES), device="cpu", precision="fp32",
                       channels_last=False)
    image = pattern(300, 260, seed=5)
    converted = []
    to_tensor = io.to_tensor
    monkeypatch.setattr(io, "to_tensor", lambda a: converted.append(np.asarray(a).shape[:2]) or to_tensor(a))
    model.translate_arrays([image], tile=64, tile_pad=16)
    assert max(max(size) for size in recorder.sizes) <= 64 + 2 * 16
    assert len(recorder.sizes) == 5 * 5 and max(max(shape) for shape in converted) <= 96

    tracemalloc.start()  # numpy's arrays are traced: the source, the result, the windows
    try:
        model.translate_arrays([image], tile=64, tile_pad=16)
        tiled = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        model.translate_arrays([image], tile=0)
        whole = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    result = image.nbytes * 4  # uint8, 2x in each direction
    floats = image.size * 4  # one float copy of the source
    assert tiled < result + floats / 4, (tiled, result, floats)
    assert whole > result + floats, (whole, result, floats)


def test_a_huge_image_is_tiled_when_it_would_not_fit(monkeypatch, tmp_path, capsys):
    recorder = Recorder(tiny_resnet(0).eval())
    model = Translator(recorder, device="cpu", precision="fp32", channels_last=False)
    image = pattern(200, 180, seed=6)
    monkeypatch.setattr(tiles, "available_memory", lambda device: 10**12)
    model.translate_arrays([image], name="big.png")
    assert recorder.sizes == [(64, 64), (200, 180)]  # the probe that measures the network, then the image
    assert capsys.readouterr().err == ""

    monkeypatch.setattr(tiles, "available_memory", lambda device: 4 * 10**6)
    recorder.sizes.clear()
    (auto, _), = model.translate_arrays([image], tile_pad=16, name="big.png")
    line = capsys.readouterr().err
    assert line.count("\n") == 1 and line.startswith("big.png: 180x200 needs ~"), line
    assert "more than the 0.004 GB free: translating in" in line
    tile = int(line.split("translating in ")[1].split(" px")[0])
    assert tile < 200 and max(max(size) for size in recorder.sizes) <= tile + 32
    (explicit, _), = model.translate_arrays([image], tile=tile, tile_pad=16)
    np.testing.assert_array_equal(auto, explicit)
    assert model.translate_arrays([image], tile=64, tile_pad=16) and capsys.readouterr().err == ""  # asked: silent

    io.write_image(tmp_path / "in/huge.png", image)
    summary = model.translate_folder(tmp_path / "in", tmp_path / "out", tile_pad=16, progress=False)
    assert summary.done == 1 and f"{tmp_path / 'in/huge.png'}: 180x200 needs" in capsys.readouterr().err
    np.testing.assert_array_equal(io.read_image(tmp_path / "out/huge.png").pixels, auto)


def test_the_estimate_is_measured_from_the_network(translators):
    resnet, sr = translators["resnet"], translators["sr"]
    assert resnet._activation_per_pixel() == 4 * 70 ** 2 / 64 ** 2  # width 4, reflection-padded by 3 (probe 64)
    assert sr._activation_per_pixel() == 4 * 4  # width 4, x2: 16 channels before the pixel shuffle
    per_pixel = tiles.bytes_per_pixel(16, 3, 3, 1)
    assert tiles.fitting_tile(per_pixel, 0, per_pixel * (512 + 64) ** 2, 32, resnet.size) == 512
    assert tiles.fitting_tile(per_pixel, 0, per_pixel * (512 + 63) ** 2, 32, resnet.size) == 256
    assert tiles.fitting_tile(per_pixel, 0, 1, 32, resnet.size) == 64  # the smallest, if nothing fits
    assert tiles.available_memory(torch.device("cpu")) > 0


# ----------------------------------------------------------------------------- not finite


def test_a_model_file_with_nan_weights_is_refused_at_load(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    sr = tiny_sr()
    good = tmp_path / "good.safetensors"
    save_model(good, {"G": sr}, spec_for_network(sr, "srgan", task="sr", **SR_RANGES))
    with safe_open(str(good), framework="pt") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    key = sorted(k for k in tensors if k.endswith("weight"))[1]
    tensors[key][0].view(-1)[0] = float("nan")
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=metadata)
    with pytest.raises(I2IError) as caught:
        load_model(bad, device="cpu")
    message = str(caught.value)
    assert "\n" not in message and str(bad) in message and key.removeprefix("G.") in message
    assert "NaN" in message
    result = CliRunner().invoke(i2i.cli.main, ["translate", str(bad), str(tmp_path), str(tmp_path / "out")])
    assert result.exit_code == 1 and result.stderr.strip().count("\n") == 0 and key.removeprefix("G.") in result.stderr
    assert not (tmp_path / "out").exists()


class NaNOnTallImages(torch.nn.Module):
    """Gives NaN (or infinity) for inputs taller than 12 rows, the image itself otherwise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] > 12:
            return x * torch.tensor(float("nan" if x.shape[-2] % 2 else "inf"))
        return x


def test_a_non_finite_output_is_one_line_per_image_and_no_file(tmp_path, monkeypatch):
    src = tmp_path / "in"
    for i in range(2):
        io.write_image(src / f"small{i}.png", pattern(8, 8, seed=i))
        io.write_image(src / f"tall{i}.png", pattern(16 + i, 8, seed=i))
    model = Translator(NaNOnTallImages(), device="cpu", precision="fp32")
    with pytest.raises(I2IError, match="NaN or infinite"):
        model(pattern(16, 8))
    monkeypatch.setattr("i2i.infer.load_model", lambda *args, **kwargs: model)
    result = CliRunner().invoke(i2i.cli.main, ["translate", "any", str(src), str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["small0.png", "small1.png"]
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 2 and all("NaN or infinite" in line for line in failed), result.stderr
    assert {line.split(": ")[1] for line in failed} == {str(src / "tall0.png"), str(src / "tall1.png")}
    assert "Traceback" not in result.output


def test_pix2pix_file_in_train_mode_tiles_bit_for_bit(tmp_path):
    """A model file through load_model, 16-bit RGBA, as `i2i translate --tile` runs it."""
    model = load_model(_tiny_pix2pix_file(tmp_path / "p2p.safetensors"), device="cpu", precision="fp32")
    image = pattern(70, 66, seed=7).astype(np.uint16) * 257
    alpha = np.full((70, 66), 40000, np.uint16)
    (out, out_alpha), = model.translate_arrays([image], [alpha], tile=64, tile_pad=64)
    np.testing.assert_array_equal(out, _reference(model, [image], 64, 64)[0])
    assert out.dtype == np.uint16 and np.array_equal(out_alpha, alpha)


class FailsOnCall(torch.nn.Module):
    """A network whose `fail_at`-th forward pass gives NaN: a run that breaks half way."""

    def __init__(self, net: torch.nn.Module, fail_at: int):
        super().__init__()
        self.net, self.fail_at, self.calls = net, fail_at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        y = self.net(x)
        return y * float("nan") if self.calls == self.fail_at else y


def test_a_huge_image_goes_to_its_png_a_row_of_tiles_at_a_time(monkeypatch, tmp_path):
    """Inputs of STREAM_PIXELS or more are written as they are computed: the same pixels as the
    tiled result in memory, but the result never exists whole (numpy's allocations traced)."""
    from i2i.infer import folder

    model = Translator(tiny_sr().eval(), spec_for_network(tiny_sr(), **SR_RANGES), device="cpu",
                       precision="fp32", channels_last=False)
    image = pattern(300, 260, seed=7)
    io.write_image(tmp_path / "in/huge.png", image)
    (expected, _), = model.translate_arrays([image], tile=64, tile_pad=16)
    model.translate_folder(tmp_path / "in", tmp_path / "whole", tile=64, tile_pad=16, progress=False)

    def traced_run(out: str) -> tuple[object, int]:
        tracemalloc.start()
        try:
            summary = model.translate_folder(tmp_path / "in", tmp_path / out, tile=64, tile_pad=16, progress=False)
            return summary, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    _, whole_peak = traced_run("whole-traced")
    monkeypatch.setattr(folder, "STREAM_PIXELS", 300 * 260)
    summary, peak = traced_run("out")
    assert summary.done == 1 and summary.failed == 0
    np.testing.assert_array_equal(io.read_image(tmp_path / "out/huge.png").pixels, expected)
    np.testing.assert_array_equal(io.read_image(tmp_path / "whole/huge.png").pixels, expected)
    assert peak + expected.nbytes / 2 < whole_peak, (peak, whole_peak, expected.nbytes)  # one row of tiles held

    broken = Translator(FailsOnCall(tiny_sr().eval(), fail_at=9), spec_for_network(tiny_sr(), **SR_RANGES),
                        device="cpu", precision="fp32", channels_last=False)
    summary = broken.translate_folder(tmp_path / "in", tmp_path / "broken", tile=64, tile_pad=16, progress=False)
    assert summary.failed == 1 and "NaN" in summary.failures[0]
    assert not (tmp_path / "broken").exists() or list((tmp_path / "broken").iterdir()) == []


def test_streamed_tiles_must_come_row_by_row():
    from i2i.infer.images import StreamResult

    bands = []
    result = StreamResult(8, lambda rows, height: bands.append((rows.shape, height)))
    tile = torch.zeros(1, 3, 4, 5)
    for top, left in ((0, 0), (0, 5), (4, 0), (4, 5)):
        result.write(top, left, tile, (8, 10))
    result.flush()
    assert bands == [((4, 10, 3), 8), ((4, 10, 3), 8)]
    result = StreamResult(8, lambda rows, height: None)
    result.write(0, 0, tile, (8, 10))
    with pytest.raises(RuntimeError, match="5 of 10 columns"):
        result.write(4, 0, tile, (8, 10))
