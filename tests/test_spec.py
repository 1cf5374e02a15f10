"""The model contract: round trip through a model file, checks, and files written before it."""
from __future__ import annotations

import json

import pytest
import torch

import i2i.nn
from i2i.checkpoint import load_model, read_header, save_model
from i2i.errors import I2IError
from i2i.spec import ModelSpec, SizeRequirements, from_legacy_settings, spec_for_network


def test_round_trip_through_a_model_file(tmp_path):
    net = i2i.nn.create("unet_32", in_channels=1, out_channels=2, width=4)
    spec = ModelSpec(pipeline="pix2pix", in_channels=1, out_channels=2, size=SizeRequirements(multiple=32),
                     color_space="lab", task="colorize_lab", test_mode="train")
    save_model(tmp_path / "m.safetensors", {"G": net}, spec)
    assert read_header(tmp_path / "m.safetensors").spec == spec
    assert load_model(tmp_path / "m.safetensors").spec == spec
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_size_requirements_pad_to_the_multiple_and_the_minimum():
    assert SizeRequirements(minimum=8, multiple=4).padded(1, 13) == (8, 16)
    assert SizeRequirements(minimum=8, multiple=32).padded(33, 32) == (64, 32)


def test_channels_follow_the_direction():
    spec = ModelSpec(pipeline="cyclegan", directions={"AtoB": "G_A", "BtoA": "G_B"}, in_channels=1, out_channels=3)
    assert spec.channels("AtoB") == (1, 3) and spec.channels("BtoA") == (3, 1)
    assert ModelSpec(pipeline="pix2pix", directions={"BtoA": "G"}, default_direction="BtoA",
                     in_channels=1, out_channels=3).channels("BtoA") == (1, 3)


@pytest.mark.parametrize("values,words", [
    ({"pipeline": "x", "input_range": [1, 0]}, "input_range"),
    ({"pipeline": "x", "input_range": "0,1"}, "input_range"),
    ({"pipeline": "x", "directions": ["G"]}, "directions"),
    ({"pipeline": "x", "directions": {"AtoB": "G"}, "default_direction": "BtoA"}, "default direction"),
    ({"pipeline": "x", "scale": 0}, ">= 1"),
    ({"pipeline": "x", "scale": "4"}, "scale"),
    ({"pipeline": "x", "size": {"multiple": 4, "huge": 1}}, "size"),
    ({"pipeline": "x", "test_mode": "predict"}, "test mode"),
    ({"pipeline": "x", "color_space": "lab"}, "Lab"),
    ({"pipeline": "x", "width": 300}, "unknown field"),
    ({"directions": {"AtoB": "G"}}, "no pipeline"),
    ([1, 2], "mapping"),
])
def test_a_bad_spec_is_one_line_naming_the_field(values, words):
    with pytest.raises(I2IError, match=words) as caught:
        ModelSpec.from_dict(values)
    assert "\n" not in str(caught.value)


def test_legacy_settings_get_the_defaults_inference_used():
    archs = {"G_A": {"name": "resnet_6blocks", "width": 4}, "G_B": {"name": "resnet_6blocks", "width": 4}}
    spec = from_legacy_settings("cyclegan", {}, archs)
    assert spec.directions == {"AtoB": "G_A", "BtoA": "G_B"} and spec.input_range == (-1.0, 1.0)
    assert spec.size.multiple == 4 and spec.test_mode == "eval"
    sr = from_legacy_settings("srgan", {"input_range": "0,1"}, {"G": {"name": "srresnet", "scale": 2, "width": 4}})
    assert sr.input_range == (0.0, 1.0) and sr.output_range == (0.0, 1.0) and sr.scale == 2 and sr.keeps_gray
    p2p = from_legacy_settings("pix2pix", {"batchnorm_at_test": "batch_stats"}, {"G": {"name": "unet_32"}})
    assert p2p.test_mode == "train" and p2p.size.multiple == 32


def test_spec_for_a_bare_network():
    net = i2i.nn.create("srresnet", width=4, num_blocks=1, scale=3)
    spec = spec_for_network(net, "srgan", input_range=(0, 1))
    assert (spec.scale, spec.in_channels, spec.size.multiple, spec.input_range) == (3, 3, 1, (0, 1))
    with torch.device("meta"):
        assert spec_for_network(i2i.nn.create("unet_64", width=4)).size.multiple == 64
