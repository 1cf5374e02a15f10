"""DiffAugment (`--diffaug`): the ops' ranges, gradients and shared geometry on tiny tensors;
off by default; every discriminator input of each pipeline goes through it when on; a
resumed run draws the same parameters. CPU, tiny networks."""
from __future__ import annotations

import math
import shutil

import pytest
import torch
from test_train import TINY_PIX2PIX, metrics, one_thread, paired  # noqa: F401  (one_thread: autouse)

from i2i.data import diffaugment
from i2i.data.diffaugment import DiffAugment, color, cutout, parse_policy, translation
from i2i.errors import UsageError
from i2i.pipelines import diffaugment_of_run
from i2i.training import RunFolder, TrainConfig, make_settings, train
from i2i.training.settings import check_config

POLICY = "color,translation,cutout"


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- the policy


def test_policy_parsing_and_one_line_errors():
    assert parse_policy("") == parse_policy("none") == parse_policy("off") == ()  # --help shows "off"
    assert parse_policy(" color, translation ,cutout ") == ("color", "translation", "cutout")
    with pytest.raises(UsageError, match="unknown diffaug op 'colour'"):
        parse_policy("colour,cutout")
    with pytest.raises(UsageError, match="twice"):
        parse_policy("cutout,cutout")
    check_config(TrainConfig(diffaug=POLICY))
    with pytest.raises(UsageError, match="diffaug"):
        check_config(TrainConfig(diffaug="flip"))


def test_off_by_default():
    from i2i.pipelines.pix2pix import Pix2Pix, Pix2PixOptions

    assert TrainConfig().diffaug == ""
    pipe = Pix2Pix(Pix2PixOptions(netG="unet_32", width=4, ndf=4, in_channels=3, out_channels=3), TrainConfig(),
                   torch.device("cpu"))
    x = torch.rand(1, 6, 32, 32)
    assert pipe.diffaug is None and pipe.d_input(x, (3, 3)) is x and pipe.state_dict() == {}


# ----------------------------------------------------------------------------- the ops


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", POLICY])
def test_gradients_flow_through(policy):
    fake = torch.rand(4, 4, 16, 16, requires_grad=True)
    out = DiffAugment(policy, seed=1)(fake, (3, 1))
    assert out.shape == fake.shape and out.requires_grad
    (out * torch.randn_like(out)).sum().backward()
    assert fake.grad is not None and torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0


def test_translation_is_a_shift_within_an_eighth_filled_with_the_middle():
    n, h, w, fill = 400, 16, 24, 0.5
    x = (torch.arange(h * w, dtype=torch.float64).view(1, 1, h, w) + 10).expand(n, 2, h, w)
    out = translation(x, _generator(), fill=fill)
    max_y, max_x = 2, 3  # int(16 / 8 + 0.5), int(24 / 8 + 0.5)
    centre = out[:, 0, h // 2, w // 2].long() - 10  # = x[h/2 + dy, w/2 + dx]
    dy, dx = centre // w - h // 2, centre % w - w // 2
    assert set(dy.tolist()) == set(range(-max_y, max_y + 1)) and set(dx.tolist()) == set(range(-max_x, max_x + 1))
    padded = torch.nn.functional.pad(x, (max_x, max_x, max_y, max_y), value=fill)
    for i in range(n):
        y0, x0 = max_y + int(dy[i]), max_x + int(dx[i])
        assert torch.equal(out[i], padded[i, :, y0:y0 + h, x0:x0 + w])


def test_cutout_is_a_clipped_half_size_rectangle_anywhere():
    n, h, w = 400, 16, 20
    out = cutout(torch.ones(n, 3, h, w), _generator(), fill=0.0)
    hole = out[:, 0] == 0
    assert torch.equal(hole.unsqueeze(1).expand_as(out), out == 0)  # the same hole on every channel
    rows, cols = hole.any(2), hole.any(1)  # n x h, n x w
    assert torch.equal(hole, rows.unsqueeze(2) & cols.unsqueeze(1))  # a rectangle
    heights, widths = rows.sum(1), cols.sum(1)
    assert heights.max() == 8 and widths.max() == 10 and heights.min() >= 4 and widths.min() >= 5
    inside = (rows[:, 0] == 0) & (rows[:, -1] == 0)  # not touching the top or bottom edge
    assert (heights[inside] == 8).all()
    assert rows[:, 0].any() and rows[:, -1].any() and cols[:, 0].any() and cols[:, -1].any()  # reaches every edge


@pytest.mark.parametrize("value_range", [(-1.0, 1.0), (0.0, 1.0)])
def test_colour_ranges_and_groups(value_range):
    n = 2000
    span = value_range[1] - value_range[0]
    flat = torch.full((n, 3, 4, 4), 0.25)  # no saturation or contrast to change: brightness alone
    shift = color(flat, _generator(), (3,), span) - 0.25
    assert torch.allclose(shift, shift[:, :1, :1, :1].expand_as(shift), atol=1e-6)  # one shift per sample
    assert shift.min() >= -span / 4 - 1e-6 and shift.max() <= span / 4 + 1e-6
    assert shift.min() < -0.9 * span / 4 and shift.max() > 0.9 * span / 4
    x = torch.rand(n, 6, 4, 4)
    out = color(x, _generator(), (1, 3, 2), span)
    assert torch.equal(out[:, 4:], x[:, 4:])  # Lab's ab channels are no intensities: untouched
    assert not torch.equal(out[:, :4], x[:, :4])


def test_conditional_input_gets_one_geometry_and_one_colour():
    """pix2pix's cat(A, B): identical halves stay identical, and a gray part moves with the RGB part."""
    a = torch.rand(6, 3, 16, 16)
    out = DiffAugment(POLICY, seed=3)(torch.cat((a, a), 1), (3, 3))
    assert torch.allclose(out[:, :3], out[:, 3:])
    geometry = DiffAugment("translation,cutout", seed=3)(torch.cat((a, a[:, :1]), 1), (3, 1))
    assert torch.equal(geometry[:, 3], geometry[:, 0])
    assert not torch.equal(geometry[:, :3], a)


def test_seeded_repeatable_and_resumable():
    x = torch.rand(3, 3, 16, 16)
    first, second = DiffAugment(POLICY, seed=7), DiffAugment(POLICY, seed=7)
    assert torch.equal(first(x), second(x))
    state = first.state_dict()
    expected = first(x)
    fresh = DiffAugment(POLICY, seed=99)
    fresh.load_state_dict(state)
    assert torch.equal(fresh(x), expected)
    assert not torch.equal(DiffAugment(POLICY, seed=8)(x), second(x))


def test_each_process_draws_its_own(monkeypatch):
    """The trainer gives the pipeline its torchrun rank, and each rank seeds its own DiffAugment."""
    from i2i.training.trainer import Stepper

    config, options = make_settings("pix2pix", {**TINY_PIX2PIX, "diffaug": POLICY, "channels_last": "off"})
    options.in_channels = options.out_channels = 3

    def diffaug_state() -> torch.Tensor:
        stepper = Stepper("pix2pix", config, options, torch.device("cpu"), "fp32", steps_per_epoch=1, total_steps=1)
        return stepper.pipe.diffaug.generator.get_state()

    rank0 = diffaug_state()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert not torch.equal(rank0, diffaug_state())
    assert torch.equal(diffaugment_of_run(POLICY, 0, 1, (-1.0, 1.0)).generator.get_state(),
                       diffaugment_of_run(POLICY, 0, 1, (0.0, 1.0)).generator.get_state())
    assert diffaugment_of_run("", 0, 0, (-1.0, 1.0)) is None


def test_half_precision_input_keeps_its_dtype():
    x = torch.rand(2, 3, 16, 16, dtype=torch.bfloat16)
    assert DiffAugment(POLICY)(x).dtype == torch.bfloat16


# ----------------------------------------------------------------------------- the pipelines


@pytest.fixture
def spy(monkeypatch):
    """Record what goes into diff_augment and what comes out (the module function the
    pipelines reach through DiffAugment)."""
    calls = []
    real = diffaugment.diff_augment

    def recording(x, ops, generator=None, groups=None, value_range=(-1.0, 1.0)):
        out = real(x, ops, generator, groups, value_range)
        calls.append({"input": x, "output": out, "groups": groups, "value_range": value_range})
        return out

    monkeypatch.setattr(diffaugment, "diff_augment", recording)
    return calls


def _discriminator_inputs(nets) -> list:
    """Every tensor the networks `nets` are called with, from now on."""
    seen = []
    for net in nets:
        net.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    return seen


def _check_every_input_augmented(seen, calls, expected_calls):
    assert len(calls) == expected_calls
    outputs = [call["output"] for call in calls]
    assert len(seen) >= expected_calls
    assert all(any(x is out for out in outputs) for x in seen), "a discriminator saw an unaugmented tensor"


def test_pix2pix_discriminator_inputs_pass_through(spy):
    from i2i.pipelines.pix2pix import Pix2Pix, Pix2PixOptions

    options = Pix2PixOptions(netG="unet_32", width=4, ndf=4, in_channels=1, out_channels=3)
    pipe = Pix2Pix(options, TrainConfig(diffaug=POLICY), torch.device("cpu"))
    seen = _discriminator_inputs([pipe.D])
    losses = pipe.step({"A": torch.rand(2, 1, 32, 32), "B": torch.rand(2, 3, 32, 32)})
    assert all(math.isfinite(float(v)) for v in losses.values())
    _check_every_input_augmented(seen, spy, 3)  # D: fake, real; G: fake
    assert all(call["groups"] == (1, 3) and call["value_range"] == (-1.0, 1.0) for call in spy)
    assert spy[2]["input"].requires_grad  # the generator's adversarial gradient flows through


def test_cyclegan_discriminator_inputs_pass_through(spy):
    from i2i.pipelines.cyclegan import CycleGAN, CycleGANOptions

    options = CycleGANOptions(netG="resnet_6blocks", width=4, ndf=4, in_channels=3, out_channels=3, pool_size=2)
    pipe = CycleGAN(options, TrainConfig(diffaug=POLICY), torch.device("cpu"))
    seen = _discriminator_inputs([pipe.D_A, pipe.D_B])
    losses = pipe.step({"A": torch.rand(1, 3, 32, 32), "B": torch.rand(1, 3, 32, 32)})
    assert all(math.isfinite(float(v)) for v in losses.values())
    _check_every_input_augmented(seen, spy, 6)  # G: fake_B, fake_A; D_A: pooled, real; D_B: pooled, real
    assert {"diffaug", "fake_A_pool", "fake_B_pool"} == set(pipe.state_dict())


def test_srgan_discriminator_inputs_pass_through(spy, tmp_path):
    import i2i.nn
    from i2i.checkpoint import save_model
    from i2i.pipelines.srgan import SRGAN
    from i2i.spec import spec_for_network

    model = tmp_path / "psnr.safetensors"
    net = i2i.nn.create("srresnet", width=4, num_blocks=1, scale=4)
    save_model(model, {"G": net}, spec_for_network(net, "srgan"))
    config, options = make_settings("srgan", {"data": str(tmp_path), "out": "unused", "stage": "gan",
                                              "pretrained": str(model), "perceptual_weight": 0.0, "ndf": 4,
                                              "diffaug": POLICY})
    SRGAN.resolve(options, config, quiet=True)
    pipe = SRGAN(options, config, torch.device("cpu"))
    seen = _discriminator_inputs([pipe.D])
    losses = pipe.step({"A": torch.rand(2, 3, 32, 32), "B": torch.rand(2, 3, 128, 128)})
    assert all(math.isfinite(float(v)) for v in losses.values())
    _check_every_input_augmented(seen, spy, 3)  # G: sr; D: hr, sr
    assert all(call["value_range"] == (0.0, 1.0) for call in spy)


def test_tiny_run_with_diffaug_resumes_exactly(tmp_path):
    """config.yaml records the policy, checkpoints hold its generator, and a run resumed
    from step 2 computes steps 3-4 as the run that never stopped."""
    from i2i.checkpoint import load_training_state

    data = paired(tmp_path / "data", n=4)
    full = tmp_path / "full"
    config, options = make_settings("pix2pix", {"data": str(data), "out": str(full), **TINY_PIX2PIX, "max_steps": 4,
                                                "checkpoint_every": 2, "keep_last": 5, "diffaug": POLICY})
    train("pix2pix", config, options)
    assert "diffaug: color,translation,cutout" in (full / "config.yaml").read_text()
    state = load_training_state(full / "checkpoints" / "step_2.pt")
    assert state["pipeline_state"]["diffaug"]["generator"].dtype == torch.uint8

    resumed = tmp_path / "resumed"
    shutil.copytree(full, resumed)
    (resumed / "checkpoints" / "step_4.pt").unlink()
    config, options = make_settings("pix2pix", {"out": str(resumed)}, resume_from=resumed)
    train("pix2pix", config, options, resume=True)

    def losses(run):
        return [{k: v for k, v in r.items() if k not in ("sec_per_step", "data_sec", "images_per_sec")}
                for r in metrics(run)]

    assert [r["step"] for r in metrics(resumed)] == [1, 2, 3, 4]
    assert losses(resumed) == losses(full)
    assert [p.name for p in RunFolder(full).checkpoints()] == ["step_2.pt", "step_4.pt"]
