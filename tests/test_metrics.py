"""SR metrics and `i2i eval bicubic`: small synthetic checks, then the published
bicubic rows of Set5 and Set14 (../shared/data/README.md)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from i2i.cli import main
from i2i.evaluate import evaluate_bicubic, score_pair
from i2i.metrics import psnr, psnr_y, rgb_to_y, ssim, ssim_y

from conftest import noise, save


def test_y_of_rgb_and_gray() -> None:
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], dtype=np.uint8)
    assert np.allclose(rgb_to_y(rgb), [[16.0, 235.0, 16 + 65.481]])
    assert np.allclose(rgb_to_y(rgb.astype(np.uint16) * 257), rgb_to_y(rgb))
    gray = np.array([[0, 7, 255]], dtype=np.uint8)
    assert np.array_equal(rgb_to_y(gray), gray.astype(float))  # its own Y, no 16-235 map
    assert np.array_equal(rgb_to_y(gray[:, :, None]), gray.astype(float))
    rgba = np.concatenate([rgb, np.zeros((1, 3, 1), np.uint8)], axis=2)
    assert np.array_equal(rgb_to_y(rgba), rgb_to_y(rgb))  # alpha ignored


def test_psnr() -> None:
    a = np.zeros((4, 4))
    assert psnr(a, a) == math.inf  # identical: inf, not capped
    b = a.copy()
    b[0, 0] = 16  # MSE = 16
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 16))
    with pytest.raises(ValueError):
        psnr(a, np.zeros((4, 5)))


def _ssim_2d_reference(a: np.ndarray, b: np.ndarray) -> float:
    """ssim_index written out plainly: 2-D window, windows taken one by one."""
    x = np.arange(11) - 5
    window = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * 1.5**2))
    window /= window.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            mu_a, mu_b = (window * pa).sum(), (window * pb).sum()
            var_a = (window * pa * pa).sum() - mu_a**2
            var_b = (window * pb * pb).sum() - mu_b**2
            cov = (window * pa * pb).sum() - mu_a * mu_b
            values.append(((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))
    return float(np.mean(values))


def test_ssim() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (20, 23)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert ssim(a, b) == pytest.approx(_ssim_2d_reference(a, b), abs=1e-10)
    assert 0 < ssim(a, b) < 0.99
    with pytest.raises(ValueError):
        ssim(a[:10], b[:10])  # smaller than the window


def test_y_metrics_crop_the_border() -> None:
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    sr = hr.copy()
    sr[:2] = 0  # damage only the border that a x2 evaluation crops away
    assert psnr_y(sr, hr, 2) == math.inf
    assert ssim_y(sr, hr, 2) == pytest.approx(1.0)
    assert psnr_y(sr, hr, 1) < 40
    noisy = np.clip(hr.astype(int) + rng.integers(-3, 4, hr.shape), 0, 255).astype(np.uint8)
    assert score_pair(noisy, hr, 3) == (psnr_y(noisy, hr, 3), ssim_y(noisy, hr, 3))


# Published bicubic rows (PSNR-Y dB, SSIM-Y): SRCNN (Set5) and VDSR (both sets).
PUBLISHED = {
    ("Set5", 2): (33.66, 0.9299),
    ("Set5", 3): (30.39, 0.8682),
    ("Set5", 4): (28.42, 0.8104),
    ("Set14", 2): (30.24, 0.8688),
    ("Set14", 3): (27.55, 0.7742),
    ("Set14", 4): (26.00, 0.7027),
}


def _sr_dir(shared_dir: Path, name: str) -> Path:
    folder = shared_dir / "data" / "sr" / name
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    return folder


@pytest.mark.parametrize(
    "name,scale", [key for key in PUBLISHED if key != ("Set5", 4)]
)
def test_bicubic_rows_reproduced(shared_dir: Path, name: str, scale: int) -> None:
    result = evaluate_bicubic(_sr_dir(shared_dir, name), scale)
    published_psnr, published_ssim = PUBLISHED[(name, scale)]
    assert result["n_images"] == (5 if name == "Set5" else 14)
    assert abs(result["psnr_y"] - published_psnr) <= 0.01
    assert abs(result["ssim_y"] - published_ssim) <= 0.001


def test_eval_bicubic_cli_set5_x4(shared_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "Set5"
    data.mkdir()
    for image in sorted(_sr_dir(shared_dir, "Set5").iterdir()):
        (data / image.name).symlink_to(image)
    (data / "MANIFEST.json").write_text("{}")  # not an image: ignored
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(main, ["eval", "bicubic", str(data), "--scale", "4", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "butterfly" in result.output and "mean (5)" in result.output
    scores = json.loads(out.read_text())
    assert scores["n_images"] == 5
    assert set(scores["per_image"]) == {"baby", "bird", "butterfly", "head", "woman"}
    assert abs(scores["psnr_y"] - 28.42) <= 0.01
    assert abs(scores["ssim_y"] - 0.8104) <= 0.001
    assert scores["psnr_y"] == pytest.approx(np.mean([v["psnr_y"] for v in scores["per_image"].values()]))


def test_eval_bicubic_cli_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["eval", "bicubic", str(tmp_path / "nope"), "--scale", "2"])
    assert missing.exit_code == 1
    assert "not a folder" in missing.output and "Traceback" not in missing.output
    (tmp_path / "README").write_text("no images here")
    empty = runner.invoke(main, ["eval", "bicubic", str(tmp_path), "--scale", "2"])
    assert empty.exit_code == 1
    assert "no images" in empty.output


def test_eval_psnr_mean_leaves_out_exact_images(tmp_path: Path) -> None:
    """A flat HR image is reconstructed exactly (PSNR-Y inf): its row says inf, but the mean
    was inf too, hiding every other image; it is now the mean of the finite ones, and one
    line says how many were left out."""
    save(tmp_path / "hr/flat.png", np.full((24, 24, 3), (200, 40, 90), np.uint8))
    save(tmp_path / "hr/noise.png", noise(24, 24))
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(main, ["eval", "bicubic", str(tmp_path / "hr"), "--scale", "4", "--json", str(out)])
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()
    assert rows[1].split() == ["flat", "inf", "1.0000"]
    scores = json.loads(out.read_text())
    noisy = scores["per_image"]["noise"]["psnr_y"]
    assert scores["per_image"]["flat"]["psnr_y"] is None  # strict JSON: inf is null
    assert scores["psnr_y"] == pytest.approx(noisy) and scores["n_exact"] == 1 and scores["n_images"] == 2
    assert scores["ssim_y"] == pytest.approx((1.0 + scores["per_image"]["noise"]["ssim_y"]) / 2)
    assert rows[-3].split() == ["mean", "(2)", f"{noisy:.3f}", f"{scores['ssim_y']:.4f}"]
    assert rows[-2] == "PSNR-Y mean over 1 of 2 images: 1 reconstructed exactly (inf) left out"
    assert rows[-1] == f"wrote {out}"


def test_eval_all_exact_images_print_no_psnr_mean(tmp_path: Path) -> None:
    for name, colour in (("red", (255, 0, 0)), ("gray", (128, 128, 128))):
        save(tmp_path / f"{name}.png", np.full((20, 20, 3), colour, np.uint8))
    result = CliRunner().invoke(main, ["eval", "bicubic", str(tmp_path), "--scale", "2"])
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()
    assert rows[-2].split() == ["mean", "(2)", "-", "1.0000"]
    assert rows[-1] == "PSNR-Y: all 2 images are reconstructed exactly (inf), so there is no PSNR-Y mean"
    assert evaluate_bicubic(tmp_path, 2)["n_exact"] == 2
