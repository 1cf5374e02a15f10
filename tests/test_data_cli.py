"""`i2i data inspect` and `i2i data derive` on real (tiny) files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from i2i.cli import main
from i2i.data.bicubic import imresize, modcrop

from conftest import noise, save



def load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def photos(folder: Path) -> dict[str, np.ndarray]:
    images = {"one": noise(18, 22), "two": noise(13, 16), "three": noise(16, 16, 1)}
    for stem, pixels in images.items():
        save(folder / f"{stem}.png", pixels)
    (folder / "MANIFEST.json").write_text("{}")
    (folder / "README").write_text("sample photos")
    return images


def test_inspect_good_unpaired_folder(tmp_path):
    for side, n in (("trainA", 2), ("trainB", 3)):
        for i in range(n):
            save(tmp_path / side / f"{i}.png", noise(16, 16))
    save(tmp_path / "trainB/gray.png", noise(16, 12, 1))
    (tmp_path / "MANIFEST.json").write_text("{}")
    (tmp_path / "trainA/README").write_text("hi")
    result = run("data", "inspect", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "layout unpaired" in result.output
    assert "trainA/: 2 images" in result.output and "trainB/: 4 images" in result.output
    assert "  trainA/:\n    16x16 RGB 8-bit: 2\n  trainB/:\n    16x16 RGB 8-bit: 3\n    12x16 gray 8-bit: 1\n" \
        in result.output
    assert "ignored 2 non-image files" in result.output and "no bad files" in result.output


def test_inspect_reports_truncated_png_and_unmatched(tmp_path):
    save(tmp_path / "A/x.png", noise(16, 16))
    save(tmp_path / "B/x.png", noise(16, 16))
    save(tmp_path / "A/only_a.png", noise(16, 16))
    bad = save(tmp_path / "B/broken.png", noise(16, 16))
    bad.write_bytes(bad.read_bytes()[:60])
    result = run("data", "inspect", str(tmp_path))
    assert result.exit_code == 1
    assert "layout paired_folders" in result.output
    assert f"{bad}: " in result.output  # one line naming the file and the problem
    assert "unmatched pairs: 2 unmatched: A only: only_a; B only: broken" in result.output


def test_inspect_empty_folder_is_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["data", "inspect", str(tmp_path)])
    assert result.exit_code == 2 and "has no trainA/ or trainB/" in result.output


def test_inspect_missing_folder_is_one_line_and_exit_1(tmp_path):
    """Exit 2 here (a usage error), where translate and eval exit 1 for the same mistake."""
    result = CliRunner().invoke(main, ["data", "inspect", str(tmp_path / "missing")])
    assert result.exit_code == 1 and result.output == f"error: {tmp_path / 'missing'}: no such folder\n"


def test_inspect_sr_layout_with_lr_folder(tmp_path):
    """DATA/HR + DATA/LR (as `i2i train srgan` and `i2i eval --lr` read them) was no layout at all;
    LR files pair with HR ones by pair_lr_files' rule ('babyx4', 'bird_x4'), unmatched ones by name."""
    for stem, lr_name in (("baby", "babyx4"), ("bird", "bird_x4"), ("cat", "cat")):
        save(tmp_path / f"sr/HR/{stem}.png", noise(24, 28))
        save(tmp_path / f"sr/LR/{lr_name}.png", noise(6, 7))
    result = run("data", "inspect", str(tmp_path / "sr"))
    assert result.exit_code == 0, result.output
    assert "layout sr" in result.output and "HR/: 3 images" in result.output and "LR/: 3 images" in result.output
    assert "28x24 RGB 8-bit: 3" in result.output and "7x6 RGB 8-bit: 3" in result.output
    assert "note: 3 of 3 HR images have an LR image in LR/" in result.output
    assert "unmatched" not in result.output

    (tmp_path / "sr/LR/cat.png").rename(tmp_path / "sr/LR/zebra_x4.png")
    result = run("data", "inspect", str(tmp_path / "sr"))
    assert result.exit_code == 1, result.output  # training refuses unmatched folders
    assert f"unmatched pairs: {tmp_path / 'sr/HR'}/ and {tmp_path / 'sr/LR'}/: 2 unmatched: LR only: zebra; " \
           "HR only: cat" in result.output


def test_inspect_sr_layout_with_scale_folders_or_no_lr(tmp_path):
    """LR/X2/ and LR/X4/ (BasicSR, DIV2K) are the LR images of one scale each; HR/ alone is
    data whose LR training and eval make by bicubic."""
    for stem in ("baby", "bird"):
        save(tmp_path / f"HR/{stem}.png", noise(24, 28))
        save(tmp_path / f"LR/X2/{stem}x2.png", noise(12, 14))
        save(tmp_path / f"LR/X4/{stem}x4.png", noise(6, 7))
    result = run("data", "inspect", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "LR/X2/: 2 images" in result.output and "LR/X4/: 2 images" in result.output
    assert "2 of 2 HR images have an LR image in LR/X2/" in result.output
    assert "2 of 2 HR images have an LR image in LR/X4/" in result.output

    import shutil

    shutil.rmtree(tmp_path / "LR")
    result = run("data", "inspect", str(tmp_path))
    assert result.exit_code == 0 and "layout sr" in result.output and "no LR/ folder" in result.output


def test_derive_sr_is_bit_exact_and_exactly_scale_times(tmp_path):
    images = photos(tmp_path / "src")
    result = run("data", "derive", "sr", str(tmp_path / "src"), str(tmp_path / "out"), "--scale", "3")
    assert result.exit_code == 0, result.output
    assert sorted(p.stem for p in (tmp_path / "out/A").iterdir()) == sorted(images)
    for stem, pixels in images.items():
        a, b = load(tmp_path / f"out/A/{stem}.png"), load(tmp_path / f"out/B/{stem}.png")
        assert b.shape[0] == 3 * a.shape[0] and b.shape[1] == 3 * a.shape[1]
        assert np.array_equal(b, modcrop(pixels, 3).squeeze())
        assert np.array_equal(a, imresize(modcrop(pixels, 3), scale=1 / 3).squeeze())
    # `i2i train srgan` reads this output directly: B = HR, A = LR
    from i2i.pipelines.srgan import SRGAN
    from i2i.training import make_settings

    config, options = make_settings("srgan", {"data": str(tmp_path / "out"), "scale": 3, "image_size": 12, "repeat": 1,
                                              "no_flip": True})
    SRGAN.resolve(options, config)
    dataset = SRGAN.build_dataset(options, config)
    assert len(dataset) == 3 and dataset[0]["A"].shape == (3, 4, 4) and dataset[0]["B"].shape == (3, 12, 12)


def test_derive_gray_and_sketch_keep_stems(tmp_path):
    images = photos(tmp_path / "src")
    save(tmp_path / "src/sub/four.jpg", noise(12, 12))
    for task in ("gray", "sketch"):
        out = tmp_path / task
        result = run("data", "derive", task, str(tmp_path / "src"), str(out))
        assert result.exit_code == 0, result.output
        expected = sorted([*images, "four"])
        assert sorted(p.stem for p in (out / "A").iterdir()) == expected
        assert sorted(p.stem for p in (out / "B").iterdir()) == expected
    gray_a, gray_b = load(tmp_path / "gray/A/one.png"), load(tmp_path / "gray/B/one.png")
    assert gray_a.ndim == 2 and np.array_equal(gray_b, images["one"])
    luma = images["one"].astype(float) @ [0.299, 0.587, 0.114]
    assert np.abs(gray_a - luma).max() <= 0.5 + 1e-6
    sketch_a, sketch_b = load(tmp_path / "sketch/A/one.png"), load(tmp_path / "sketch/B/one.png")
    assert np.array_equal(sketch_a, images["one"]) and sketch_b.ndim == 2 and sketch_b.shape == (18, 22)


def test_derive_reports_bad_files_and_continues(tmp_path):
    photos(tmp_path / "src")
    bad = save(tmp_path / "src/zz_bad.png", noise(8, 8))
    bad.write_bytes(b"not a png at all")
    result = CliRunner().invoke(main, ["data", "derive", "gray", str(tmp_path / "src"), str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "zz_bad.png" in result.output and "wrote 3 pairs" in result.output
    assert len(list((tmp_path / "out/B").iterdir())) == 3


def test_derive_goes_on_past_a_pair_it_cannot_write_and_leaves_no_half_pair(tmp_path):
    """One write failing stopped the whole derive; a failed B left its A to be paired with nothing."""
    photos(tmp_path / "src")
    stem = "one"
    (tmp_path / "out" / "B" / f"{stem}.png").mkdir(parents=True)  # a folder where its B should go
    result = CliRunner().invoke(main, ["data", "derive", "gray", str(tmp_path / "src"), str(tmp_path / "out")])
    assert result.exit_code == 1 and f"{stem}.png" in result.output and "wrote 2 pairs" in result.output
    assert sorted(p.name for p in (tmp_path / "out/A").iterdir()) == sorted(
        p.name for p in (tmp_path / "out/B").iterdir() if p.is_file())


def test_derive_never_writes_over_pairs_nor_into_its_photos(tmp_path):
    """Hand-made pairs in DST are kept unless --overwrite; a DST inside SRC (whose pairs the
    next scan would read as photos) is refused; both in one line before anything is written."""
    images = photos(tmp_path / "src")
    mine = tmp_path / "pairs"
    for side in ("A", "B"):
        save(mine / side / "one.png", noise(10, 10))
    before = {p: p.read_bytes() for p in mine.rglob("*.png")}
    result = run("data", "derive", "gray", str(tmp_path / "src"), str(mine))
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "already holds images" in result.output and "--overwrite" in result.output
    assert {p: p.read_bytes() for p in mine.rglob("*.png")} == before
    result = run("data", "derive", "gray", str(tmp_path / "src"), str(mine), "--overwrite")
    assert result.exit_code == 0, result.output
    assert np.array_equal(load(mine / "B/one.png"), images["one"])
    for inside in (tmp_path / "src", tmp_path / "src" / "derived"):
        result = run("data", "derive", "sr", str(tmp_path / "src"), str(inside))
        assert result.exit_code == 2 and "is inside" in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "src" / "A").exists() and not (tmp_path / "src" / "derived").exists()


def test_derive_colorize_is_the_training_task_name_and_gray_its_alias(tmp_path):
    """`i2i train --task colorize` and `i2i data derive colorize` name the same pairs; `gray`,
    the first name, still works. The message joins the folder as a path (no 'pairs//A')."""
    photos(tmp_path / "src")
    for task in ("colorize", "gray"):
        result = run("data", "derive", task, str(tmp_path / "src"), str(tmp_path / task) + "/")
        assert result.exit_code == 0, result.output
        assert result.output == f"wrote 3 pairs to {tmp_path / task / 'A'} and {tmp_path / task / 'B'}\n"
    for side in ("A", "B"):
        for path in (tmp_path / "gray" / side).iterdir():
            assert path.read_bytes() == (tmp_path / "colorize" / side / path.name).read_bytes()


def test_inspect_exits_1_where_training_would_refuse_or_skip(tmp_path):
    """A CycleGAN folder without trainB/ images, unmatched A/ and B/, an LR image of the wrong
    size: inspect said 'no bad files' and exited 0, and training then refused or skipped."""
    save(tmp_path / "unpaired/trainA/a.png", noise(8, 8))
    (tmp_path / "unpaired/trainB").mkdir()
    result = run("data", "inspect", str(tmp_path / "unpaired"))
    assert result.exit_code == 1 and "training would refuse this: trainB/ missing or without images" in result.output

    save(tmp_path / "paired/A/one.png", noise(8, 8))
    save(tmp_path / "paired/B/two.png", noise(8, 8))
    result = run("data", "inspect", str(tmp_path / "paired"))
    assert result.exit_code == 1 and "unmatched pairs:" in result.output

    save(tmp_path / "sr/HR/baby.png", noise(24, 28))
    save(tmp_path / "sr/LR/baby.png", noise(6, 7))
    save(tmp_path / "sr/HR/bird.png", noise(96, 80))
    save(tmp_path / "sr/LR/bird.png", noise(5, 5))
    result = run("data", "inspect", str(tmp_path / "sr"))
    assert result.exit_code == 1, result.output
    assert f"{tmp_path / 'sr/LR/bird.png'}: 5x5 is not its HR bird.png (80x96 after mod-crop) divided by 4" \
        in result.output


def test_inspect_and_derive_name_a_file_with_a_line_break_on_one_line(tmp_path):
    """The reader writes a line break in a name as \\n; inspect and derive put the name in
    front again (raw), splitting the line and naming the file twice."""
    save(tmp_path / "src/good.png", noise(16, 16))
    (tmp_path / "src/bad\nname.png").write_bytes(b"junk")
    shown = f"{tmp_path / 'src/bad'}\\nname.png"
    for args in (["data", "inspect", str(tmp_path / "src")],
                 ["data", "derive", "sketch", str(tmp_path / "src"), str(tmp_path / "out")]):
        result = run(*args)
        lines = [line for line in result.output.splitlines() if "name.png" in line]
        assert result.exit_code == 1 and len(lines) == 1 and lines[0].count("name.png") == 1, result.output
        assert shown in lines[0]


def test_inspect_takes_a_test_only_unpaired_folder(tmp_path):
    """testA/ and testB/ alone are for translate and eval: not a folder training refuses."""
    save(tmp_path / "testA/a.png", noise(8, 8))
    save(tmp_path / "testB/b.png", noise(8, 8))
    result = run("data", "inspect", str(tmp_path))
    assert result.exit_code == 0 and "would refuse" not in result.output, result.output


def test_lr_scale_folders_without_the_asked_scale_say_so(tmp_path):
    """HR/ + LR/X2/ evaluated at x4 read LR/ itself and reported every image unmatched."""
    from i2i.data.datasets import sr_folders
    from i2i.errors import UsageError

    save(tmp_path / "HR/a.png", noise(16, 16))
    save(tmp_path / "LR/X2/ax2.png", noise(8, 8))
    assert sr_folders(tmp_path, 2) == (tmp_path / "HR", tmp_path / "LR/X2")
    with pytest.raises(UsageError, match=r"LR/ holds X2/ but no X4/ for scale 4"):
        sr_folders(tmp_path, 4)


def test_inspect_shows_sizes_and_modes_of_each_side(tmp_path):
    """trainA/ and trainB/ (and A/, B/) were one merged table: which domain was gray, RGBA
    or 16-bit, or of which size, could not be told."""
    save(tmp_path / "unpaired/trainA/a.png", noise(16, 16))
    save(tmp_path / "unpaired/trainB/b.png", (noise(8, 12, 1).astype(np.uint16) * 257)[..., 0])
    save(tmp_path / "unpaired/trainB/c.png", noise(16, 16, 4))
    result = run("data", "inspect", str(tmp_path / "unpaired"))
    assert result.exit_code == 0, result.output
    assert ("sizes and modes:\n  trainA/:\n    16x16 RGB 8-bit: 1\n"
            "  trainB/:\n    12x8 gray 16-bit: 1\n    16x16 RGBA 8-bit: 1\n") in result.output

    save(tmp_path / "paired/A/x.png", noise(8, 8, 1))
    save(tmp_path / "paired/B/x.png", noise(8, 8))
    result = run("data", "inspect", str(tmp_path / "paired"))
    assert "sizes and modes:\n  A/:\n    8x8 gray 8-bit: 1\n  B/:\n    8x8 RGB 8-bit: 1\n" in result.output
