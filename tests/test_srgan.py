"""SRGAN pipeline and `i2i eval MODEL DATA`: a tiny two-stage run that trains, resumes and is
scored, the scores checked against an independent numpy computation, and the one-line errors.

Tiny everything (width 4, 1 block, a few steps) so it runs in seconds on 2 CPU cores; the
gan stage needs 128x128 HR patches (vgg128) and a VGG19 up to conv5_4 (random weights).
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from i2i.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = ["--width", "4", "--num-blocks", "1", "--num-workers", "0", "--device", "cpu", "--seed", "0"]


def _photo(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth, textured RGB uint8 image (bicubic has something to lose, a net something to learn)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = [127 + 100 * np.sin(x / rng.uniform(3, 9) + rng.uniform(0, 6)) * np.cos(y / rng.uniform(3, 9))
                for _ in range(3)]
    image = np.stack(channels, -1) + rng.normal(0, 4, (height, width, 3))
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def hr_dir(tmp_path_factory) -> Path:
    """Two HR photos whose sizes are not multiples of 2 (mod-crop matters), plus a non-image."""
    folder = tmp_path_factory.mktemp("hr")
    Image.fromarray(_photo(131, 133, 1)).save(folder / "first.png")
    Image.fromarray(_photo(133, 130, 2)).save(folder / "second.png")
    (folder / "README.txt").write_text("not an image")
    return folder


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory) -> Path:
    from i2i.losses import save_random_vgg19

    return save_random_vgg19(tmp_path_factory.mktemp("vgg") / "vgg19.safetensors", layer="conv5_4")


@pytest.fixture(scope="module")
def psnr_run(hr_dir, tmp_path_factory) -> Path:
    """Stage psnr x2, 3 steps, in a process where kornia/albumentations/cv2 cannot be imported
    (the GPU box has none of them), then resumed in-process to step 5."""
    run = tmp_path_factory.mktemp("runs") / "psnr"
    args = ["train", "srgan", "--data", str(hr_dir), "--out", str(run), "--scale", "2", "--image-size", "32",
            "--batch-size", "2", "--max-steps", "3", "--ema", "0.5", *TINY]
    code = ("import sys\n"
            "for name in ('kornia', 'albumentations', 'cv2'): sys.modules[name] = None\n"
            "from i2i.cli import main\n"
            f"main({args!r})\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (run / "checkpoints" / "step_3.pt").is_file()
    resumed = CliRunner().invoke(main, ["train", "srgan", "--data", str(hr_dir), "--out", str(run), "--resume",
                                        "--max-steps", "5", "--num-workers", "0", "--device", "cpu"])
    assert resumed.exit_code == 0, resumed.output
    assert "steps 3 -> 5" in resumed.output
    return run


def test_psnr_stage_trains_and_resumes_from_its_checkpoint(psnr_run):
    steps = [json.loads(line)["step"] for line in (psnr_run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [3, 5]
    state = torch.load(psnr_run / "checkpoints" / "step_5.pt", weights_only=True)
    assert state["step"] == 5 and set(state["networks"]) == {"G"}
    from i2i.checkpoint import read_header

    header = read_header(psnr_run / "model.safetensors")
    assert header.pipeline == "srgan" and list(header.archs) == ["G"]
    assert header.archs["G"]["name"] == "srresnet" and header.archs["G"]["scale"] == 2
    assert header.spec.input_range == (0, 1) and header.spec.scale == 2 and header.spec.task == "sr"
    config = (psnr_run / "config.yaml").read_text()
    assert "beta1: 0.9\n" in config and "beta2: 0.99\n" in config and "lr_policy: cosine" in config


def test_gan_stage_from_the_psnr_run_trains_and_resumes(psnr_run, hr_dir, vgg_file, tmp_path):
    run = tmp_path / "gan"
    args = ["train", "srgan", "--stage", "gan", "--pretrained", str(psnr_run), "--vgg-weights", str(vgg_file),
            "--data", str(hr_dir), "--out", str(run), "--batch-size", "1", "--ndf", "4",
            "--num-workers", "0", "--device", "cpu"]
    first = CliRunner().invoke(main, [*args, "--max-steps", "1"])
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(main, [*args, "--max-steps", "2", "--resume"])
    assert second.exit_code == 0, second.output
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    assert {"pixel", "perceptual", "G_GAN", "D_real", "D_fake", "D", "G"} <= set(records[-1])
    assert all(math.isfinite(v) for v in records[-1].values() if isinstance(v, float))
    config = (run / "config.yaml").read_text()
    assert "image_size: 128\n" in config and "lr: 0.0001\n" in config and "width: 4\n" in config
    state = torch.load(run / "checkpoints" / "step_2.pt", weights_only=True)
    assert set(state["networks"]) == {"G", "D"}


def _y(rgb: np.ndarray) -> np.ndarray:
    """BT.601 Y in [0, 255] of a uint8 RGB image, written out here (not i2i.metrics)."""
    r, g, b = (rgb[..., i].astype(np.float64) / 255 for i in range(3))
    return 16 + 65.481 * r + 128.553 * g + 24.966 * b


def test_eval_equals_an_independent_computation(psnr_run, hr_dir, tmp_path):
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(main, ["eval", str(psnr_run), str(hr_dir), "--scale", "2", "--json", str(out),
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "first" in result.output and "mean (2)" in result.output
    scores = json.loads(out.read_text())
    assert scores["n_images"] == 2 and set(scores["per_image"]) == {"first", "second"}

    from i2i.checkpoint import load_model
    from i2i.data.bicubic import imresize
    from i2i.metrics import ssim

    net = load_model(psnr_run / "model.safetensors").networks["G"]
    psnrs, ssims = [], []
    for name in ("first", "second"):
        hr = np.asarray(Image.open(hr_dir / f"{name}.png").convert("RGB"))
        hr = hr[: hr.shape[0] // 2 * 2, : hr.shape[1] // 2 * 2]
        lr = imresize(hr, 0.5)  # MATLAB bicubic on the uint8 image
        with torch.no_grad():
            x = torch.from_numpy(lr.astype(np.float32) / 255).permute(2, 0, 1)[None]
            y = net(x)[0].clamp(0, 1).permute(1, 2, 0).numpy()
        sr = np.round(y * 255).astype(np.uint8)
        y_sr, y_hr = _y(sr)[2:-2, 2:-2], _y(hr)[2:-2, 2:-2]
        psnr = 10 * math.log10(255**2 / np.mean((y_sr - y_hr) ** 2))
        assert scores["per_image"][name]["psnr_y"] == pytest.approx(psnr, abs=1e-6)
        assert scores["per_image"][name]["ssim_y"] == pytest.approx(ssim(y_sr, y_hr), abs=1e-9)
        psnrs.append(psnr)
        ssims.append(ssim(y_sr, y_hr))
    assert scores["psnr_y"] == pytest.approx(np.mean(psnrs), abs=1e-6)
    assert scores["ssim_y"] == pytest.approx(np.mean(ssims), abs=1e-9)

    # an LR folder with the same (bicubic) images, named as DIV2K does, gives the same figures
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    for name in ("first", "second"):
        hr = np.asarray(Image.open(hr_dir / f"{name}.png").convert("RGB"))
        Image.fromarray(imresize(hr[: hr.shape[0] // 2 * 2, : hr.shape[1] // 2 * 2], 0.5)).save(lr_dir / f"{name}x2.png")
    from i2i.evaluate import evaluate_model

    again = evaluate_model(psnr_run, hr_dir, lr_dir=lr_dir, device="cpu")
    for name in ("first", "second"):
        assert again["per_image"][name]["psnr_y"] == pytest.approx(scores["per_image"][name]["psnr_y"], abs=1e-9)


def _tiny_model(path: Path, scale: int = 2) -> Path:
    import i2i.nn
    from i2i.checkpoint import save_model
    from i2i.spec import spec_for_network

    net = i2i.nn.create("srresnet", width=4, num_blocks=1, scale=scale)
    save_model(path, {"G": net}, spec_for_network(net, "srgan", input_range=(0, 1), output_range=(0, 1)))
    return path


def _one_line_error(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (1, 2), result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_gan_stage_errors_are_one_line(hr_dir, tmp_path):
    base = ["train", "srgan", "--stage", "gan", "--data", str(hr_dir), "--device", "cpu"]
    line = _one_line_error([*base, "--out", str(tmp_path / "a")])
    assert "--pretrained" in line
    model = _tiny_model(tmp_path / "psnr.safetensors")
    missing = tmp_path / "no" / "vgg19.pth"
    line = _one_line_error([*base, "--out", str(tmp_path / "b"), "--pretrained", str(model), "--vgg-weights", str(missing)])
    assert str(missing) in line and "VGG19" in line
    line = _one_line_error([*base, "--out", str(tmp_path / "c"), "--pretrained", str(model),
                            "--vgg-weights", str(model), "--image-size", "96"])
    assert "128" in line and "96" in line
    assert not any((tmp_path / name).exists() for name in "abc")


def test_eval_errors_are_one_line(hr_dir, tmp_path):
    model = _tiny_model(tmp_path / "m.safetensors", scale=2)
    assert "x2" in _one_line_error(["eval", str(model), str(hr_dir), "--scale", "4"])
    assert "lpips" in _one_line_error(["eval", str(model), str(hr_dir), "--lpips"])
    assert "torch-fidelity" in _one_line_error(["eval", str(model), str(hr_dir), "--fid"])


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_scales_give_matching_shapes_and_a_finite_step(hr_dir, scale):
    from i2i.pipelines.srgan import SRGAN
    from i2i.training import make_settings

    patch = 12 * scale
    config, options = make_settings("srgan", {"data": str(hr_dir), "out": "unused", "scale": scale,
                                              "image_size": patch, "width": 4, "num_blocks": 1, "batch_size": 2})
    SRGAN.resolve(options, config)
    dataset = SRGAN.build_dataset(options, config)
    item = dataset[0]
    assert item["A"].shape == (3, 12, 12) and item["B"].shape == (3, patch, patch)
    pipe = SRGAN(options, config, torch.device("cpu"))
    batch = {"A": torch.stack([item["A"], dataset[1]["A"]]), "B": torch.stack([item["B"], dataset[1]["B"]])}
    assert pipe.G(batch["A"]).shape == batch["B"].shape
    losses = pipe.step(batch)
    assert set(losses) == {"pixel", "G"} and math.isfinite(float(losses["G"]))
    assert pipe.model_spec().scale == scale


def test_hr_lr_folder_layout(tmp_path):
    """BasicSR's DATA/HR + DATA/LR/X2: the LR files are read, not made."""
    from i2i.data.bicubic import imresize
    from i2i.pipelines.srgan import SRGAN
    from i2i.training import make_settings

    (tmp_path / "HR").mkdir()
    (tmp_path / "LR" / "X2").mkdir(parents=True)
    hr = _photo(40, 44, 3)
    Image.fromarray(hr).save(tmp_path / "HR" / "a.png")
    Image.fromarray(imresize(hr, 0.5)).save(tmp_path / "LR" / "X2" / "ax2.png")
    config, options = make_settings("srgan", {"data": str(tmp_path), "out": "unused", "scale": 2, "image_size": 16})
    SRGAN.resolve(options, config)
    dataset = SRGAN.build_dataset(options, config)
    assert [(h.name, lr.name) for h, lr in dataset.items] == [("a.png", "ax2.png")]
    assert dataset[0]["A"].shape == (3, 8, 8)


def test_esrgan_recipe_step(hr_dir, tmp_path):
    """--arch rrdbnet --gan relativistic: ESRGAN's weights, and a finite G + D step (no VGG here)."""
    import i2i.nn
    from i2i.checkpoint import save_model
    from i2i.pipelines.srgan import SRGAN
    from i2i.spec import spec_for_network
    from i2i.training import make_settings

    model = tmp_path / "rrdb.safetensors"
    rrdb = i2i.nn.create("rrdbnet", width=4, num_blocks=1, growth=4, scale=4)
    save_model(model, {"G": rrdb}, spec_for_network(rrdb, "srgan"))
    config, options = make_settings("srgan", {"data": str(hr_dir), "out": "unused", "stage": "gan", "gan": "relativistic",
                                              "pretrained": str(model), "perceptual_weight": 0.0, "ndf": 4})
    SRGAN.resolve(options, config, quiet=True)
    assert (options.arch, options.scale, config.image_size, config.lr) == ("rrdbnet", 4, 128, 1e-4)
    pipe = SRGAN(options, config, torch.device("cpu"))
    assert (pipe.pixel_weight, pipe.gan_weight) == (1e-2, 5e-3)
    torch.manual_seed(0)
    losses = pipe.step({"A": torch.rand(2, 3, 32, 32), "B": torch.rand(2, 3, 128, 128)})
    assert all(math.isfinite(float(v)) for v in losses.values())
    assert float(losses["G_GAN"]) > 0 and float(losses["D"]) > 0


@pytest.mark.parametrize("kind", ["vanilla", "lsgan", "hinge", "wgangp", "relativistic"])
def test_gan_stage_losses_match_an_independent_computation(tmp_path, kind):
    """The generator's adversarial term asks the (frozen) discriminator to call its output
    real, and the discriminator's loss calls HR real and SR fake; recomputed here from copies
    of both networks taken before the step, with plain torch losses."""
    import copy

    import torch.nn.functional as F

    from i2i.checkpoint import save_model
    from i2i.nn import create
    from i2i.pipelines.srgan import SRGAN
    from i2i.training import make_settings

    from i2i.spec import spec_for_network

    torch.manual_seed(0)
    generator = create("srresnet", width=4, num_blocks=1, scale=2)
    save_model(tmp_path / "psnr.safetensors", {"G": generator},
               spec_for_network(generator, "srgan", input_range=(0, 1), output_range=(0, 1), task="sr"))
    config, options = make_settings("srgan", {"stage": "gan", "pretrained": str(tmp_path / "psnr.safetensors"),
                                              "perceptual_weight": 0.0, "gan": kind, "ndf": 4})
    SRGAN.resolve(options, config, quiet=True)
    pipe = SRGAN(options, config, torch.device("cpu"))
    G, D = copy.deepcopy(pipe.G), copy.deepcopy(pipe.D)
    hr = torch.rand(2, 3, 128, 128)
    lr_img = F.avg_pool2d(hr, 2)
    losses = pipe.step({"A": lr_img, "B": hr})

    with torch.no_grad():
        sr = G(lr_img)
        fake, real = D(sr), D(hr)
    ones, zeros = torch.ones_like(fake), torch.zeros_like(fake)
    bce = F.binary_cross_entropy_with_logits
    generator = {
        "vanilla": bce(fake, ones), "lsgan": F.mse_loss(fake, ones), "hinge": -fake.mean(), "wgangp": -fake.mean(),
        "relativistic": 0.5 * (bce(real - fake.mean(), zeros) + bce(fake - real.mean(), ones)),
    }[kind] * (5e-3 if kind == "relativistic" else 1e-3)
    discriminator = {
        "vanilla": bce(real, ones) + bce(fake, zeros),
        "lsgan": F.mse_loss(real, ones) + F.mse_loss(fake, zeros),
        "hinge": F.relu(1 - real).mean() + F.relu(1 + fake).mean(),
        "relativistic": 0.5 * (bce(real - fake.mean(), ones) + bce(fake - real.mean(), zeros)),
    }
    assert losses["G_GAN"].item() == pytest.approx(generator.item(), rel=1e-4, abs=1e-9)
    assert losses["G"].item() == pytest.approx(generator.item() + 1e-2 * F.l1_loss(sr, hr).item(), rel=1e-4)
    if kind in discriminator:  # wgangp adds a penalty at random points
        assert losses["D"].item() == pytest.approx(discriminator[kind].item(), rel=1e-4)


def test_the_start_line_counts_photos_not_their_repeats(tmp_path):
    """A small folder is visited many times an epoch; "1610 images" for 14 photos misled."""
    rng = np.random.default_rng(0)
    (tmp_path / "hr").mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "hr" / f"{i}.png")
    result = CliRunner().invoke(main, ["train", "srgan", "--data", str(tmp_path / "hr"), "--out", str(tmp_path / "run"),
                                       "--width", "4", "--num-blocks", "1", "--image-size", "32",
                                       "--max-steps", "1", "--num-workers", "0", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "srgan: 3 images x " in result.output and " per epoch (" in result.output, result.output


@pytest.mark.parametrize("flags, named", [
    (["--preprocess", "scale_width", "--load-size", "999"], "--load-size 999 is not used by srgan"),
    (["--preprocess", "scale_width"], "--preprocess scale_width is not used by srgan"),
    (["--gan", "relativistic"], "--gan relativistic only matters with --stage gan"),
    (["--diffaug", "color"], "--diffaug color only matters with --stage gan"),
    (["--ndf", "8"], "--ndf 8 only matters with --stage gan"),
    (["--d-width", "8"], "--ndf 8 only matters with --stage gan"),
    (["--perceptual-weight", "3"], "--perceptual-weight 3.0 only matters with --stage gan"),
    (["--gan-weight", "0.1"], "--gan-weight 0.1 only matters with --stage gan"),
    (["--growth", "8"], "--growth 8 only matters with --arch rrdbnet"),
])
def test_a_flag_srgan_would_ignore_is_one_line_saying_why(hr_dir, tmp_path, flags, named):
    """A flag the pipeline, at this stage, never reads is refused rather than recorded in
    config.yaml and ignored."""
    run = tmp_path / "run"
    line = _one_line_error(["train", "srgan", "--data", str(hr_dir), "--out", str(run), *flags, *TINY,
                            "--scale", "2", "--image-size", "32", "--batch-size", "2", "--max-steps", "1"])
    assert line == f"error: {named}" + line.removeprefix(f"error: {named}"), line
    assert not run.exists()


def test_ignored_settings_are_refused_from_a_file_and_a_mapping_but_not_as_defaults_or_when_resumed(tmp_path):
    from i2i.errors import UsageError
    from i2i.training import make_settings

    settings = tmp_path / "sr.yaml"
    settings.write_text("load_size: 999\n")
    with pytest.raises(UsageError, match=rf"--load-size 999 in {settings} is not used by srgan"):
        make_settings("srgan", config_file=settings)
    with pytest.raises(UsageError, match="--diffaug color only matters with --stage gan"):
        make_settings("srgan", {"diffaug": "color", "stage": "psnr"})
    # stage gan reads them; rrdbnet reads --growth
    _, options = make_settings("srgan", {"stage": "gan", "gan": "relativistic", "ndf": 8, "perceptual_weight": 3})
    assert (options.gan, options.ndf, options.perceptual_weight) == ("relativistic", 8, 3.0)
    assert make_settings("srgan", {"arch": "rrdbnet", "growth": 8})[1].growth == 8
    # a default given explicitly asks for nothing: a copied config.yaml lists every setting
    make_settings("srgan", {"gan": "vanilla", "ndf": 64, "load_size": 0, "preprocess": "resize_and_crop"})
    make_settings("srgan", config_file=REPO / "pretrained" / "srresnet-x4.config.yaml")
    # a resumed run's config.yaml is the run's record, not a request (runs saved before the check)
    run = tmp_path / "old_run"
    run.mkdir()
    (run / "config.yaml").write_text("pipeline: srgan\nstage: psnr\nload_size: 999\ngan: hinge\ndiffaug: color\n")
    config, options = make_settings("srgan", {"max_steps": 5}, resume_from=run)
    assert (config.load_size, options.gan, config.max_steps) == (999, "hinge", 5)


def test_srgan_help_leaves_out_the_reference_resize_defaults():
    """--help says srgan does nothing with --load-size and --preprocess (or leaves them out), not
    pix2pix's 286/256, and no "linear decay to zero" for the length of its cosine schedule."""
    from test_cli import option_help

    result = CliRunner().invoke(main, ["train", "srgan", "--help"])
    assert result.exit_code == 0
    rows = option_help(result.output)
    assert "286/256" not in result.output and "linear decay to zero" not in " ".join(rows.values())
    assert all("unused" in rows.get(flag, "hidden: unused") for flag in ("--load-size", "--preprocess"))
    assert "cosine" in rows["--n-epochs-decay"]
    assert all("Stage gan" in rows[flag] for flag in ("--gan", "--gan-weight", "--ndf", "--perceptual-weight"))


def test_a_mistyped_stage_is_the_error_not_the_flags_it_would_leave_unused():
    """`stage: GAN` with `gan: relativistic` said "--gan only matters with --stage gan"."""
    from i2i.errors import UsageError
    from i2i.pipelines.srgan import SRGAN
    from i2i.training import make_settings

    config, options = make_settings("srgan", {"stage": "GAN", "gan": "relativistic"})
    with pytest.raises(UsageError, match="stage must be one of psnr, gan"):
        SRGAN.resolve(options, config, quiet=True)
