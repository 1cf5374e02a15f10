"""i2i.nn: reference parity (goldens), parameter counts, the create() registry, shapes, init."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

import i2i.nn
from conftest import golden_manifest
from i2i.errors import UsageError
from i2i.nn import create
from i2i.nn.init import init_weights

# ----------------------------------------------------------------------------- goldens

CYCLEGAN_FORWARD = [
    "resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256",
    "netD_basic", "netD_n_layers5", "netD_pixel", "resnet_6blocks_bn_train",
]
BASICSR_FORWARD = ["msrresnet", "rrdbnet", "vgg_discriminator"]
FORWARD = [("cyclegan", n) for n in CYCLEGAN_FORWARD] + [("basicsr", n) for n in BASICSR_FORWARD]
BASICSR_NAMES = {"MSRResNet": "srresnet", "RRDBNet": "rrdbnet", "VGGStyleDiscriminator": "vgg128"}
BASICSR_KWARGS = {"num_in_ch": "in_channels", "num_out_ch": "out_channels", "num_feat": "width",
                  "num_block": "num_blocks", "upscale": "scale", "scale": "scale",
                  "num_grow_ch": "growth", "input_size": "input_size"}


def our_args(family: str, item: dict) -> tuple[str, dict]:
    """Map a golden's reference constructor to (i2i.nn name, kwargs)."""
    c = item["constructor"]
    if family == "basicsr":
        return BASICSR_NAMES[item["class"].split(".")[-1]], {BASICSR_KWARGS[k]: v for k, v in c.items()}
    if "netG" in c:
        return c["netG"], dict(in_channels=c["input_nc"], out_channels=c["output_nc"], width=c["ngf"],
                               norm=c["norm"], dropout=c["use_dropout"])
    kwargs = dict(in_channels=c["input_nc"], width=c["ndf"], norm=c["norm"])
    if c["netD"] == "pixel":
        return "pixelgan", kwargs
    return "patchgan", {**kwargs, "n_layers": 3 if c["netD"] == "basic" else c["n_layers_D"]}


def check_close(name: str, actual: torch.Tensor, expected: torch.Tensor, tol: dict) -> float:
    """Manifest rule |a - e| <= atol + rtol * |e|; returns the max abs error (printed for the log)."""
    assert actual.shape == expected.shape, name
    diff = (actual.double() - expected.double()).abs()
    bound = tol["atol"] + tol["rtol"] * expected.double().abs()
    err = diff.max().item()
    print(f"golden {name}: max abs err {err:.3g}")
    assert bool((diff <= bound).all()), f"{name}: max abs err {err:.3g}"
    return err


def test_every_forward_golden_is_covered(shared_dir):
    for family, names in (("cyclegan", CYCLEGAN_FORWARD), ("basicsr", BASICSR_FORWARD)):
        items = golden_manifest(shared_dir, family)["items"]
        assert {k for k, v in items.items() if v["kind"] == "forward"} == set(names)


@pytest.mark.parametrize("family,golden", FORWARD, ids=[f"{f}/{n}" for f, n in FORWARD])
def test_forward_golden(shared_dir, family, golden, record_property):
    item = golden_manifest(shared_dir, family)["items"][golden]
    folder = shared_dir / "golden" / family
    name, kwargs = our_args(family, item)
    net = create(name, **kwargs)
    net.load_state_dict(load_file(folder / item["files"]["weights"]), strict=True)
    io = load_file(folder / item["files"]["io"])
    net.train(item["mode"] == "train")
    with torch.no_grad():
        out = net(io["input"])
    errs = {"output": check_close(f"{golden}.output", out, io["output"], item["tolerance"]["output"])}
    if "output_train" in io:  # same weights and input, BatchNorm on batch statistics
        net.train()
        with torch.no_grad():
            out = net(io["input"])
        errs["output_train"] = check_close(f"{golden}.output_train", out, io["output_train"],
                                           item["tolerance"]["output_train"])
    after = {k.removeprefix("state_after."): v for k, v in io.items() if k.startswith("state_after.")}
    if after:
        state = net.state_dict()
        assert all(k in state for k in after)
        for key, expected in after.items():
            if key.endswith("num_batches_tracked"):
                assert state[key].item() == expected.item() == 5, key
        floats = [k for k in after if not k.endswith("num_batches_tracked")]
        errs["state_after"] = check_close(
            f"{golden}.state_after",
            torch.cat([state[k].flatten() for k in floats]),
            torch.cat([after[k].flatten() for k in floats]),
            item["tolerance"]["state_after"],
        )
    for what, err in errs.items():
        record_property(f"max_abs_err.{what}", err)


@pytest.mark.parametrize("family,golden", FORWARD, ids=[f"{f}/{n}" for f, n in FORWARD])
def test_seeded_init_matches_reference(shared_dir, family, golden):
    """create() after the golden's seed draws the reference's init bit for bit: the CycleGAN
    scheme (normal 0.02, BatchNorm N(1, 0.02)) for junyanz nets, BasicSR's own for the SR nets.
    Only `*.weight` entries: the goldens perturbed every bias and warmed up the running stats."""
    item = golden_manifest(shared_dir, family)["items"][golden]
    reference = load_file(shared_dir / "golden" / family / item["files"]["weights"])
    name, kwargs = our_args(family, item)
    torch.manual_seed(item["seed"])
    state = create(name, **kwargs).state_dict()
    for key in (k for k in reference if k.endswith(".weight")):
        assert torch.equal(state[key], reference[key]), key


# ----------------------------------------------------------------------------- parameter counts

PARAM_COUNTS = [
    ("resnet_9blocks", {"norm": "instance"}, 11_378_179),
    ("resnet_9blocks", {"norm": "batch"}, 11_383_427),
    ("resnet_6blocks", {"norm": "instance"}, 7_837_699),
    ("resnet_6blocks", {"norm": "batch"}, 7_841_411),
    ("unet_256", {"norm": "batch"}, 54_413_955),
    ("unet_256", {"norm": "instance"}, 54_409_603),
    ("unet_128", {"norm": "batch"}, 41_828_995),
    ("unet_128", {"norm": "instance"}, 41_825_667),
    ("patchgan", {"norm": "instance"}, 2_764_737),
    ("patchgan", {"norm": "batch"}, 2_765_633),
    ("patchgan", {"in_channels": 6, "norm": "batch"}, 2_768_705),
    ("patchgan", {"in_channels": 6, "norm": "instance"}, 2_767_809),
    ("pixelgan", {"norm": "batch"}, 8_832),
    ("srresnet", {"width": 64, "num_blocks": 16, "scale": 4}, 1_517_571),
    ("rrdbnet", {"width": 64, "num_blocks": 23, "growth": 32, "scale": 4}, 16_697_987),
    ("vgg128", {}, 14_499_401),
    ("vgg128", {"input_size": 256}, 21_055_049),
]


@pytest.mark.parametrize("name,kwargs,expected", PARAM_COUNTS)
def test_full_width_parameter_count(name, kwargs, expected):
    with torch.device("meta"):  # shapes only: no memory, no init cost
        net = create(name, **kwargs)
    assert sum(p.numel() for p in net.parameters()) == expected


# ----------------------------------------------------------------------------- create() and registry


def test_available_lists_every_network():
    assert i2i.nn.available() == sorted([
        "resnet_9blocks", "resnet_6blocks", "unet_32", "unet_64", "unet_128", "unet_256",
        "srresnet", "rrdbnet", "srvggnet_compact", "patchgan", "pixelgan", "vgg128",
    ])


@pytest.mark.parametrize("name,kwargs,message", [
    ("resnet_12blocks", {}, "available: patchgan, pixelgan, resnet_6blocks"),
    ("unet_256", {"ngf": 64}, "valid options: in_channels, out_channels, width, norm, dropout"),
    ("srresnet", {"growth": 8}, "valid options: in_channels, out_channels, width, num_blocks, scale"),
    ("resnet_9blocks", {"norm": "group"}, "norm must be one of 'batch', 'instance', 'none'"),
    ("resnet_9blocks", {"padding_type": "circular"}, "padding_type must be one of"),
    ("patchgan", {"init": "uniform"}, "init must be one of normal, xavier, kaiming, orthogonal"),
    ("unet_32", {"width": 0}, "width must be an integer >= 1"),
    ("srresnet", {"scale": 8}, "scale must be one of 2, 3, 4"),
    ("rrdbnet", {"scale": 5}, "scale must be one of 1, 2, 3, 4"),
    ("srresnet", {"in_channels": 1}, "in_channels (1) must equal out_channels (3)"),
    ("vgg128", {"input_size": 64}, "input_size must be one of 128, 256"),
])
def test_create_errors_are_one_line_usage_errors(name, kwargs, message):
    with pytest.raises(UsageError) as info:
        create(name, **kwargs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_defaults_follow_the_references():
    assert i2i.nn.defaults("resnet_9blocks") == dict(
        in_channels=3, out_channels=3, width=64, norm="batch", dropout=False,
        padding_type="reflect", init="normal", init_gain=0.02)
    assert i2i.nn.defaults("rrdbnet") == dict(
        in_channels=3, out_channels=3, width=64, num_blocks=23, growth=32, scale=4)


@pytest.mark.parametrize("name,kwargs,size_multiple,scale,channels", [
    ("resnet_9blocks", {"in_channels": 1}, 4, 1, (1, 3)),
    ("resnet_6blocks", {}, 4, 1, (3, 3)),
    ("unet_32", {}, 32, 1, (3, 3)),
    ("unet_64", {"out_channels": 2}, 64, 1, (3, 2)),
    ("unet_128", {}, 128, 1, (3, 3)),
    ("unet_256", {}, 256, 1, (3, 3)),
    ("srresnet", {"scale": 3}, 1, 3, (3, 3)),
    ("rrdbnet", {"scale": 4, "num_blocks": 1}, 1, 4, (3, 3)),
    ("rrdbnet", {"scale": 2, "num_blocks": 1}, 2, 2, (3, 3)),
    ("rrdbnet", {"scale": 1, "out_channels": 1, "num_blocks": 1}, 4, 1, (3, 1)),
    ("patchgan", {"in_channels": 6}, 1, 1, (6, 1)),
    ("pixelgan", {}, 1, 1, (3, 1)),
    ("vgg128", {}, 128, 1, (3, 1)),
])
def test_attributes_and_arch(name, kwargs, size_multiple, scale, channels):
    with torch.device("meta"):
        net = create(name, **kwargs)
        rebuilt = create(**net.arch)
    assert net.arch == {"name": name, **kwargs}
    assert (net.size_multiple, net.scale) == (size_multiple, scale)
    assert (net.in_channels, net.out_channels) == channels
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in net.state_dict().items()}


# ----------------------------------------------------------------------------- layouts without goldens


def test_resnet_dropout_shifts_second_conv():
    with torch.device("meta"):
        plain = create("resnet_6blocks", width=4).state_dict()
        dropped = create("resnet_6blocks", width=4, dropout=True).state_dict()
    assert "model.10.conv_block.5.weight" in plain and "model.10.conv_block.6.weight" in dropped
    assert "model.10.conv_block.7.running_mean" in dropped


def test_resnet_zero_padding_has_no_pad_modules():
    with torch.device("meta"):
        state = create("resnet_6blocks", width=4, padding_type="zero").state_dict()
    assert "model.10.conv_block.0.weight" in state and "model.10.conv_block.3.weight" in state


@pytest.mark.parametrize("name,biased,unbiased", [
    # norm "none": every conv that a norm slot follows loses its bias; the rest keep it
    ("resnet_6blocks", ["model.23.bias"], ["model.1.bias", "model.10.conv_block.1.bias", "model.16.bias"]),
    ("unet_32", ["model.model.3.bias"], ["model.model.0.bias", "model.model.1.model.1.bias"]),
    ("patchgan", ["model.0.bias", "model.11.bias"], ["model.2.bias", "model.8.bias"]),
    ("pixelgan", ["net.0.bias"], ["net.2.bias", "net.5.bias"]),
])
def test_norm_none_bias_rule(name, biased, unbiased):
    with torch.device("meta"):
        state = create(name, width=4, norm="none").state_dict()
    assert all(k in state for k in biased)
    assert not any(k in state for k in unbiased)
    assert not any("running_mean" in k for k in state)


def test_rrdbnet_x3_keeps_the_x4_layout():
    with torch.device("meta"):
        x3 = create("rrdbnet", width=8, num_blocks=1, growth=4, scale=3).state_dict()
        x4 = create("rrdbnet", width=8, num_blocks=1, growth=4, scale=4).state_dict()
    assert {k: v.shape for k, v in x3.items()} == {k: v.shape for k, v in x4.items()}


# ----------------------------------------------------------------------------- shapes at tiny width

TINY = [
    ("resnet_9blocks", {"width": 2, "in_channels": 1}, 1, 16, (3, 16)),
    ("resnet_6blocks", {"width": 2, "norm": "instance", "dropout": True}, 3, 12, (3, 12)),
    ("unet_32", {"width": 2}, 3, 32, (3, 32)),
    ("unet_64", {"width": 2, "norm": "none", "dropout": True}, 3, 64, (3, 64)),
    ("unet_128", {"width": 1, "out_channels": 1}, 3, 128, (1, 128)),
    ("unet_256", {"width": 1, "norm": "instance"}, 3, 256, (3, 256)),
    ("srresnet", {"width": 4, "num_blocks": 1, "scale": 2}, 3, 6, (3, 12)),
    ("srresnet", {"width": 4, "num_blocks": 1, "scale": 3}, 3, 6, (3, 18)),
    ("srresnet", {"width": 4, "num_blocks": 1, "scale": 4, "in_channels": 1, "out_channels": 1}, 1, 6, (1, 24)),
    ("rrdbnet", {"width": 4, "num_blocks": 1, "growth": 2, "scale": 1}, 3, 8, (3, 8)),
    ("rrdbnet", {"width": 4, "num_blocks": 1, "growth": 2, "scale": 2}, 3, 8, (3, 16)),
    ("rrdbnet", {"width": 4, "num_blocks": 1, "growth": 2, "scale": 3}, 3, 6, (3, 18)),
    ("rrdbnet", {"width": 4, "num_blocks": 1, "growth": 2, "scale": 4, "out_channels": 1}, 3, 6, (1, 24)),
    ("patchgan", {"width": 2}, 3, 32, (1, 2)),
    ("patchgan", {"width": 2, "n_layers": 1, "norm": "none"}, 3, 16, (1, 6)),
    ("pixelgan", {"width": 2, "norm": "instance"}, 3, 10, (1, 10)),
    ("vgg128", {"width": 1}, 3, 128, None),
]


@pytest.mark.parametrize("name,kwargs,in_ch,size,expected", TINY,
                         ids=[f"{n}-{i}" for i, (n, *_) in enumerate(TINY)])
def test_tiny_forward_shapes(name, kwargs, in_ch, size, expected):
    net = create(name, **kwargs).eval()
    with torch.no_grad():
        out = net(torch.rand(2, in_ch, size, size))
    if expected is None:  # vgg128: one logit per image
        assert out.shape == (2, 1)
    else:
        channels, out_size = expected
        assert out.shape == (2, channels, out_size, out_size)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_unet_trains_with_its_in_place_skip(norm):
    """The in-place LeakyReLU that also rewrites the skip input must not break autograd."""
    net = create("unet_32", width=2, norm=norm, dropout=True).train()
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    net(x).square().mean().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.parameters())


def test_vgg_rejects_other_sizes():
    net = create("vgg128", width=1).eval()
    with pytest.raises(UsageError, match="128x128"):
        net(torch.rand(1, 3, 64, 64))


# ----------------------------------------------------------------------------- init


@pytest.mark.parametrize("scheme", ["normal", "xavier", "kaiming", "orthogonal"])
def test_init_weights_schemes(scheme):
    torch.manual_seed(0)
    net = create("patchgan", width=8, norm="batch", init=None)
    for p in net.parameters():
        torch.nn.init.constant_(p, 0.5)
    init_weights(net, scheme, gain=0.02)
    conv, bn = net.model[2], net.model[3]
    assert conv.weight.std() > 0 and (net.model[0].bias == 0).all() and (bn.bias == 0).all()
    assert abs(bn.weight.mean().item() - 1.0) < 0.02 and bn.weight.std() > 0
    if scheme == "normal":
        assert abs(conv.weight.std().item() - 0.02) < 0.004
    if scheme == "orthogonal":
        flat = conv.weight.flatten(1)
        torch.testing.assert_close(flat @ flat.T, 0.02**2 * torch.eye(len(flat)), atol=1e-6, rtol=0)


def test_init_none_keeps_pytorch_default_and_bad_scheme_fails():
    torch.manual_seed(0)
    default = create("pixelgan", width=4, init=None).state_dict()
    torch.manual_seed(0)
    plain = i2i.nn.discriminators.PixelDiscriminator(3, 4, "batch").state_dict()
    assert all(torch.equal(default[k], plain[k]) for k in plain)
    with pytest.raises(UsageError, match="init scheme must be one of"):
        init_weights(create("pixelgan", width=4), "uniform")
