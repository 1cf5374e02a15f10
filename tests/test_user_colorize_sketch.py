"""A new user's colorize / sketch / own-domain runs, on real files on disk: gray folders train
gray models ("--in-channels 0: from the data"), and mistakes are one line naming the flag."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

from i2i.cli import main
from i2i.pipelines.cyclegan import CycleGAN, CycleGANOptions
from i2i.pipelines.pix2pix import Pix2Pix, Pix2PixOptions
from i2i.training.settings import TrainConfig

TINY = ["--netG", "unet_32", "--width", "4", "--ndf", "4", "--image-size", "32", "--preprocess", "crop",
        "--num-workers", "0", "--threads", "1", "--log-every", "1"]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _photos(folder: Path, n: int = 3, gray: bool = False) -> Path:
    """`n` small photos (colour JPEGs, or 8-bit gray PNGs), with a README beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(folder)))
    for i in range(n):
        pixels = rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)
        image = PIL.Image.fromarray(pixels)
        if gray:
            image.convert("L").save(folder / f"photo {i}.png")
        else:
            image.save(folder / f"photo {i}.JPG", quality=90)
    (folder / "README.txt").write_text("my photos")
    return folder


def _config(data: Path) -> TrainConfig:
    return TrainConfig(data=str(data), image_size=32, preprocess="crop")


def _derive(task: str, src: Path, dst: Path) -> Path:
    result = CliRunner().invoke(main, ["data", "derive", task, str(src), str(dst)])
    assert result.exit_code == 0, result.output
    return dst


def test_derived_sketch_pairs_train_a_model_with_gray_output(tmp_path):
    pairs = _derive("sketch", _photos(tmp_path / "photos"), tmp_path / "pairs")
    dataset = Pix2Pix.build_dataset(Pix2PixOptions(), _config(pairs))
    assert (dataset.in_channels, dataset.out_channels) == (3, 1)  # as --task sketch
    flipped = Pix2Pix.build_dataset(Pix2PixOptions(direction="BtoA"), _config(pairs))
    assert (flipped.in_channels, flipped.out_channels) == (1, 3)


def test_derived_colorize_pairs_train_gray_to_colour(tmp_path):
    pairs = _derive("colorize", _photos(tmp_path / "photos"), tmp_path / "pairs")
    dataset = Pix2Pix.build_dataset(Pix2PixOptions(), _config(pairs))
    assert (dataset.in_channels, dataset.out_channels) == (1, 3)  # as --task colorize
    given = Pix2Pix.build_dataset(Pix2PixOptions(in_channels=3), _config(pairs))
    assert (given.in_channels, given.out_channels) == (3, 3)  # a flag wins


def test_cyclegan_on_two_gray_folders_is_gray_and_mixed_folders_stay_rgb(tmp_path):
    gray = tmp_path / "gray"
    _photos(gray / "trainA", gray=True), _photos(gray / "trainB" / "nested", gray=True)
    dataset = CycleGAN.build_dataset(CycleGANOptions(), _config(gray))
    assert (dataset.in_channels, dataset.out_channels) == (1, 1)
    mixed = tmp_path / "mixed"
    _photos(mixed / "trainA"), _photos(mixed / "trainB", gray=True)
    dataset = CycleGAN.build_dataset(CycleGANOptions(), _config(mixed))
    assert (dataset.in_channels, dataset.out_channels) == (3, 3)  # the identity loss needs 3 and 3


def test_sketch_model_from_derived_pairs_writes_gray_files(tmp_path):
    pairs = _derive("sketch", _photos(tmp_path / "photos"), tmp_path / "pairs")
    run = tmp_path / "run"
    trained = CliRunner().invoke(main, ["train", "pix2pix", "--data", str(pairs), "--out", str(run),
                                        "--max-steps", "1", *TINY])
    assert trained.exit_code == 0, trained.output
    out = tmp_path / "sketches"
    translated = CliRunner().invoke(main, ["translate", str(run), str(tmp_path / "photos"), str(out)])
    assert translated.exit_code == 0, translated.output
    with PIL.Image.open(out / "photo 0.png") as sketch:
        assert sketch.mode == "L"  # not RGB with three identical channels


def test_resume_with_another_task_names_the_flag_and_the_resume(tmp_path):
    photos, run = _photos(tmp_path / "photos"), tmp_path / "run"
    first = CliRunner().invoke(main, ["train", "pix2pix", "--data", str(photos), "--task", "colorize",
                                      "--out", str(run), "--max-steps", "1", *TINY])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(main, ["train", "pix2pix", "--out", str(run), "--resume", "--max-steps", "2",
                                      "--task", "sketch"])
    lines = again.output.strip().splitlines()
    assert again.exit_code == 2 and len(lines) == 1, again.output
    assert "--task sketch" in lines[0] and "--in-channels" in lines[0] and "--resume" in lines[0], lines[0]


def test_colorize_on_a_folder_with_gray_scans_warns_once(tmp_path, capsys):
    from i2i.data.datasets import DerivedDataset

    photos = _photos(tmp_path / "photos")
    _photos(photos / "old scans", n=2, gray=True)
    DerivedDataset(photos, "colorize")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "2 of 5 photos" in lines[0] and "photo 0.png" in lines[0], lines
    DerivedDataset(photos, "sketch")  # a gray photo still has lines to learn
    assert capsys.readouterr().err == ""
