"""CycleGAN's unpaired data at its edges, found by a tester: --direction BtoA with different
in and out channels, a bad trainB file (unreadable, or a size the networks cannot take), and
the SR flag a data error names. Tiny networks, real files in tmp_path, CPU, one thread."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from i2i.cli import main
from i2i.data.augment import cpu_transform
from i2i.data.datasets import UnpairedDataset, sr_folders
from i2i.errors import I2IError, UsageError
from i2i.training.data_order import SeededDataset

from conftest import noise, save
from test_srgan import _tiny_model
from test_train import one_thread, write_images  # noqa: F401  (one_thread: autouse fixture)

TINY = ["--netG", "resnet_6blocks", "--width", "4", "--ndf", "4", "--image-size", "32", "--threads", "1",
        "--num-workers", "0"]


def run_cli(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def unpaired_with_bad_b(root: Path, n_a: int = 4, n_b: int = 3) -> Path:
    """`n_a` good A images, `n_b` good B images and trainB/bad.png, which is not a PNG."""
    write_images(root / "trainA", n_a, seed=1)
    write_images(root / "trainB", n_b, seed=2)
    (root / "trainB" / "bad.png").write_bytes(b"not a png")
    return root


def samples(dataset: UnpairedDataset, keys: list[tuple[int, int]]) -> list[dict]:
    """The items the trainer would get for these (epoch, index) keys (seed 0)."""
    seeded = SeededDataset(dataset, seed=0)
    return [seeded[key] for key in keys]


# --------------------------------------------------------------------------- BtoA channels


def test_btoa_loads_each_folder_with_its_side_of_the_generator(tmp_path):
    """G_A maps trainB to trainA under BtoA: trainB is loaded with the generator's input
    channels and trainA with its output channels, while the dataset reports the generator's."""
    write_images(tmp_path / "trainA", 2, seed=1)
    write_images(tmp_path / "trainB", 2, seed=2)
    dataset = UnpairedDataset(tmp_path, serial_batches=True, in_channels=1, out_channels=3, direction="BtoA")
    assert (dataset.in_channels, dataset.out_channels) == (1, 3)
    item = dataset[0]
    assert item["A"].shape[0] == 3 and item["B"].shape[0] == 1
    atob = UnpairedDataset(tmp_path, serial_batches=True, in_channels=1, out_channels=3)
    assert atob[0]["A"].shape[0] == 1 and atob[0]["B"].shape[0] == 3
    with pytest.raises(UsageError, match="direction must be AtoB or BtoA"):
        UnpairedDataset(tmp_path, direction="sideways")


@pytest.mark.parametrize("channels", [["--in-channels", "1"], ["--out-channels", "1"]])
def test_cyclegan_btoa_trains_with_different_in_and_out_channels(tmp_path, channels):
    write_images(tmp_path / "unp/trainA", 7, size=72, seed=1)
    write_images(tmp_path / "unp/trainB", 4, size=72, seed=2)
    code, output = run_cli("train", "cyclegan", "--data", tmp_path / "unp", "--out", tmp_path / "run", *TINY,
                           "--direction", "BtoA", *channels, "--lambda-identity", "0", "--max-steps", "2")
    assert code == 0, output
    assert (tmp_path / "run" / "model.safetensors").is_file()


# --------------------------------------------------------------------------- bad B files


def test_bad_b_is_named_once_and_another_b_drawn_keeping_every_a(tmp_path, capsys):
    data = unpaired_with_bad_b(tmp_path / "data")
    dataset = UnpairedDataset(data, transform=cpu_transform("resize_and_crop", 36, 32))
    items = samples(dataset, [(epoch, i) for epoch in range(10) for i in range(len(dataset))])
    assert {Path(item["A_path"]).name for item in items} == {f"img_{i}.png" for i in range(4)}
    assert [Path(item["A_path"]).name for item in items[:4]] == [f"img_{i}.png" for i in range(4)]
    assert all(Path(item["B_path"]).name != "bad.png" for item in items)
    assert dataset.__dict__.get("_unreadable", set()) == set()  # no A index lost
    bad = dataset.b_files.index(data / "trainB" / "bad.png")
    assert dataset._bad_b == {bad}
    err = capsys.readouterr().err
    assert err.count("warning: skipping") == 1 and err.count("bad.png") == 1


def test_a_sample_after_a_bad_b_is_the_same_whatever_the_process_knew(tmp_path):
    """A resumed run (or another DataLoader worker) starts knowing no bad file: every sample
    must still be the one the run that already knew them got, crop included."""
    data = unpaired_with_bad_b(tmp_path / "data")
    (data / "trainA" / "img_3.png").write_bytes(b"not a png either")  # and a bad A
    save(data / "trainB/odd.png", noise(30, 30))  # found bad only after its random transform

    def jitter(pixels):
        """A random transform that keeps the size, so odd.png fails after drawing from torch."""
        return pixels.astype(np.float32) / 255 * (0.5 + 0.5 * torch.rand(()).item()), None

    def dataset() -> UnpairedDataset:
        unpaired = UnpairedDataset(data, transform=jitter)
        unpaired.size_multiple = 4
        return unpaired

    keys = [(epoch, i) for epoch in range(8) for i in range(5)]
    warm = dataset()
    samples(warm, keys)  # learns every bad file
    assert len(warm._bad_b) == 2 and warm._unreadable
    again, fresh = samples(warm, keys), samples(dataset(), keys)
    for known, new in zip(again, fresh):
        assert (known["A_path"], known["B_path"]) == (new["A_path"], new["B_path"])
        assert torch.equal(known["A"], new["A"]) and torch.equal(known["B"], new["B"])


def test_serial_batches_take_the_next_good_b(tmp_path):
    data = unpaired_with_bad_b(tmp_path / "data", n_a=4, n_b=3)  # B files: bad, img_0, img_1, img_2
    dataset = UnpairedDataset(data, serial_batches=True)
    items = [dataset[i] for i in range(4)]
    assert [Path(item["A_path"]).name for item in items] == [f"img_{i}.png" for i in range(4)]
    assert [Path(item["B_path"]).name for item in items] == ["img_0.png", "img_0.png", "img_1.png", "img_2.png"]


def test_b_too_small_after_scale_width_is_skipped(tmp_path, capsys):
    """--preprocess scale_width keeps the aspect: a B whose height is then not a multiple of
    the generator's 4 is a skipped file, not an A index lost."""
    write_images(tmp_path / "trainA", 2, seed=1)
    save(tmp_path / "trainB/good.png", noise(40, 40))
    odd = save(tmp_path / "trainB/odd.png", noise(43, 40))  # 32x34 after scale_width to 32
    dataset = UnpairedDataset(tmp_path, transform=cpu_transform("scale_width", 32, 32))
    dataset.size_multiple = 4
    items = samples(dataset, [(epoch, i) for epoch in range(8) for i in range(2)])
    assert {Path(item["B_path"]).name for item in items} == {"good.png"}
    assert {Path(item["A_path"]).name for item in items} == {"img_0.png", "img_1.png"}
    assert f"warning: skipping {odd}: 32x34 after preprocessing is not a multiple of 4" in capsys.readouterr().err


def test_every_b_bad_is_one_error_naming_trainb(tmp_path):
    write_images(tmp_path / "trainA", 2, seed=1)
    for name in ("b0.png", "b1.png"):
        (tmp_path / "trainB").mkdir(exist_ok=True)
        (tmp_path / "trainB" / name).write_bytes(b"x")
    with pytest.raises(I2IError, match=r"trainB/: no readable image found \(all 2 files are unreadable"):
        UnpairedDataset(tmp_path)[0]


def test_cyclegan_run_outlives_a_bad_b(tmp_path):
    """One bad trainB file among four used to end the run within a few steps."""
    data = unpaired_with_bad_b(tmp_path / "var4")
    code, output = run_cli("train", "cyclegan", "--data", data, "--out", tmp_path / "run", *TINY,
                           "--max-steps", "40")
    assert code == 0, output
    assert (tmp_path / "run" / "model.safetensors").is_file()


# --------------------------------------------------------------------------- SR flag names


def test_missing_lr_scale_names_the_callers_flag(tmp_path):
    """`i2i train srgan` names an LR folder with --lr-data (its --lr is the learning rate);
    `i2i eval` with --lr; the bicubic baseline takes none."""
    for i in range(2):
        save(tmp_path / f"div/HR/{i}.png", noise(16, 16))
        save(tmp_path / f"div/LR/X4/{i}.png", noise(4, 4))
    code, output = run_cli("train", "srgan", "--data", tmp_path / "div", "--scale", "2", "--out", tmp_path / "p4",
                           "--max-steps", "1", "--threads", "1", "--num-workers", "0")
    assert code != 0 and output.strip().endswith("give the scale of one of them, or --lr-data"), output
    with pytest.raises(UsageError, match=r"holds X4/ but no X2/ for scale 2; give the scale of one of them, or --lr$"):
        sr_folders(tmp_path / "div", 2, lr_flag="--lr")
    with pytest.raises(UsageError, match=r"give the scale of one of them$"):
        sr_folders(tmp_path / "div", 2, lr_flag=None)
    code, output = run_cli("eval", _tiny_model(tmp_path / "x2.safetensors"), tmp_path / "div", "--device", "cpu")
    assert code != 0 and output.strip().endswith("give the scale of one of them, or --lr"), output
    code, output = run_cli("eval", "bicubic", tmp_path / "div", "--scale", "2")
    assert code != 0 and output.strip().endswith("give the scale of one of them"), output
