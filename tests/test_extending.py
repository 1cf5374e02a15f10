"""A researcher extending i2i from outside the package: a network of their own in the registry,
a pipeline of their own, i2i's metrics on their own tensors. Small and fast: no training."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

import i2i.nn
from i2i.checkpoint import save_model
from i2i.data.augment import GpuAugment
from i2i.data.degradations import RealESRGANDegradation
from i2i.errors import I2IError, UsageError
from i2i.metrics import psnr, psnr_y, ssim_y
from i2i.spec import ModelSpec, spec_for_network
from i2i.training.layout import example_batch


class _Plain(nn.Module):
    """A generator as a researcher first writes it: no i2i attributes."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x))


class _Described(_Plain):
    """The same, with the attributes `i2i.nn` documents."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3) -> None:
        super().__init__(in_channels, out_channels)
        self.in_channels, self.out_channels, self.scale, self.size_multiple = in_channels, out_channels, 1, 1


def _register(monkeypatch: pytest.MonkeyPatch, name: str, builder) -> None:
    monkeypatch.setitem(i2i.nn._REGISTRY, name, builder)  # undone after the test


def test_create_refuses_a_network_without_the_documented_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the check, pix2pix trained all its steps and then failed with an AttributeError
    # while writing model.safetensors.
    _register(monkeypatch, "plain_test", lambda *, in_channels=3, out_channels=3: _Plain(in_channels, out_channels))
    with pytest.raises(UsageError, match="without integer in_channels, out_channels, scale, size_multiple"):
        i2i.nn.create("plain_test")


def test_numpy_integers_are_whole_numbers_for_a_network_and_the_degradation(monkeypatch: pytest.MonkeyPatch) -> None:
    def numpy_scaled(*, in_channels=3, out_channels=3):
        net = _Described(in_channels, out_channels)
        net.scale, net.size_multiple = np.int64(1), np.int64(1)  # read from a numpy config, say
        return net

    _register(monkeypatch, "numpy_scaled_test", numpy_scaled)
    assert i2i.nn.create("numpy_scaled_test").scale == 1
    hr = torch.rand(1, 3, 16, 16)
    assert RealESRGANDegradation(generator=torch.Generator().manual_seed(0))(hr, np.int64(4)).shape == (1, 3, 4, 4)


def test_create_refuses_a_builder_that_returns_no_module(monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, "not_a_module_test", lambda: "oops")
    with pytest.raises(UsageError, match="returned str, not a torch.nn.Module"):
        i2i.nn.create("not_a_module_test")


def test_own_network_round_trips_through_a_model_file(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    _register(monkeypatch, "described_test", lambda *, in_channels=3, out_channels=3: _Described(in_channels, out_channels))
    net = i2i.nn.create("described_test", out_channels=1)
    path = tmp_path / "mine.safetensors"
    save_model(path, {"G": net}, spec_for_network(net, "mine"))
    translator = i2i.load_model(path, device="cpu", precision="fp32")
    assert translator.net.out_channels == 1 and torch.equal(translator.net.conv.weight, net.conv.weight)
    # Elsewhere (the `i2i` command, another process) the name is unknown: say what to do.
    monkeypatch.delitem(i2i.nn._REGISTRY, "described_test")
    with pytest.raises(I2IError, match="import the module that registers it first"):
        i2i.load_model(path, device="cpu")


def test_unknown_network_with_a_close_name_suggests_it() -> None:
    with pytest.raises(UsageError, match="did you mean unet_256") as caught:
        i2i.nn.create("unet_265")
    assert "registers it" not in str(caught.value)  # a typo, not a network of one's own


def test_own_pipeline_registered_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    from i2i.pipelines import PIPELINES, get_pipeline
    from i2i.pipelines.pix2pix import Pix2Pix

    monkeypatch.setitem(PIPELINES, "mine", "i2i.pipelines.pix2pix:Pix2Pix")  # the documented hook
    assert get_pipeline("mine") is Pix2Pix


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    hr = torch.rand(3, 40, 36, generator=generator)
    return (hr + 0.05 * torch.randn(hr.shape, generator=generator)).clamp(0, 1), hr


def test_metrics_take_chw_tensors_as_translator_gives_them() -> None:
    sr, hr = _pair()
    expected = psnr_y(sr.permute(1, 2, 0).numpy(), hr.permute(1, 2, 0).numpy(), 4)
    assert psnr_y(sr, hr, 4) == pytest.approx(expected)
    assert psnr_y(sr.requires_grad_(), hr, 4) == pytest.approx(expected)  # straight from a network
    assert ssim_y(sr.bfloat16(), hr, 4) == pytest.approx(ssim_y(sr.detach().bfloat16().float(), hr, 4))
    assert math.isfinite(psnr(sr, hr, data_range=1.0))


def test_an_hxwxc_tensor_is_scored_as_before() -> None:
    sr, hr = (x.detach().permute(1, 2, 0) for x in _pair())  # 40x36x3, as torch.from_numpy(hwc) gives
    assert psnr_y(sr, hr, 4) == pytest.approx(psnr_y(sr.numpy(), hr.numpy(), 4))


def test_metrics_refuse_a_chw_array_instead_of_scoring_the_wrong_pixels() -> None:
    sr, hr = (x.detach().numpy() for x in _pair())  # 3x40x36: numpy arrays are HxWxC
    with pytest.raises(ValueError, match="transpose"):
        psnr_y(sr, hr, 0)  # used to return a number: Y of 3 "rows" of 40 "pixels"


@pytest.mark.parametrize("how", ["0..255", "-1..1", "nan"])
def test_metrics_refuse_floats_outside_0_1(how: str) -> None:
    sr, hr = (x.detach().permute(1, 2, 0).numpy() for x in _pair())
    sr, hr = {"0..255": (sr * 255, hr * 255), "-1..1": (sr * 2 - 1, hr * 2 - 1)}.get(how, (sr, hr))
    if how == "nan":
        sr = sr.copy()
        sr[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"float images must be in \[0, 1\]"):
        psnr_y(sr, hr, 4)


def test_metrics_refuse_a_batch() -> None:
    sr, hr = _pair()
    with pytest.raises(ValueError, match="one image"):
        psnr_y(sr[None], hr[None], 4)


def test_save_model_refuses_a_file_it_could_not_read_back(tmp_path) -> None:
    net = i2i.nn.create("unet_32", width=2)
    cyclegan = ModelSpec(pipeline="cyclegan", directions={"AtoB": "G_A", "BtoA": "G_B"})
    with pytest.raises(I2IError, match="name network 'G_A'"):
        save_model(tmp_path / "one.safetensors", {"G_B": net}, cyclegan)
    with pytest.raises(I2IError, match="has no .arch"):
        save_model(tmp_path / "plain.safetensors", {"G": nn.Conv2d(3, 3, 1)}, ModelSpec(pipeline="mine"))
    assert not list(tmp_path.iterdir())
    one = dataclasses.replace(cyclegan, directions={"BtoA": "G_B"}, default_direction="BtoA")
    save_model(tmp_path / "b.safetensors", {"G_B": net}, one)
    assert i2i.load_model(tmp_path / "b.safetensors", device="cpu").direction == "BtoA"


def test_probe_batch_of_a_pipeline_options_without_channels_method() -> None:
    @dataclasses.dataclass
    class MyOptions:
        in_channels: int = 1
        out_channels: int = 0

    config = type("Config", (), {"batch_size": 2, "image_size": 8})()
    batch = example_batch(MyOptions(), config, torch.device("cpu"))
    assert batch["A"].shape == (2, 1, 8, 8) and batch["B"].shape == (2, 3, 8, 8)


def test_gpu_augment_refuses_an_unbatched_image_and_a_bad_crop() -> None:
    with pytest.raises(UsageError, match="NxCxHxW"):
        GpuAugment()(torch.rand(3, 8, 8))  # used to flip each channel its own way
    for crop in (0, 8.5, True):
        with pytest.raises(UsageError, match=f"crop must be.*got {crop!r}"):
            GpuAugment(crop=crop)
    for crop in (np.int64(8), torch.tensor(8), 8.0):  # whole numbers of any kind, as before the check
        assert GpuAugment(crop=crop).crop == 8


@pytest.mark.parametrize("hr, scale, message", [
    (torch.rand(3, 16, 16), 4, "NxCxHxW"),
    (torch.rand(1, 4, 16, 16), 4, "1 or 3 channels"),
    ((torch.rand(1, 3, 16, 16) * 255).to(torch.uint8), 4, "uint8"),  # came out all white
    (torch.rand(1, 3, 16, 16) * 255, 4, r"\[0, 1\]"),
    (torch.rand(1, 3, 16, 16), 3, "not multiples of the scale"),  # LR 5x5 for a 16x16 HR
    (torch.rand(1, 3, 16, 16), 0, "scale must be"),
])
def test_degradation_refuses_what_it_would_turn_into_a_wrong_lr(hr, scale, message) -> None:
    with pytest.raises(UsageError, match=message):
        RealESRGANDegradation(generator=torch.Generator().manual_seed(0))(hr, scale)


def test_degradation_still_makes_lr_hr_pairs() -> None:
    degrade = RealESRGANDegradation(generator=torch.Generator().manual_seed(0))
    hr = degrade.sharpen(torch.rand(2, 3, 32, 32))
    assert degrade(hr, 4).shape == (2, 3, 8, 8)


def test_a_network_with_numpy_integer_attributes_saves_its_model_file(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path) -> None:
    """create() takes np.int64 attributes; the pipelines copy them into the model file's spec,
    whose JSON took no np.int64 (a TypeError at the first save, after the training)."""
    from i2i.checkpoint import save_model
    from i2i.spec import ModelSpec, SizeRequirements

    def numpy_sized(*, in_channels=3, out_channels=3):
        net = _Described(in_channels, out_channels)
        net.scale, net.size_multiple = np.int64(1), np.int64(4)
        return net

    _register(monkeypatch, "numpy_sized_test", numpy_sized)
    net = i2i.nn.create("numpy_sized_test")
    assert type(net.scale) is int and type(net.size_multiple) is int and net.size_multiple == 4
    spec = ModelSpec(pipeline="pix2pix", in_channels=net.in_channels, out_channels=net.out_channels,
                     size=SizeRequirements(multiple=net.size_multiple))  # as pix2pix's model_spec makes it
    save_model(tmp_path / "model.safetensors", {"G": net}, spec)
