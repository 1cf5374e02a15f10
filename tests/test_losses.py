"""Losses: reference GANLoss / gradient-penalty parity, hinge, relativistic, pixel, VGG19."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import golden_manifest
from i2i import losses as L
from i2i.errors import I2IError, UsageError


def within(actual: torch.Tensor, expected: torch.Tensor, tol: dict) -> bool:
    return bool(((actual - expected).abs() <= tol["atol"] + tol["rtol"] * expected.abs()).all())


# ----------------------------------------------------------------------------- golden GANLoss


@pytest.fixture(scope="module")
def golden(shared_dir):
    from safetensors.torch import load_file

    manifest = golden_manifest(shared_dir, "cyclegan")["items"]
    root = shared_dir / "golden" / "cyclegan"
    return {
        name: (manifest[name], load_file(str(root / manifest[name]["files"]["data"])))
        for name in ("gan_loss", "gradient_penalty")
    }


@pytest.mark.parametrize("mode", ["lsgan", "vanilla", "wgangp"])
def test_gan_loss_matches_reference(golden, mode):
    item, data = golden["gan_loss"]
    criterion = L.GANLoss(mode)
    tol = item["tolerance"]["loss"]
    assert item["tolerance"]["loss"]["atol"] <= 1e-6
    for pred_name in item["predictions"]:
        for side in ("real", "fake"):
            key = f"{mode}.{pred_name}.{side}"
            actual = criterion(data[pred_name], side == "real")
            assert actual.shape == () and actual.dtype == torch.float32
            assert within(actual, data[key], tol), (key, actual.item(), data[key].item())
            listed = item["values"][key]  # MANIFEST repeats the values as floats
            assert abs(actual.item() - listed) <= tol["atol"] + tol["rtol"] * abs(listed)


def test_gan_loss_unknown_mode_is_one_line_usage_error():
    with pytest.raises(UsageError) as err:
        L.GANLoss("wgan")
    assert "wgan" in str(err.value) and "\n" not in str(err.value)


def test_gan_loss_labels_follow_prediction_device_and_dtype():
    pred = torch.randn(2, 1, 3, 3, dtype=torch.float64)
    assert L.GANLoss("lsgan")(pred, True).dtype == torch.float64


# ----------------------------------------------------------------------------- hinge


def test_hinge_values_and_signs():
    crit = L.GANLoss("hinge")
    pred = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    assert crit(pred, True).item() == pytest.approx(F.relu(1 - pred).mean().item())
    assert crit(pred, False).item() == pytest.approx(F.relu(1 + pred).mean().item())
    assert crit(pred, True, for_discriminator=False).item() == pytest.approx(-pred.mean().item())
    # a confident, correct discriminator pays nothing; a wrong one pays linearly
    assert crit(torch.full((4,), 2.0), True).item() == 0.0
    assert crit(torch.full((4,), -2.0), False).item() == 0.0
    assert crit(torch.full((4,), -2.0), True).item() == pytest.approx(3.0)
    # the generator's loss falls as the discriminator scores its fakes higher
    assert crit(torch.full((4,), 5.0), True, False) < crit(torch.full((4,), -5.0), True, False)
    big = torch.tensor([1e30, -1e30], requires_grad=True)
    for args in [(True,), (False,), (True, False)]:
        loss = crit(big, *args)
        (grad,) = torch.autograd.grad(loss, big)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()


# ----------------------------------------------------------------------------- gradient penalty


def golden_patchgan(shared_dir):
    nn_pkg = pytest.importorskip("i2i.nn")
    if not hasattr(nn_pkg, "create"):
        pytest.skip("i2i.nn.create not available yet")
    from safetensors.torch import load_file

    netD = nn_pkg.create("patchgan", in_channels=3, width=4, n_layers=2, norm="instance")
    path = shared_dir / "golden" / "cyclegan" / "gradient_penalty.netD.weights.safetensors"
    netD.load_state_dict(load_file(str(path)), strict=True)
    return netD.train()


@pytest.mark.parametrize("kind", ["real", "fake", "mixed"])
def test_gradient_penalty_matches_reference(golden, shared_dir, kind):
    item, data = golden["gradient_penalty"]
    netD = golden_patchgan(shared_dir)
    penalty, grads = L.gradient_penalty(netD, data["real"], data["fake"], kind=kind, constant=1.0,
                                        weight=10.0, alpha=data["alpha"])
    tol = item["tolerance"]
    assert within(penalty, data[f"gp.{kind}"], tol["loss"]), (penalty.item(), data[f"gp.{kind}"].item())
    assert grads.shape == (2, 3072)
    assert within(grads, data[f"gradients.{kind}"], tol["gradients"])


def test_gradient_penalty_draws_alpha_like_reference(golden, shared_dir):
    item, data = golden["gradient_penalty"]
    netD = golden_patchgan(shared_dir)
    torch.manual_seed(20256810)  # the seed the golden set before each reference call
    penalty, _ = L.gradient_penalty(netD, data["real"], data["fake"])
    assert within(penalty, data["gp.mixed"], item["tolerance"]["loss"])


def tiny_critic() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3, 1, 1))


def test_wgangp_penalty_is_applied_and_trains_the_critic():
    netD = tiny_critic()
    real, fake = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8, requires_grad=True)
    crit = L.GANLoss("wgangp")
    alpha = torch.rand(2, 1)
    torch.manual_seed(5)
    pen = crit.penalty(netD, real, fake)
    torch.manual_seed(5)
    expected, _ = L.gradient_penalty(netD, real, fake, weight=10.0)
    assert pen.item() == pytest.approx(expected.item()) and pen.item() > 0
    pen.backward()
    weights = [p for p in netD.parameters() if p.dim() > 1]  # (the last bias cannot move d D / dx)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)
    assert fake.grad is None  # inputs are detached: the penalty regularises D only
    # penalty by hand: per-sample input-gradient norms of sum(D(x))
    x = (alpha.view(2, 1, 1, 1) * real + (1 - alpha.view(2, 1, 1, 1)) * fake).detach().requires_grad_()
    (g,) = torch.autograd.grad(netD(x).sum(), x)
    by_hand = ((g.flatten(1).norm(dim=1) - 1) ** 2).mean() * 10
    got, _ = L.gradient_penalty(netD, real, fake, alpha=alpha)
    assert got.item() == pytest.approx(by_hand.item(), rel=1e-5)
    for mode in ("lsgan", "vanilla", "hinge"):
        zero = L.GANLoss(mode).penalty(netD, real, fake)
        assert zero.shape == () and zero.item() == 0.0


def test_gradient_penalty_edge_cases():
    netD = tiny_critic()
    x = torch.randn(1, 3, 8, 8)
    assert L.gradient_penalty(netD, x, x, weight=0.0)[1] is None
    with pytest.raises(UsageError):
        L.gradient_penalty(netD, x, x, kind="both")
    with pytest.raises(UsageError):
        L.GANLoss("wgangp", gp_kind="both")


# ----------------------------------------------------------------------------- relativistic


def test_relativistic_loss_matches_direct_formula():
    torch.manual_seed(1)
    real, fake = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    sig = torch.sigmoid
    dr, df = real - fake.mean(), fake - real.mean()
    d_direct = -0.5 * (torch.log(sig(dr)).mean() + torch.log(1 - sig(df)).mean())
    g_direct = -0.5 * (torch.log(1 - sig(dr)).mean() + torch.log(sig(df)).mean())
    assert L.relativistic_loss(real, fake, True).item() == pytest.approx(d_direct.item(), rel=1e-6)
    assert L.relativistic_loss(real, fake, False).item() == pytest.approx(g_direct.item(), rel=1e-6)
    # symmetric: the generator's loss is the discriminator's with real and fake swapped
    assert L.relativistic_loss(real, fake, False).item() == pytest.approx(
        L.relativistic_loss(fake, real, True).item(), rel=1e-6)
    # a discriminator that ranks real above fake pays less than one that ranks them wrongly
    assert L.relativistic_loss(real + 5, fake, True) < L.relativistic_loss(real, fake + 5, True)


# ----------------------------------------------------------------------------- pixel losses


def test_charbonnier_and_pixel_losses_by_hand():
    pred = torch.tensor([[0.0, 0.5], [1.0, -1.0]])
    target = torch.tensor([[0.0, 0.0], [0.25, 1.0]])
    eps = 1e-3
    diffs = [0.0, 0.5, 0.75, 2.0]
    by_hand = sum(math.sqrt(d * d + eps * eps) for d in diffs) / 4
    assert L.charbonnier(pred, target).item() == pytest.approx(by_hand, rel=1e-6)
    assert L.charbonnier(pred, target, eps=0.5).item() == pytest.approx(
        sum(math.sqrt(d * d + 0.25) for d in diffs) / 4, rel=1e-6)
    assert L.charbonnier(target, target).item() == pytest.approx(eps, rel=1e-5)
    assert L.l1(pred, target).item() == pytest.approx(sum(diffs) / 4)
    assert L.PixelLoss("l1")(pred, target).item() == pytest.approx(sum(diffs) / 4)
    assert L.PixelLoss("mse")(pred, target).item() == pytest.approx(sum(d * d for d in diffs) / 4)
    assert L.PixelLoss("charbonnier")(pred, target).item() == pytest.approx(by_hand, rel=1e-6)
    with pytest.raises(UsageError):
        L.PixelLoss("l3")


# ----------------------------------------------------------------------------- perceptual


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    return L.save_random_vgg19(tmp_path_factory.mktemp("vgg") / "vgg19.pth", seed=0)


def test_vgg19_layout_is_torchvisions():
    from torchvision.models.vgg import cfgs, make_layers

    theirs = make_layers(cfgs["E"]).state_dict()
    ours = L._vgg19_features().state_dict()
    assert list(theirs) == list(ours) and all(theirs[k].shape == ours[k].shape for k in theirs)
    assert L.VGG19_LAYERS["conv5_4"] == 34 and L.VGG19_LAYERS["relu5_4"] == 35
    assert L.VGG19_LAYERS["conv1_1"] == 0 and L.VGG19_LAYERS["pool5"] == 36


def test_perceptual_loss_zero_positive_gradients_frozen(vgg_file):
    loss = L.PerceptualLoss(vgg_file)
    assert loss.layer == "conv5_4" and len(loss.vgg) == 35
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    y = torch.rand(1, 3, 32, 32)
    assert loss(y, y.clone()).item() == 0.0
    value = loss(x, y)
    assert value.item() > 0
    value.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in loss.parameters())
    loss.train()
    assert not loss.vgg.training
    assert loss.state_dict().keys() == {f"vgg.{k}" for k in L._vgg19_features(34).state_dict()}


def test_perceptual_loss_options(vgg_file, tmp_path):
    torch.manual_seed(0)
    x, y = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    base = L.PerceptualLoss(vgg_file)
    # images in [-1, 1] with input_range=(-1, 1) see the same features
    signed = L.PerceptualLoss(vgg_file, input_range=(-1, 1))
    assert signed(2 * x - 1, 2 * y - 1).item() == pytest.approx(base(x, y).item(), rel=1e-4)
    after = L.PerceptualLoss(vgg_file, before_activation=False, criterion="mse")
    assert after.layer == "relu5_4" and isinstance(after.vgg[-1], nn.ReLU)
    assert after(x, y).item() >= 0
    # safetensors, extra classifier keys and a shallow layer all load
    st = L.save_random_vgg19(tmp_path / "vgg.safetensors", seed=0, layer="conv2_2")
    shallow = L.PerceptualLoss(st, layer="conv2_2")
    pth = tmp_path / "with_classifier.pth"
    state = torch.load(vgg_file, weights_only=True)
    state["classifier.6.bias"] = torch.zeros(1000)
    torch.save(state, pth)
    assert L.PerceptualLoss(pth, layer="conv2_2")(x, y).item() == pytest.approx(shallow(x, y).item(), rel=1e-6)
    with pytest.raises(UsageError):
        L.PerceptualLoss(vgg_file, layer="conv6_1")
    with pytest.raises(UsageError):
        L.PerceptualLoss(vgg_file, criterion="huber")


def test_save_random_vgg19_is_seeded_and_leaves_global_rng(tmp_path):
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = torch.load(L.save_random_vgg19(tmp_path / "a.pth", seed=3, layer="conv1_2"), weights_only=True)
    assert torch.equal(torch.random.get_rng_state(), before)
    b = torch.load(L.save_random_vgg19(tmp_path / "b.pth", seed=3, layer="conv1_2"), weights_only=True)
    c = torch.load(L.save_random_vgg19(tmp_path / "c.pth", seed=4, layer="conv1_2"), weights_only=True)
    assert set(a) == {"features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias"}
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["features.0.weight"], c["features.0.weight"])


def one_line_error(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg and msg
    return msg


def test_missing_weights_error_names_path_and_remedy(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "vgg19.pth"
    with pytest.raises(I2IError) as err:
        L.PerceptualLoss(missing)
    msg = one_line_error(err)
    assert str(missing) in msg and "I2I_VGG19_WEIGHTS" in msg
    # where the path comes from: argument > environment > ~/.cache/i2i default
    monkeypatch.setenv("I2I_VGG19_WEIGHTS", str(tmp_path / "env.pth"))
    assert L.vgg19_weights_path() == tmp_path / "env.pth"
    assert L.vgg19_weights_path(missing) == missing
    with pytest.raises(I2IError) as err:
        L.PerceptualLoss()
    assert str(tmp_path / "env.pth") in one_line_error(err)
    monkeypatch.delenv("I2I_VGG19_WEIGHTS")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert L.vgg19_weights_path() == tmp_path / ".cache" / "i2i" / "vgg19-dcbb9e9d.pth"


def test_bad_weights_files_are_one_line_errors(tmp_path, vgg_file):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint\nsecond line")
    corrupt_st = tmp_path / "corrupt.safetensors"
    corrupt_st.write_bytes(b"\x00" * 16)
    shallow = L.save_random_vgg19(tmp_path / "shallow.pth", layer="conv1_2")
    wrong_shape = tmp_path / "wrong.pth"
    state = torch.load(shallow, weights_only=True)
    state["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    torch.save(state, wrong_shape)
    not_a_dict = tmp_path / "list.pth"
    torch.save([1, 2], not_a_dict)
    for path, words in [(corrupt, "not a PyTorch weights file"), (corrupt_st, "broken safetensors"), (shallow, "features.5.weight"),
                        (wrong_shape, "shape"), (not_a_dict, "not a state dict")]:
        with pytest.raises(I2IError) as err:
            L.PerceptualLoss(path, layer="conv2_2" if path != shallow else "conv5_4")
        msg = one_line_error(err)
        assert str(path) in msg and words in msg, msg
