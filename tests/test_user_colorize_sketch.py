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
    assert lines[0] == ("error: --task sketch makes models of 3 input channels, not --in-channels 1: drop that "
                        "setting (a resumed run keeps its own task)"), lines[0]
    fresh = CliRunner().invoke(main, ["train", "pix2pix", "--data", str(photos), "--task", "sketch",
                                      "--out-channels", "3", "--out", str(tmp_path / "r2"), "--max-steps", "1", *TINY])
    assert fresh.exit_code == 2 and fresh.output.strip() == (
        "error: --task sketch makes models of 1 output channel, not --out-channels 3: drop that setting "
        "(a resumed run keeps its own task)"), fresh.output


def test_colorize_on_a_folder_with_gray_scans_warns_once(tmp_path):
    from i2i.data.datasets import DerivedDataset

    photos = _photos(tmp_path / "photos")
    _photos(photos / "old scans", n=2, gray=True)
    notes = DerivedDataset(photos, "colorize").notes
    assert len(notes) == 1 and "2 of 5 photos" in notes[0] and "(e.g. old scans/photo 0.png)" in notes[0], notes
    assert DerivedDataset(photos, "sketch").notes == []  # a gray photo still has lines to learn


def test_the_start_notes_are_printed_once_by_the_trainer(tmp_path):
    photos = _photos(tmp_path / "photos")
    _photos(photos / "scans", n=1, gray=True)
    result = CliRunner().invoke(main, ["train", "pix2pix", "--data", str(photos), "--task", "colorize",
                                       "--out", str(tmp_path / "run"), "--max-steps", "1", *TINY])
    assert result.exit_code == 0, result.output
    assert result.output.count("are gray (e.g. scans/photo 0.png)") == 1, result.output


def test_a_16_bit_gray_alpha_png_counts_as_gray(tmp_path):
    """Pillow opens a 16-bit gray+alpha PNG as RGBA; read_image gives it 1 channel, and so does
    the header rule the channels from the data and the gray-photo note use."""
    from i2i.data.io import read_header, read_image, write_image

    path = tmp_path / "scan.png"
    pixels = np.arange(64 * 48, dtype=np.uint16).reshape(48, 64, 1) * 20
    write_image(path, pixels, alpha=np.full((48, 64), 65535, np.uint16))
    assert read_image(path).pixels.shape[2] == 1
    assert read_header(path) == (64, 48, 1)


def test_one_channel_flag_on_gray_cyclegan_folders_sets_both(tmp_path):
    """--in-channels 3 on two gray folders: the other side follows it (3 -> 3, as the reference's
    flags give), not the data's 1, which the identity loss refused."""
    gray = tmp_path / "gray"
    _photos(gray / "trainA", gray=True), _photos(gray / "trainB", gray=True)
    dataset = CycleGAN.build_dataset(CycleGANOptions(in_channels=3), _config(gray))
    assert (dataset.in_channels, dataset.out_channels) == (3, 3)
    dataset = CycleGAN.build_dataset(CycleGANOptions(out_channels=3), _config(gray))
    assert (dataset.in_channels, dataset.out_channels) == (3, 3)
