"""Real-ESRGAN degradations: each kernel family against a plain numpy formula, the noise and
JPEG steps, and the whole second-order chain (shapes, ranges, determinism, real effect)."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from i2i.data import degradations as D


def numpy_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, shape) -> np.ndarray:
    """A kernel from its definition, one tap at a time."""
    c, s = math.cos(theta), math.sin(theta)
    rotation = np.array([[c, -s], [s, c]])
    inverse = np.linalg.inv(rotation @ np.diag([sigma_x**2, sigma_y**2]) @ rotation.T)
    half = (size - 1) / 2
    kernel = np.zeros((size, size))
    for row in range(size):
        for col in range(size):
            v = np.array([col - half, row - half])
            kernel[row, col] = shape(v @ inverse @ v)
    return kernel / kernel.sum()


@pytest.mark.parametrize("size,sx,sy,theta", [(7, 0.8, 0.8, 0.0), (13, 2.5, 0.6, 0.7), (21, 3.0, 1.2, -2.1)])
def test_kernel_families_match_their_formulas(size, sx, sy, theta):
    cases = [
        (D.gaussian_kernel(size, sx, sy, theta), lambda q: math.exp(-0.5 * q)),
        (D.gaussian_kernel(size, sx, sy, theta, beta=0.6), lambda q: math.exp(-0.5 * q**0.6)),
        (D.gaussian_kernel(size, sx, sy, theta, beta=3.0), lambda q: math.exp(-0.5 * q**3.0)),
        (D.plateau_kernel(size, sx, sy, theta, beta=1.5), lambda q: 1 / (1 + q**1.5)),
    ]
    for kernel, shape in cases:
        np.testing.assert_allclose(kernel.numpy(), numpy_kernel(size, sx, sy, theta, shape), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("size,cutoff", [(7, math.pi / 2), (15, math.pi / 4), (21, 3.0)])
def test_sinc_kernel_is_the_circular_low_pass(size, cutoff):
    from scipy.special import j1

    half = (size - 1) / 2
    expected = np.zeros((size, size))
    for row in range(size):
        for col in range(size):
            r = math.hypot(col - half, row - half)
            expected[row, col] = cutoff**2 / (4 * math.pi) if r == 0 else cutoff * j1(cutoff * r) / (2 * math.pi * r)
    np.testing.assert_allclose(D.sinc_kernel(size, cutoff).numpy(), expected / expected.sum(), rtol=1e-6, atol=1e-8)


def test_random_kernels_are_normalised_padded_and_follow_the_probabilities():
    draw = D._Draw(torch.Generator().manual_seed(0))
    kernels = [D.random_blur_kernel(D.BlurSettings(), draw) for _ in range(300)]
    assert all(k.shape == (21, 21) and abs(float(k.sum()) - 1) < 1e-9 for k in kernels)
    # isotropic kernels are symmetric under a transpose; most anisotropic ones are not
    symmetric = sum(bool(torch.allclose(k, k.T, atol=1e-12)) for k in kernels) / len(kernels)
    assert 0.45 < symmetric < 0.85  # iso 0.45 + generalized/plateau iso 0.15 + sinc 0.1, roughly
    identity = D.final_sinc_kernel(0.0, draw)
    assert identity[10, 10] == 1 and identity.sum() == 1


def test_filter2d_applies_each_samples_own_kernel():
    x = torch.rand(2, 3, 24, 20)
    pulse = D.final_sinc_kernel(0.0, D._Draw(None))
    blur = D._pad(D.gaussian_kernel(7, 1.5, 1.5, 0.0))
    out = D.filter2d(x, torch.stack([pulse, blur]))
    torch.testing.assert_close(out[0], x[0])
    expected = torch.nn.functional.conv2d(torch.nn.functional.pad(x[1:], (10,) * 4, mode="reflect"),
                                          blur.float().expand(3, 1, 21, 21), groups=3)
    torch.testing.assert_close(out[1:], expected)


def test_noise_levels_and_gray_noise():
    generator = torch.Generator().manual_seed(1)
    x = torch.full((2, 3, 64, 64), 0.5)
    noisy = D.gaussian_noise(x, torch.tensor([10 / 255, 10 / 255]), torch.tensor([False, True]), generator)
    assert abs(float((noisy[0] - x[0]).std()) - 10 / 255) < 1e-3
    assert float((noisy[1] - noisy[1, :1]).abs().max()) == 0  # gray: one noise for every channel
    x = torch.rand(2, 3, 64, 64)
    shot = D.poisson_noise(x, torch.tensor([1.0, 1.0]), torch.tensor([False, True]), generator) - x
    assert float((shot[1] - shot[1, :1]).abs().max()) < 1e-6  # gray: one noise for every channel
    assert float((shot[0] - shot[0, :1]).abs().max()) > 0.01
    assert 0.005 < float(shot.std()) < 0.2  # shot noise of 8-bit images at scale 1
    compressed = D.jpeg(torch.rand(2, 3, 16, 24), torch.tensor([10.0, 95.0]))
    assert compressed.shape == (2, 3, 16, 24) and float(compressed.min()) >= -0.01


def test_the_chain_is_repeatable_in_range_and_degrades():
    hr = torch.nn.functional.interpolate(torch.rand(4, 3, 12, 12), size=(64, 64), mode="bicubic").clamp(0, 1)
    runs = []
    for _ in range(2):
        degrade = D.RealESRGANDegradation(generator=torch.Generator().manual_seed(7))
        runs.append(degrade(hr, 4))
    assert runs[0].shape == (4, 3, 16, 16)
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)
    lr = runs[0]
    assert float(lr.min()) >= 0 and float(lr.max()) <= 1
    assert torch.equal(lr, (lr * 255).round() / 255)  # 8-bit levels, as a real file
    clean = torch.nn.functional.interpolate(hr, size=(16, 16), mode="area")
    assert float((lr - clean).abs().mean()) > 0.01  # it really degrades
    other = D.RealESRGANDegradation(generator=torch.Generator().manual_seed(8))(hr, 4)
    assert not torch.equal(other, lr)


def test_srgan_trains_on_realesrgan_degradations(tmp_path):
    """The pipeline's augment() makes the LR on the device from the HR patch, once per step."""
    from PIL import Image
    from test_srgan import _photo

    from i2i.pipelines.srgan import SRGAN
    from i2i.training import make_settings

    (tmp_path / "hr").mkdir()
    for i in range(2):
        Image.fromarray(_photo(70, 70, i)).save(tmp_path / "hr" / f"{i}.png")
    config, options = make_settings("srgan", {"data": str(tmp_path / "hr"), "scale": 2, "image_size": 32, "width": 4,
                                              "num_blocks": 1, "batch_size": 2, "degradation": "realesrgan",
                                              "augment": "none"})
    SRGAN.resolve(options, config)
    dataset = SRGAN.build_dataset(options, config)
    pipe = SRGAN(options, config, torch.device("cpu"))
    batch = {k: torch.stack([dataset[0][k], dataset[1][k]]) for k in ("A", "B")}
    torch.manual_seed(3)
    augmented = pipe.augment(batch)
    # the target is the HR unsharp-masked as Real-ESRGAN's gt_usm; the discriminator's real the HR
    assert torch.equal(augmented["B"], D.unsharp_mask(batch["B"], 0.5)) and torch.equal(augmented["real"], batch["B"])
    assert augmented["A"].shape == batch["A"].shape
    assert not torch.equal(augmented["A"], batch["A"])  # not the bicubic LR
    assert math.isfinite(float(pipe.step(augmented)["G"]))


def test_clean_share_keeps_the_bicubic_lr_and_first_order_skips_the_second_round():
    hr = torch.nn.functional.interpolate(torch.rand(64, 3, 8, 8), size=(32, 32), mode="bicubic").clamp(0, 1)
    clean = torch.nn.functional.interpolate(hr, size=(8, 8), mode="area")
    settings = D.settings_from_mapping({"clean_prob": 0.25})
    lr = D.RealESRGANDegradation(settings, torch.Generator().manual_seed(1))(hr, 4, clean=clean)
    kept = [i for i in range(64) if torch.equal(lr[i], clean[i])]
    assert 6 <= len(kept) <= 26  # about a quarter, exactly the clean LR
    with pytest.raises(ValueError, match="clean LR"):
        D.RealESRGANDegradation(settings)(hr, 4)

    # second_order_prob 0: one round only (the published default draws the same numbers as before)
    first = D.RealESRGANDegradation(D.settings_from_mapping({"second_order_prob": 0.0}),
                                    torch.Generator().manual_seed(2))
    calls = []
    original = first._round
    first._round = lambda x, r, size: calls.append(r) or original(x, r, size)
    first(hr, 4)
    assert calls == [first.settings.round1]
    published = D.RealESRGANDegradation(generator=torch.Generator().manual_seed(2))(hr, 4)
    explicit = D.RealESRGANDegradation(D.settings_from_mapping({"second_order_prob": 1.0}),
                                       torch.Generator().manual_seed(2))(hr, 4)
    assert torch.equal(published, explicit)


def test_antialiased_downscales_are_what_photo_software_makes():
    """antialias_prob 1 gives the LR an imresize-like x4 downscale; the published 0 aliases."""
    from i2i.data.bicubic import imresize

    hr = torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(0))  # all high frequencies
    matlab = torch.stack([torch.from_numpy(imresize((x.permute(1, 2, 0).numpy() * 255).round().astype("uint8"),
                                                    scale=0.25)).permute(2, 0, 1) / 255.0 for x in hr])
    once = {"blur1": {"sigma": [0.1, 0.1], "sinc_prob": 0}, "second_blur_prob": 0, "final_sinc_prob": 0,
            "round1": {"resize_prob": [0, 0, 1], "noise_range": [0, 0], "gaussian_noise_prob": 1, "jpeg_range": [100, 100]},
            "round2": {"resize_prob": [0, 0, 1], "noise_range": [0, 0], "gaussian_noise_prob": 1, "jpeg_range": [100, 100]}}
    errors = {}
    for antialias in (0, 1):
        mapping = {**once, "round2": {**once["round2"], "antialias_prob": antialias}}
        lr = D.RealESRGANDegradation(D.settings_from_mapping(mapping), torch.Generator().manual_seed(0))(hr, 4)
        errors[antialias] = float((lr - matlab).abs().mean())  # seed 0 draws bilinear or bicubic, not area
    assert errors[1] < errors[0] / 1.5, errors  # what is left is mostly JPEG's chroma subsampling


@pytest.mark.parametrize("mapping, message", [
    ({"noise": 1}, "unknown setting 'noise'"),
    ({"round1": {"jpeg_range": [95, 30]}}, r"round1.jpeg_range must be \[low, high\]"),
    ({"round2": {"noise_range": [1, 2, 3]}}, "round2.noise_range must be a list of 2"),
    ({"clean_prob": 1.5}, "clean_prob is a probability"),
    ({"blur1": {"kernel_prob": [1, 0]}}, "blur1.kernel_prob must be a list of 6"),
    ({"blur1": 3}, "blur1 must be a mapping"),
])
def test_degradation_settings_are_checked_by_name(mapping, message):
    from i2i.errors import UsageError

    with pytest.raises(UsageError, match=message):
        D.settings_from_mapping(mapping)


@pytest.mark.parametrize("text, message", [  # YAML, as --degradation-settings gives it
    ("round1: {jpeg_range: [0, 200]}", r"round1.jpeg_range must lie within 1..100 \(JPEG qualities\), got \[0, 200\]"),
    ("round2: {jpeg_range: [0.5, 90]}", r"round2.jpeg_range must lie within 1..100"),
    ("round1: {resize_prob: [0, 0, 0]}", r"round1.resize_prob must be probabilities that sum to 1 \(up, down, keep\)"),
    ("round2: {resize_prob: [0.2, 0.2, 0.2]}", r"round2.resize_prob must be probabilities that sum to 1 .* \(sum 0.6\)"),
    ("blur1: {kernel_prob: [0, 0, 0, 0, 0, 0]}", r"blur1.kernel_prob must be probabilities that sum to 1 \(iso, aniso"),
    ("blur1: {sigma: [0, 0]}", r"blur1.sigma must lie within 0.01..100 \(kernel widths in pixels\), got \[0, 0\]"),
    ("blur2: {sigma: [0, 1]}", r"blur2.sigma must lie within 0.01..100"),
    ("blur2: {sigma: [1, 1.0e+300]}", r"blur2.sigma must lie within 0.01..100"),
    ("blur1: {beta_gaussian: [0, 4]}", r"blur1.beta_gaussian must be > 0"),
    ("blur2: {beta_plateau: [0, 2]}", r"blur2.beta_plateau must be > 0"),
    ("round1: {resize_range: [0, 0]}", r"round1.resize_range must be > 0 and at most 4 \(resize factors\)"),
    ("round2: {resize_range: [0.5, 1000]}", r"round2.resize_range must be > 0 and at most 4"),
    ("round1: {noise_range: [1e6, 1e7]}", r"round1.noise_range must lie within 0..255 .*, got \[1e\+06, 1e\+07\]"),
    ("round1: {noise_range: [1, .inf]}", r"round1.noise_range must be a list of 2 non-negative numbers"),
    ("round1: {jpeg_range: [low, high]}", r"round1.jpeg_range must be a list of 2 non-negative numbers"),
    ("clean_prob: .nan", r"clean_prob must be a non-negative number"),
    ("round1: {foo: 1}", r"unknown setting 'round1.foo'"),
])
def test_degradation_values_the_chain_cannot_use_are_one_line_errors(text, message):
    """Each of these passed the name and shape checks, then crashed training at its first step
    (kornia's JPEG range, multinomial of zeros, a singular covariance, an empty image)."""
    import yaml

    from i2i.errors import UsageError

    with pytest.raises(UsageError, match=f"^degradation settings: {message}") as error:
        D.settings_from_mapping(yaml.safe_load(text))
    assert "\n" not in str(error.value)


def test_degradation_settings_at_their_limits_run():
    """The ends of the checked ranges are values the chain runs with (and numeric strings, as
    PyYAML reads 1e1, count as numbers)."""
    import yaml

    edges = yaml.safe_load("""
        clean_prob: 1e-1
        blur1: {sigma: [0.01, 0.01], beta_gaussian: [1.0e-3, 1.0e-3], kernel_prob: [0, 0, 1, 0, 0, 0], sinc_prob: 0}
        blur2: {sigma: [100, 100], beta_plateau: [50, 50], kernel_prob: [0, 0, 0, 0, 0, 1], sinc_prob: 0}
        second_blur_prob: 1
        round1: {resize_prob: [1, 0, 0], resize_range: [4, 4], noise_range: [2.55e2, 2.55e2], gaussian_noise_prob: 1,
                 jpeg_range: [1, 1]}
        round2: {resize_prob: [0, 1, 0], resize_range: [1.0e-3, 1.0e-3], poisson_scale_range: [0, 0],
                 gaussian_noise_prob: 0, jpeg_range: [100, 100]}
    """)
    settings = D.settings_from_mapping(edges)
    assert settings.clean_prob == 0.1 and settings.round1.noise_range == (255.0, 255.0)
    hr = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    lr = D.RealESRGANDegradation(settings, torch.Generator().manual_seed(0))(hr, 4, clean=hr[..., ::4, ::4])
    assert lr.shape == (2, 3, 8, 8) and bool(lr.isfinite().all())


def test_published_defaults_and_shipped_degradation_files_load():
    import json

    import yaml

    assert D.settings_from_mapping({}) == D.RealESRGANSettings()
    every = json.loads(json.dumps(dataclasses.asdict(D.RealESRGANSettings())))  # each default, spelled out
    assert D.settings_from_mapping(every) == D.RealESRGANSettings()
    pretrained = Path(__file__).parents[1] / "pretrained"
    shipped = sorted(pretrained.glob("*.degradation.yaml"))
    assert len(shipped) >= 3  # srresnet-x4-realworld's stages
    for path in shipped:
        D.settings_from_mapping(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
    for path in sorted(pretrained.glob("*.config.yaml")):  # and what their runs recorded
        D.settings_from_mapping(yaml.safe_load(path.read_text(encoding="utf-8")).get("degradation_settings") or {})


def test_degradation_settings_from_a_file_or_inline_are_recorded_and_used(tmp_path):
    from i2i.errors import UsageError
    from i2i.pipelines.srgan import SRGAN
    from i2i.training import make_settings

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("clean_prob: 0.5\nround2:\n  jpeg_range: [60, 90]\n")
    for given in (str(recipe), "{clean_prob: 0.5, round2: {jpeg_range: [60, 90]}}"):
        config, options = make_settings("srgan", {"degradation": "realesrgan", "degradation_settings": given,
                                                  "width": 4, "num_blocks": 1, "scale": 2, "image_size": 32})
        SRGAN.resolve(options, config, quiet=True)
        assert options.degradation_settings == {"clean_prob": 0.5, "round2": {"jpeg_range": [60, 90]},
                                                "usm_weight": 0.5}  # spelt out: config.yaml says it sharpened
        pipe = SRGAN(options, config, torch.device("cpu"))
        assert pipe.degrade.settings.clean_prob == 0.5 and pipe.degrade.settings.round2.jpeg_range == (60.0, 90.0)
        assert pipe.degrade.settings.round1 == D.RoundSettings()
    config, options = make_settings("srgan", {"degradation_settings": "{clean_prob: 0.5}"})
    with pytest.raises(UsageError, match="with --degradation bicubic; they are for realesrgan"):
        SRGAN.resolve(options, config, quiet=True)
    config, options = make_settings("srgan", {"degradation": "realesrgan",  # a file name that is not there
                                              "degradation_settings": str(tmp_path / "missing.yaml")})
    with pytest.raises(UsageError, match="missing.yaml': no such file, nor an inline YAML mapping"):
        SRGAN.resolve(options, config, quiet=True)


def test_gray_batches_are_degraded_too():
    """`--channels 1` models train on real-world degradations: kornia's JPEG takes 3 channels,
    so a gray batch is coded as gray RGB and comes back as one plane, as a gray JPEG file does."""
    hr = torch.nn.functional.interpolate(torch.rand(4, 1, 8, 8), size=(32, 32), mode="bicubic").clamp(0, 1)
    lr = D.RealESRGANDegradation(generator=torch.Generator().manual_seed(2))(hr, 4)
    assert lr.shape == (4, 1, 8, 8) and float(lr.min()) >= 0 and float(lr.max()) <= 1
    quality = torch.tensor([30.0, 50.0, 70.0, 90.0])
    coded = D.jpeg(hr, quality)
    rgb = D.jpeg(hr.expand(-1, 3, -1, -1), quality)
    assert coded.shape == hr.shape
    assert torch.allclose(coded, rgb.mean(1, keepdim=True), atol=2 / 255)  # gray stays gray
    assert float((coded - hr).abs().mean()) > 1e-3  # and is really compressed


def test_a_gray_srgan_trains_on_realesrgan_degradations(tmp_path):
    from PIL import Image
    from test_srgan import _photo

    (tmp_path / "hr").mkdir()
    for i in range(2):
        Image.fromarray(_photo(40, 40, i)[..., 0]).save(tmp_path / "hr" / f"{i}.png")
    from i2i.cli import main
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["train", "srgan", "--data", str(tmp_path / "hr"), "--out", str(tmp_path / "run"),
                                       "--channels", "1", "--degradation", "realesrgan", "--scale", "2",
                                       "--image-size", "32", "--width", "4", "--num-blocks", "1", "--batch-size", "2",
                                       "--max-steps", "1", "--num-workers", "0", "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_unsharp_mask_is_basicsr_usmsharp():
    """Against a numpy/OpenCV copy of BasicSR's USMSharp(radius=50) with weight 0.5, threshold 10
    (its filter2D pads by reflection: OpenCV's BORDER_REFLECT_101)."""
    import cv2

    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.random((40, 56, 3)).astype(np.float32), (0, 0), 2.0)  # some edges, some flat
    kernel = cv2.getGaussianKernel(51, 0)
    kernel = kernel @ kernel.T

    def filter2d(a):
        return cv2.filter2D(a, -1, kernel, borderType=cv2.BORDER_REFLECT_101)

    residual = image - filter2d(image)
    soft = filter2d((np.abs(residual) * 255 > 10).astype(np.float32))
    soft = soft[..., None] if soft.ndim == 2 else soft
    expected = soft * np.clip(image + 0.5 * residual, 0, 1) + (1 - soft) * image
    got = D.unsharp_mask(torch.from_numpy(image).permute(2, 0, 1)[None], 0.5)[0].permute(1, 2, 0).numpy()
    assert np.abs(got - expected).max() < 1e-5
    assert np.abs(got - image).max() > 0.01  # it sharpens


def test_usm_weight_zero_keeps_the_hr():
    hr = torch.rand(2, 3, 32, 32)
    assert torch.equal(D.RealESRGANDegradation(D.settings_from_mapping({"usm_weight": 0}))
                       .sharpen(hr), hr)
    assert not torch.equal(D.RealESRGANDegradation().sharpen(hr), hr)  # the published recipe sharpens


def test_a_realesrgan_run_recorded_without_usm_weight_resumes_without_sharpening(tmp_path):
    """Runs started before usm_weight existed recorded no such key and trained on the plain HR:
    resumed, they go on so (config.yaml read as the older i2i meant it); new runs spell it out."""
    import yaml
    from click.testing import CliRunner
    from PIL import Image
    from test_srgan import _photo

    from i2i.cli import main
    from i2i.training import make_settings

    (tmp_path / "hr").mkdir()
    for i in range(2):
        Image.fromarray(_photo(40, 40, i)).save(tmp_path / "hr" / f"{i}.png")
    run = tmp_path / "run"
    args = ["train", "srgan", "--data", str(tmp_path / "hr"), "--out", str(run), "--degradation", "realesrgan",
            "--scale", "2", "--image-size", "32", "--width", "4", "--num-blocks", "1", "--batch-size", "2",
            "--num-workers", "0", "--precision", "fp32", "--checkpoint-every", "1"]
    result = CliRunner().invoke(main, [*args, "--max-steps", "1"])
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["degradation_settings"] == {"usm_weight": 0.5}  # a new run says it sharpens
    config["degradation_settings"] = None  # as an older i2i wrote it
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    _, options = make_settings("srgan", resume_from=run)
    assert options.degradation_settings == {"usm_weight": 0}
    result = CliRunner().invoke(main, [*args, "--max-steps", "2", "--resume"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((run / "config.yaml").read_text())["degradation_settings"] == {"usm_weight": 0}
