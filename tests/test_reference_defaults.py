"""Every pipeline's defaults are the reference's, and the pipelines really use them.

The golden step tests pass the reference's options explicitly, so they cannot notice a
changed default. Here the defaults themselves are compared with the reference's (its
option files: base_options.py, train_options.py and each model's
modify_commandline_options), and the table below is checked against the resolved options
the golden manifests recorded for the keys their command lines did not set. Then a
pipeline built from nothing but the defaults is checked for what those defaults do: the
optimiser's betas, the networks' layers, and loss terms recomputed independently.
"""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from conftest import golden_manifest
from test_train import one_thread  # noqa: F401  (autouse)

from i2i.training import make_settings

# The reference's defaults (junyanz/pytorch-CycleGAN-and-pix2pix), in its option names.
COMMON = {"ngf": 64, "ndf": 64, "netD": "basic", "n_layers_D": 3, "init_type": "normal", "init_gain": 0.02,
          "direction": "AtoB", "serial_batches": False, "batch_size": 1, "load_size": 286, "crop_size": 256,
          "preprocess": "resize_and_crop", "no_flip": False, "n_epochs": 100, "n_epochs_decay": 100,
          "beta1": 0.5, "lr": 0.0002, "lr_policy": "linear", "lr_decay_iters": 50}
REFERENCE = {
    "cyclegan": {**COMMON, "netG": "resnet_9blocks", "norm": "instance", "no_dropout": True, "gan_mode": "lsgan",
                 "pool_size": 50, "lambda_A": 10.0, "lambda_B": 10.0, "lambda_identity": 0.5},
    "pix2pix": {**COMMON, "netG": "unet_256", "norm": "batch", "no_dropout": False, "gan_mode": "vanilla",
                "pool_size": 0, "lambda_L1": 100.0},
}
OUR_NAME = {"ngf": "width", "crop_size": "image_size"}
ALIASES = {"basic": "patchgan"}


def ours(pipeline: str) -> dict:
    """Our default settings, in the reference's names and values."""
    config, options = make_settings(pipeline, {})
    values = {**vars(config), **vars(options)}
    out = {}
    for key in REFERENCE[pipeline]:
        if key == "no_dropout":
            out[key] = not values["dropout"]
        elif key == "load_size":
            out[key] = config.resolved_load_size()
        elif key == "pool_size" and pipeline == "pix2pix":
            out[key] = 0  # pix2pix has no image pool (the reference's size 0 returns its input)
        else:
            out[key] = values[OUR_NAME.get(key, key)]
    return out


@pytest.mark.parametrize("pipeline", ["cyclegan", "pix2pix"])
def test_defaults_are_the_references(pipeline):
    expected = {k: ALIASES.get(v, v) for k, v in REFERENCE[pipeline].items()}
    assert ours(pipeline) == expected
    config, _ = make_settings(pipeline, {})
    assert config.beta2 == 0.999  # hard-coded in the reference's Adam


@pytest.mark.parametrize("pipeline,item", [("cyclegan", "cyclegan_step"), ("pix2pix", "pix2pix_step")])
def test_reference_table_agrees_with_the_golden_manifests(shared_dir, pipeline, item):
    """Keys the golden command line left alone were resolved to the reference's defaults."""
    recorded = golden_manifest(shared_dir, "cyclegan")["items"][item]
    given = {arg[2:] for arg in recorded["argv"] if arg.startswith("--")}
    unset = {k: v for k, v in REFERENCE[pipeline].items() if k not in given and k in recorded["options"]}
    assert len(unset) >= 7
    assert unset == {k: recorded["options"][k] for k in unset}


def _count(net: torch.nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in net.modules())


def test_cyclegan_built_from_defaults():
    from i2i.nn.layers import ResnetBlock
    from i2i.pipelines.cyclegan import CycleGAN

    config, options = make_settings("cyclegan", {"width": 4, "ndf": 4})
    torch.manual_seed(0)
    pipe = CycleGAN(options, config, torch.device("cpu"))
    for opt in pipe.optimizers.values():
        assert opt.param_groups[0]["betas"] == (0.5, 0.999) and opt.param_groups[0]["lr"] == 2e-4
    assert _count(pipe.G_A, ResnetBlock) == 9 and _count(pipe.G_A, torch.nn.InstanceNorm2d) > 0
    assert _count(pipe.G_A, torch.nn.Dropout) == 0 and _count(pipe.G_A, torch.nn.BatchNorm2d) == 0
    assert pipe.D_A.arch["name"] == "patchgan" and pipe.D_A.arch["n_layers"] == 3
    assert pipe.gan.mode == "lsgan" and pipe.fake_A_pool.size == pipe.fake_B_pool.size == 50

    batch = {"A": torch.rand(1, 3, 32, 32), "B": torch.rand(1, 3, 32, 32)}
    real_A, real_B = batch["A"] * 2 - 1, batch["B"] * 2 - 1
    G_A, G_B, D_A = (copy.deepcopy(n) for n in (pipe.G_A, pipe.G_B, pipe.D_A))
    losses = pipe.step(batch)
    with torch.no_grad():
        fake_B = G_A(real_A)
        expected = {
            "idt_A": F.l1_loss(G_A(real_B), real_B) * 10 * 0.5,     # lambda_B * lambda_identity
            "idt_B": F.l1_loss(G_B(real_A), real_A) * 10 * 0.5,     # lambda_A * lambda_identity
            "cycle_A": F.l1_loss(G_B(fake_B), real_A) * 10,
            "G_A": F.mse_loss(D_A(fake_B), torch.ones(1, 1, 2, 2)),  # lsgan, target real
        }
    for name, value in expected.items():
        assert losses[name].item() == pytest.approx(value.item(), rel=1e-5), name


def test_pix2pix_built_from_defaults():
    from i2i.pipelines.pix2pix import Pix2Pix

    config, options = make_settings("pix2pix", {"width": 4, "ndf": 4})
    options.in_channels = options.out_channels = 3
    torch.manual_seed(0)
    pipe = Pix2Pix(options, config, torch.device("cpu"))
    for opt in pipe.optimizers.values():
        assert opt.param_groups[0]["betas"] == (0.5, 0.999) and opt.param_groups[0]["lr"] == 2e-4
    assert pipe.G.size_multiple == 256  # unet_256
    assert _count(pipe.G, torch.nn.BatchNorm2d) > 0 and _count(pipe.G, torch.nn.Dropout) > 0
    assert pipe.D.arch["name"] == "patchgan" and pipe.D.arch["in_channels"] == 6
    assert pipe.gan.mode == "vanilla"

    batch = {"A": torch.rand(1, 3, 256, 256), "B": torch.rand(1, 3, 256, 256)}
    G = copy.deepcopy(pipe.G)
    torch.manual_seed(1)  # the step's first random draw is the generator's dropout
    losses = pipe.step(batch)
    torch.manual_seed(1)
    with torch.no_grad():
        expected = F.l1_loss(G(batch["A"] * 2 - 1), batch["B"] * 2 - 1) * 100
    assert losses["G_L1"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_srgan_built_from_defaults():
    """SRGAN / BasicSR's recipe: SRResNet x4, 64 features, 16 blocks, L1, Adam (0.9, 0.99) at
    2e-4, batch 16, cosine, EMA 0.999; 96 px HR patches (the SRGAN paper)."""
    from i2i.nn.layers import ResidualBlockNoBN
    from i2i.pipelines.srgan import SRGAN

    config, options = make_settings("srgan", {})
    SRGAN.resolve(options, config)
    pipe = SRGAN(options, config, torch.device("cpu"))
    assert (config.batch_size, config.lr_policy, config.ema, config.image_size) == (16, "cosine", 0.999, 96)
    opt = pipe.optimizers["G"].param_groups[0]
    assert opt["betas"] == (0.9, 0.99) and opt["lr"] == 2e-4
    assert pipe.G.arch["name"] == "srresnet" and pipe.G.scale == 4
    assert _count(pipe.G, ResidualBlockNoBN) == 16 and pipe.G.conv_first.out_channels == 64
    assert pipe.pixel_weight == 1.0 and pipe.pixel.kind == "l1"
