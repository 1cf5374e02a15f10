"""Datasets on real (tiny) image files written by the tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from i2i.data.bicubic import imresize
from i2i.data.datasets import (
    DerivedDataset,
    PairedDataset,
    SingleFolderDataset,
    SRDataset,
    UnpairedDataset,
    detect_layout,
)
from i2i.errors import I2IError, UsageError

from conftest import noise, save



def truncated_png(path: Path) -> Path:
    save(path, noise(16, 16))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def u8(t: torch.Tensor) -> np.ndarray:
    return (t.numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)


# --------------------------------------------------------------------------- layouts


def test_detect_each_layout(tmp_path):
    save(tmp_path / "u/trainA/a.png", noise(8, 8))
    save(tmp_path / "ab/train/x.png", noise(8, 16))
    save(tmp_path / "f/A/x.png", noise(8, 8))
    save(tmp_path / "f/B/x.png", noise(8, 8))
    save(tmp_path / "p/photo.png", noise(8, 8))
    assert detect_layout(tmp_path / "u") == "unpaired"
    assert detect_layout(tmp_path / "ab") == "paired_ab"
    assert detect_layout(tmp_path / "f") == "paired_folders"
    assert detect_layout(tmp_path / "p") == "plain"


def test_empty_or_missing_folder_is_one_line_usage_error(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data/README").write_text("not an image")
    with pytest.raises(UsageError) as info:
        detect_layout(tmp_path / "data")
    message = str(info.value)
    assert "data/ has no trainA/ or trainB/ (unpaired layout)" in message and "\n" not in message
    with pytest.raises(I2IError, match="does not exist") as missing:  # bad input (exit 1), as in translate
        detect_layout(tmp_path / "nope")
    assert not isinstance(missing.value, UsageError)
    with pytest.raises(UsageError, match="unpaired layout"):
        UnpairedDataset(tmp_path / "data")


# --------------------------------------------------------------------------- unpaired


def test_unpaired_length_and_pairing(tmp_path):
    for i in range(3):
        save(tmp_path / f"trainA/a{i}.png", noise(8, 8))
    for i in range(5):
        save(tmp_path / f"trainB/b{i}.png", noise(8, 8, 1))  # gray: becomes RGB
    serial = UnpairedDataset(tmp_path, serial_batches=True)
    assert len(serial) == 5
    items = [serial[i] for i in range(5)]
    assert [Path(x["A_path"]).name for x in items] == ["a0.png", "a1.png", "a2.png", "a0.png", "a1.png"]
    assert [Path(x["B_path"]).name for x in items] == [f"b{i}.png" for i in range(5)]
    assert items[0]["B"].shape == (3, 8, 8) and items[0]["B"].dtype == torch.float32
    assert torch.equal(items[0]["B"][0], items[0]["B"][2])

    torch.manual_seed(0)
    randomised = UnpairedDataset(tmp_path)
    drawn = [Path(randomised[0]["B_path"]).name for _ in range(30)]
    assert len(set(drawn)) >= 3  # item 0 meets different Bs
    assert all(Path(randomised[4]["A_path"]).name == "a1.png" for _ in range(3))


def test_unpaired_missing_side_and_test_phase(tmp_path):
    save(tmp_path / "trainA/a.png", noise(8, 8))
    with pytest.raises(UsageError, match=r"trainB/ is missing"):
        UnpairedDataset(tmp_path)
    save(tmp_path / "testA/a.png", noise(8, 8))
    save(tmp_path / "testB/b.png", noise(8, 8))
    assert len(UnpairedDataset(tmp_path, phase="test")) == 1


# --------------------------------------------------------------------------- paired


def test_paired_ab_split_left_half_is_a(tmp_path):
    ab = noise(8, 20)
    save(tmp_path / "train/x.png", ab)
    item = PairedDataset(tmp_path)[0]
    assert np.array_equal(u8(item["A"]), ab[:, :10]) and np.array_equal(u8(item["B"]), ab[:, 10:])
    swapped = PairedDataset(tmp_path, direction="BtoA")[0]
    assert torch.equal(swapped["A"], item["B"]) and torch.equal(swapped["B"], item["A"])
    with pytest.raises(UsageError, match="val/ is missing"):
        PairedDataset(tmp_path, phase="val")


def test_paired_folders_matched_by_stem(tmp_path):
    a, b = noise(8, 8), noise(8, 8)
    save(tmp_path / "A/x.png", a)
    save(tmp_path / "B/x.bmp", b)  # same stem, another format
    save(tmp_path / "A/y.png", noise(8, 8))
    save(tmp_path / "B/y.png", noise(8, 8))
    (tmp_path / "A/MANIFEST.json").write_text("{}")
    ds = PairedDataset(tmp_path, in_channels=1)
    assert len(ds) == 2 and ds.in_channels == 1
    item = ds[0]
    assert item["A"].shape == (1, 8, 8) and np.array_equal(u8(item["B"]), b)
    assert Path(item["A_path"]).name == "x.png" and Path(item["B_path"]).name == "x.bmp"


def test_paired_unmatched_stems_in_one_line(tmp_path):
    for stem in ("p", "q", "x"):
        save(tmp_path / f"A/{stem}.png", noise(8, 8))
    for stem in ("x", "z"):
        save(tmp_path / f"B/{stem}.png", noise(8, 8))
    with pytest.raises(UsageError) as info:
        PairedDataset(tmp_path)
    assert "3 unmatched: A only: p, q; B only: z" in str(info.value)
    assert "\n" not in str(info.value)


def test_paired_reads_trainA_trainB_as_pairs(tmp_path):
    save(tmp_path / "trainA/k.png", noise(8, 8))
    save(tmp_path / "trainB/k.png", noise(8, 8))
    assert len(PairedDataset(tmp_path)) == 1
    save(tmp_path / "plain/k.png", noise(8, 8))
    with pytest.raises(UsageError, match="plain folder"):
        PairedDataset(tmp_path / "plain")


def test_paired_loader_with_two_workers_keeps_pairs_aligned(tmp_path):
    from torch.utils.data import DataLoader

    from i2i.data.augment import cpu_transform

    for i in range(4):
        a = noise(20, 20)
        save(tmp_path / f"A/{i}.png", a)
        save(tmp_path / f"B/{i}.png", 255 - a)
    ds = PairedDataset(tmp_path, transform=cpu_transform("crop", crop_size=12))
    batches = list(DataLoader(ds, batch_size=2, num_workers=2))
    assert len(batches) == 2
    for batch in batches:
        assert batch["A"].shape == (2, 3, 12, 12)
        assert torch.allclose(batch["B"], 1 - batch["A"], atol=1e-6)


# --------------------------------------------------------------------------- derived


def test_colorize_input_is_luminance(tmp_path):
    rgb = noise(10, 12)
    save(tmp_path / "p.png", rgb)
    ds = DerivedDataset(tmp_path, "colorize")
    assert (ds.in_channels, ds.out_channels) == (1, 3)
    item = ds[0]
    assert item["A"].shape == (1, 10, 12) and np.array_equal(u8(item["B"]), rgb)
    luma = rgb.astype(np.float64) @ [0.299, 0.587, 0.114]
    assert np.abs(item["A"][0].numpy() * 255 - luma).max() <= 0.5 + 1e-3


def test_lab_round_trip(tmp_path):
    from i2i.data.color import lab_to_rgb

    rgb = noise(10, 12)
    save(tmp_path / "p.png", rgb)
    ds = DerivedDataset(tmp_path, "colorize_lab")
    assert (ds.in_channels, ds.out_channels) == (1, 2)
    item = ds[0]
    assert item["A"].shape == (1, 10, 12) and item["B"].shape == (2, 10, 12)
    assert 0 <= item["A"].min() and item["A"].max() <= 1 and 0 <= item["B"].min() and item["B"].max() <= 1
    back = lab_to_rgb(item["A"], item["B"])
    assert torch.allclose(back, torch.from_numpy(rgb).permute(2, 0, 1) / 255.0, atol=2e-3)
    # the reference's network values: L/50 - 1 and ab/110
    from kornia.color import rgb_to_lab

    lab = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0)
    assert torch.allclose(item["A"] * 2 - 1, lab[:1] / 50 - 1, atol=1e-5)
    assert torch.allclose(item["B"] * 2 - 1, lab[1:] / 110, atol=1e-5)


def test_sketch_deterministic_dark_lines_on_light(tmp_path):
    from i2i.data.sketch import INK, PAPER, sketch

    photo = np.full((32, 32, 3), 230, np.uint8)
    photo[8:24, 8:24] = 40  # a dark square on light paper
    save(tmp_path / "sq.png", photo)
    ds = DerivedDataset(tmp_path, "sketch")
    assert (ds.in_channels, ds.out_channels) == (3, 1)
    first, second = ds[0]["B"], ds[0]["B"]
    assert torch.equal(first, second) and first.shape == (1, 32, 32)
    assert first.min() >= INK and first.max() <= PAPER  # tones a Tanh generator can reach
    assert first.mean() > 0.7  # mostly paper
    assert first[0, 8, 16] < 0.3  # a line on the square's edge
    assert first[0, 2, 2] == PAPER and first[0, 16, 16] > 0.85  # flat areas stay blank paper
    batch = sketch(ds[0]["A"].unsqueeze(0).repeat(2, 1, 1, 1))
    assert torch.allclose(batch[0], first, atol=1e-4)  # batched: same up to float order


# --------------------------------------------------------------------------- SR


def _find(big: np.ndarray, patch: np.ndarray) -> tuple[int, int]:
    h, w = patch.shape[:2]
    for y in range(big.shape[0] - h + 1):
        for x in range(big.shape[1] - w + 1):
            if np.array_equal(big[y:y + h, x:x + w], patch):
                return y, x
    raise AssertionError("patch not found")


def test_sr_lr_is_matlab_bicubic_of_the_hr_patch(tmp_path):
    hr = noise(41, 38)
    save(tmp_path / "hr.png", hr)
    torch.manual_seed(1)
    ds = SRDataset(tmp_path, scale=4, patch_size=16)
    for _ in range(5):
        item = ds[0]
        assert item["A"].shape == (3, 4, 4) and item["B"].shape == (3, 16, 16)
        hr_patch = u8(item["B"])
        y, x = _find(hr, hr_patch)
        assert y % 4 == 0 and x % 4 == 0  # aligned to the scale
        assert np.array_equal(u8(item["A"]), imresize(hr_patch, scale=0.25))
    torch.manual_seed(2)
    cached = ds[0]
    torch.manual_seed(2)
    uncached = SRDataset(tmp_path, scale=4, patch_size=16, cache=False)[0]
    assert torch.equal(cached["A"], uncached["A"]) and torch.equal(cached["B"], uncached["B"])
    whole = SRDataset(tmp_path, scale=4, patch_size=None)[0]
    assert whole["B"].shape == (3, 40, 36) and whole["A"].shape == (3, 10, 9)


def test_sr_lr_folder_and_small_images(tmp_path, capsys):
    hr_dir, lr_dir = tmp_path / "HR", tmp_path / "LR"
    hr = noise(34, 32)  # mod-cropped to 32x32 for scale 4
    save(hr_dir / "img.png", hr)
    lr = noise(8, 8)
    save(lr_dir / "imgx4.png", lr)
    save(hr_dir / "tiny.png", noise(8, 8))
    save(lr_dir / "tiny_x4.png", noise(2, 2))
    ds = SRDataset(hr_dir, scale=4, patch_size=16, lr_root=lr_dir)
    assert len(ds) == 1 and "tiny.png" in capsys.readouterr().err
    item = ds[0]
    y, x = _find(lr, u8(item["A"]))
    assert np.array_equal(u8(item["B"]), hr[4 * y:4 * y + 16, 4 * x:4 * x + 16])
    with pytest.raises(UsageError, match="no readable HR image"):
        SRDataset(hr_dir, scale=4, patch_size=64)
    with pytest.raises(UsageError, match="not a multiple of the scale"):
        SRDataset(hr_dir, scale=3, patch_size=16)


# --------------------------------------------------------------------------- robustness


def test_bad_file_is_skipped_with_one_warning(tmp_path, capsys):
    save(tmp_path / "trainA/a0.png", noise(8, 8))
    truncated_png(tmp_path / "trainA/a1.png")
    save(tmp_path / "trainB/b0.png", noise(8, 8))
    ds = UnpairedDataset(tmp_path, serial_batches=True)
    names = [Path(ds[i]["A_path"]).name for i in range(2) for _ in range(2)]
    assert names == ["a0.png", "a0.png", "a0.png", "a0.png"]
    err = capsys.readouterr().err
    assert err.count("a1.png") == 1 and err.startswith("warning: skipping")


def test_single_folder(tmp_path):
    save(tmp_path / "x.png", noise(8, 6, 1))
    (tmp_path / "notes.txt").write_text("ignored")
    ds = SingleFolderDataset(tmp_path)
    assert len(ds) == 1 and ds[0]["A"].shape == (3, 8, 6) and ds[0]["A_path"].endswith("x.png")
    assert SingleFolderDataset(tmp_path, channels=None)[0]["A"].shape == (1, 8, 6)


def test_images_smaller_than_the_crop_are_named_at_start(tmp_path):
    """--preprocess crop pads an image smaller than the crop with its mirror image (the
    reference raises): training went on without a word about it. The dataset holds the line
    for the trainer to print once (not once per torchrun process)."""
    from i2i.data.augment import cpu_transform

    crop = cpu_transform("crop", crop_size=32)
    save(tmp_path / "unpaired/trainA/a.png", noise(40, 40))
    save(tmp_path / "unpaired/trainB/b.png", noise(40, 40))
    save(tmp_path / "unpaired/trainB/small.png", noise(20, 24))
    assert UnpairedDataset(tmp_path / "unpaired", transform=cpu_transform("resize_and_crop", 36, 32)).notes == []
    notes = UnpairedDataset(tmp_path / "unpaired", transform=crop).notes
    assert len(notes) == 1 and notes[0].startswith(
        f"warning: 1 of 2 images in {tmp_path / 'unpaired/trainB'}/ are smaller than "
        "--image-size 32 (the smallest: small.png, 24x20): --preprocess crop pads them")

    save(tmp_path / "ab/train/x.png", noise(32, 40))  # halves of 20x32
    [note] = PairedDataset(tmp_path / "ab", transform=crop).notes
    assert "1 of 1 images in" in note and "(the smallest: x.png, 20x32 per half)" in note
    [note] = DerivedDataset(tmp_path / "unpaired/trainB", "colorize", transform=crop).notes
    assert "(the smallest: small.png, 24x20)" in note


def test_start_notes_read_a_sample_of_a_big_folder(tmp_path, monkeypatch):
    """The notes read headers of at most _NOTE_SAMPLE files spread over the folder (a COCO-sized
    folder would cost seconds before step 1), and say how many they checked."""
    from i2i.data import datasets
    from i2i.data.augment import cpu_transform

    monkeypatch.setattr(datasets, "_NOTE_SAMPLE", 2)
    for i in range(5):
        save(tmp_path / f"{i}.png", noise(20 if i % 2 == 0 else 40, 40))
    [note] = DerivedDataset(tmp_path, "sketch", transform=cpu_transform("crop", crop_size=32)).notes
    assert note.startswith(f"warning: 1 of 2 images checked (of 5) in {tmp_path}/ are smaller"), note  # 0 and 3
