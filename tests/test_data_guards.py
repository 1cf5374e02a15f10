"""Images too small (or of the wrong shape) for what is asked of them: each is one line naming
the file, skipped among good files, never a traceback from deep inside a layer or numpy."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from i2i.cli import main
from i2i.data.augment import cpu_transform
from i2i.data.bicubic import imresize
from i2i.data.datasets import DerivedDataset, PairedDataset, SRDataset
from i2i.errors import I2IError, UsageError
from i2i.evaluate import evaluate_model
from i2i.metrics import crop_border

from conftest import noise, save
from test_srgan import _tiny_model


def run(*args: str):
    """The CLI with every Python warning an error: a numpy warning on the way fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return CliRunner().invoke(main, list(args))


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error: ")]


def test_ab_image_too_narrow_to_split_is_skipped_and_inspected(tmp_path, capsys):
    narrow = save(tmp_path / "ab/train/a_narrow.png", noise(1, 1))
    save(tmp_path / "ab/train/b_good.png", noise(8, 16))
    dataset = PairedDataset(tmp_path / "ab", transform=cpu_transform("resize_and_crop", 8, 8))
    item = dataset[0]
    assert item["A_path"].endswith("b_good.png") and item["A"].shape == (3, 8, 8)
    assert f"warning: skipping {narrow}: 1x1 is too narrow to split into A|B halves" in capsys.readouterr().err

    inspected = run("data", "inspect", str(tmp_path / "ab"))
    assert inspected.exit_code == 1 and "1 bad file:" in inspected.output
    assert f"{narrow}: 1x1 is too narrow to split" in inspected.output

    save(tmp_path / "only/train/one.png", noise(5, 1))  # the only file: nothing readable
    with pytest.raises(I2IError, match="no readable image"):
        PairedDataset(tmp_path / "only")[0]


def test_long_run_of_unreadable_files_is_passed_over_once(tmp_path, capsys):
    """More bad files in a row than any fixed number of tries: the readable one is still
    found, and a bad file is read (and warned about) once per process, not once per item."""
    for i in range(120):
        (tmp_path / "ab/train" / f"a{i:03d}.png").parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "ab/train" / f"a{i:03d}.png").write_bytes(b"not a png")
    save(tmp_path / "ab/train/z_good.png", noise(8, 16))
    dataset = PairedDataset(tmp_path / "ab", transform=cpu_transform("resize_and_crop", 8, 8))
    assert dataset[0]["A_path"].endswith("z_good.png")
    assert dataset[5]["A_path"].endswith("z_good.png")
    assert dataset._unreadable == set(range(120))
    err = capsys.readouterr().err  # one line a file up to 50, then one line for the rest
    assert err.count("warning: skipping") == 50 and err.count("more than 50 files of") == 1


def test_image_the_networks_cannot_take_is_skipped(tmp_path, capsys):
    """--preprocess none passes sizes through: once told the networks' needs, the dataset
    skips what does not fit instead of failing inside the U-Net."""
    odd = save(tmp_path / "a_odd.png", noise(40, 48))
    tiny = save(tmp_path / "b_tiny.png", noise(1, 1))
    save(tmp_path / "c_fits.png", noise(64, 32))
    dataset = DerivedDataset(tmp_path, "colorize", cpu_transform("none", 32, 32))
    assert dataset[0]["A"].shape == (1, 40, 48)  # no requirement set: sizes pass through
    dataset.size_multiple = 32
    item = dataset[0]
    assert item["A_path"].endswith("c_fits.png") and item["A"].shape == (1, 64, 32)
    err = capsys.readouterr().err
    assert f"{odd}: 48x40 after preprocessing is not a multiple of 32" in err
    assert f"{tiny}: 4x4 after preprocessing is smaller than the 32x32 pixels" in err


def test_image_too_small_to_sketch_is_skipped(tmp_path, capsys):
    small = save(tmp_path / "a_small.png", noise(3, 3))  # 4x4 after --preprocess none
    save(tmp_path / "b_fits.png", noise(8, 8))
    item = DerivedDataset(tmp_path, "sketch", cpu_transform("none", 32, 32))[0]
    assert item["A_path"].endswith("b_fits.png") and item["B"].shape == (1, 8, 8)
    assert f"{small}: 4x4 is too small for a sketch (at least 5x5 pixels)" in capsys.readouterr().err


def test_derive_sketch_reports_tiny_images_and_writes_the_rest(tmp_path):
    src = tmp_path / "src"
    for name, size in (("one", 1), ("three", 3), ("four", 4), ("five", 5), ("ok", 16)):
        save(src / f"{name}.png", noise(size, size))
    result = run("data", "derive", "sketch", str(src), str(tmp_path / "out"))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert error_lines(result.output) == [
        f"error: {src / 'four.png'}: 4x4 is too small for a sketch (at least 5x5 pixels)",
        f"error: {src / 'one.png'}: 1x1 is too small for a sketch (at least 5x5 pixels)",
        f"error: {src / 'three.png'}: 3x3 is too small for a sketch (at least 5x5 pixels)",
    ]
    assert "wrote 2 pairs" in result.output
    assert sorted(p.name for p in (tmp_path / "out/B").iterdir()) == ["five.png", "ok.png"]


def test_eval_bicubic_image_too_small_for_scale_and_border(tmp_path):
    save(tmp_path / "hs/a.png", noise(8, 8))
    result = run("eval", "bicubic", str(tmp_path / "hs"), "--scale", "4")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: {tmp_path / 'hs/a.png'}: 8x8 is too small for x4 with a 4-pixel border (at least 20x20 pixels)"]

    save(tmp_path / "hs/a.png", noise(19, 40))  # mod-cropped to 16 rows: 8 left after the border
    assert "40x19 is too small for x4" in run("eval", "bicubic", str(tmp_path / "hs"), "--scale", "4").output
    save(tmp_path / "hs/a.png", noise(20, 20))
    assert run("eval", "bicubic", str(tmp_path / "hs"), "--scale", "4").exit_code == 0
    huge = run("eval", "bicubic", str(tmp_path / "hs"), "--scale", "1000")
    assert huge.exit_code == 1 and "20x20 is too small for x1000 with a 1000-pixel border" in huge.output
    with pytest.raises(ValueError, match="nothing left after cropping a 4-pixel border"):
        crop_border(np.zeros((8, 8)), 4)


def test_eval_model_with_gray_lr_for_rgb_hr(tmp_path):
    """Gray LR files are given to the model as RGB (inference's replication), so the
    figures equal those of the same LR stored as RGB."""
    model = _tiny_model(tmp_path / "model.safetensors")
    hr_dir, gray_dir, rgb_dir = tmp_path / "hr", tmp_path / "gray", tmp_path / "rgb"
    for name in ("first", "second"):
        save(hr_dir / f"{name}.png", noise(30, 32))
        lr = imresize(noise(30, 32, 1), 0.5)
        save(gray_dir / f"{name}x2.png", lr)
        save(rgb_dir / f"{name}x2.png", np.repeat(lr, 3, axis=2))
    gray = evaluate_model(model, hr_dir, lr_dir=gray_dir, device="cpu")
    rgb = evaluate_model(model, hr_dir, lr_dir=rgb_dir, device="cpu")
    assert gray["n_images"] == 2 and gray["per_image"] == rgb["per_image"]


def test_two_lr_files_for_one_hr_image_are_refused(tmp_path):
    """`a.png`, `ax2.png` and `a_x2.png` all name the LR of HR `a.png`: eval (and training's
    LR folders, the same rule) refuse to pick one silently; scale 1 is no SR evaluation."""
    model = _tiny_model(tmp_path / "model.safetensors")
    save(tmp_path / "hr/a.png", noise(20, 20))
    for name in ("ax2.png", "a_x2.png"):
        save(tmp_path / "lr" / name, noise(10, 10))
    result = run("eval", str(model), str(tmp_path / "hr"), "--lr", str(tmp_path / "lr"), "--device", "cpu")
    assert result.exit_code == 2 and len(error_lines(result.output)) == 1
    assert "ax2.png" in result.output and "a_x2.png" in result.output and "keep one" in result.output
    one = run("eval", "bicubic", str(tmp_path / "hr"), "--scale", "1")
    assert one.exit_code == 2 and "inf" not in one.output


def test_eval_lr_folders_pair_as_training_does_before_any_scoring(tmp_path):
    """An HR image named like an LR one ('box4') found no LR, even its own derive output; an LR
    file without its HR was ignored, and a missing one was found only when the loop got there."""
    model = _tiny_model(tmp_path / "model.safetensors")
    for name in ("box4", "cat"):
        save(tmp_path / "hr" / f"{name}.png", noise(20, 20))
        save(tmp_path / "lr" / f"{name}.png", imresize(noise(20, 20), 0.5))
    assert evaluate_model(model, tmp_path / "hr", lr_dir=tmp_path / "lr", device="cpu")["n_images"] == 2
    save(tmp_path / "lr" / "zebra_x2.png", noise(10, 10))
    (tmp_path / "lr" / "cat.png").unlink()
    result = run("eval", str(model), str(tmp_path / "hr"), "--lr", str(tmp_path / "lr"), "--device", "cpu")
    assert result.exit_code == 2 and len(error_lines(result.output)) == 1
    assert "2 unmatched: LR only: zebra; HR only: cat" in result.output, result.output


def test_srgan_skip_messages_show_real_size_and_why_all_pairs_failed(tmp_path, capsys):
    hr_dir, lr_dir = tmp_path / "HR", tmp_path / "LR"
    tiny = save(hr_dir / "a.png", noise(1, 1))
    save(hr_dir / "b.png", noise(40, 40))
    assert len(SRDataset(hr_dir, scale=4, patch_size=32)) == 1
    assert f"{tiny}: 1x1 is smaller than the 32x32 HR patch" in capsys.readouterr().err

    save(lr_dir / "a.png", noise(1, 1))
    save(lr_dir / "b.png", noise(7, 7))  # not 40/4
    with pytest.raises(UsageError) as raised:
        SRDataset(hr_dir, scale=4, patch_size=32, lr_root=lr_dir)
    message = str(raised.value)
    assert message.startswith(f"{hr_dir}/ and {lr_dir}/: all 2 pairs were skipped (")
    assert "1 with an LR image whose size is not HR/4" in message
    assert "1 with an HR image smaller than the 32x32 HR patch" in message
    assert "\n" not in message
