"""CPU transforms and GPU batch augmentation keep the two sides of a pair aligned."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from i2i.data.augment import AUGMENT, GpuAugment, cpu_transform, device_augmentation
from i2i.errors import UsageError

RNG = np.random.default_rng(0)


def noise(h: int, w: int, c: int = 3, dtype=np.uint8) -> np.ndarray:
    return RNG.integers(0, np.iinfo(dtype).max + 1, (h, w, c), dtype=dtype)


# --------------------------------------------------------------------------- CPU


def test_cpu_crop_is_the_same_on_both_sides():
    transform = cpu_transform("crop", crop_size=12)
    a = noise(20, 24)
    torch.manual_seed(0)
    crops = set()
    for _ in range(12):
        out_a, out_b = transform(a, 255 - a)
        assert out_a.shape == (12, 12, 3) and np.array_equal(out_b, 255 - out_a)
        crops.add(out_a.tobytes())
    assert len(crops) > 1  # the crop position is random


def test_cpu_pair_with_different_channels():
    transform = cpu_transform("resize_and_crop", load_size=18, crop_size=16)
    gray = noise(20, 30, 1)
    for _ in range(6):
        out_a, out_b = transform(gray, np.repeat(gray, 3, axis=2))
        assert out_a.shape == (16, 16, 1) and out_b.shape == (16, 16, 3)
        assert np.array_equal(out_b[..., 1:2], out_a)  # same resize and crop


def test_cpu_resize_and_crop_consistent_with_derived_target():
    transform = cpu_transform("resize_and_crop", load_size=36, crop_size=32)
    a = noise(30, 40)
    for _ in range(6):
        out_a, out_b = transform(a, 255 - a)
        assert out_a.shape == (32, 32, 3)
        # area/bicubic resampling is linear up to uint8 rounding
        assert np.abs(out_b.astype(int) - (255 - out_a.astype(int))).max() <= 1


def test_cpu_preprocess_sizes():
    image = noise(30, 38)
    assert cpu_transform("none")(image)[0].shape == (32, 40, 3)  # multiple of 4
    assert cpu_transform("scale_width", load_size=20, crop_size=16)(image)[0].shape == (16, 20, 3)
    assert cpu_transform("scale_width_and_crop", load_size=40, crop_size=24)(image)[0].shape == (24, 24, 3)
    assert cpu_transform("crop", crop_size=36)(image)[0].shape == (36, 36, 3)  # padded
    with pytest.raises(UsageError, match="unknown preprocess"):
        cpu_transform("zoom")


def test_cpu_transform_is_seeded_by_torch_and_takes_16_bit():
    transform = cpu_transform("crop", crop_size=8)
    a = noise(16, 16)
    torch.manual_seed(3)
    first = [transform(a)[0] for _ in range(3)]
    torch.manual_seed(3)
    second = [transform(a)[0] for _ in range(3)]
    assert all(np.array_equal(x, y) for x, y in zip(first, second))
    deep, _ = transform(noise(16, 16, 3, np.uint16))
    assert deep.dtype == np.float32 and 0 <= deep.min() and deep.max() <= 1


# --------------------------------------------------------------------------- GPU (any device)


def test_gpu_augment_keeps_pairs_aligned_pixel_for_pixel():
    torch.manual_seed(0)
    a = torch.rand(16, 3, 12, 12)
    aug = GpuAugment(flip=True, rot90=True, crop=8, generator=torch.Generator().manual_seed(1))
    out_a, out_b = aug(a, a * 0.5 + 0.25)
    assert out_a.shape == out_b.shape == (16, 3, 8, 8)
    assert torch.equal(out_b, out_a * 0.5 + 0.25)
    assert not torch.equal(out_a, a[:, :, :8, :8])  # something happened
    gray_a, gray_b = aug(a, a[:, :1])  # sides with different channels
    assert torch.equal(gray_b, gray_a[:, :1])


def test_gpu_augment_sr_sides_of_different_sizes():
    lr = torch.rand(8, 3, 6, 6)
    hr = lr.repeat_interleave(4, dim=-2).repeat_interleave(4, dim=-1)  # nearest x4
    aug = GpuAugment(flip=True, rot90=True, crop=4, generator=torch.Generator().manual_seed(2))
    out_lr, out_hr = aug(lr, hr)
    assert out_lr.shape == (8, 3, 4, 4) and out_hr.shape == (8, 3, 16, 16)
    assert torch.equal(out_hr, out_lr.repeat_interleave(4, dim=-2).repeat_interleave(4, dim=-1))


def test_gpu_augment_all_eight_orientations_and_per_sample_choice():
    a = torch.arange(9.0).view(1, 1, 3, 3).repeat(64, 1, 1, 1)
    out, _ = GpuAugment(flip=True, rot90=True, generator=torch.Generator().manual_seed(0))(a)
    assert len({tuple(x.flatten().tolist()) for x in out}) == 8


def test_gpu_color_jitter_only_on_the_input():
    a = torch.rand(4, 3, 8, 8)
    b = a.clone()
    jitter = GpuAugment(flip=True, rot90=True, color_jitter_input=(0.4, 0.4, 0.4, 0.1), generator=torch.Generator().manual_seed(5))
    plain = GpuAugment(flip=True, rot90=True, generator=torch.Generator().manual_seed(5))
    ja, jb = jitter(a, b)
    pa, pb = plain(a, b)
    assert torch.equal(jb, pb) and torch.equal(pa, pb)  # same geometry, target untouched
    assert not torch.allclose(ja, pa)
    assert ja.min() >= 0 and ja.max() <= 1


def test_unpaired_sides_draw_their_own_geometry():
    a = torch.arange(9.0).view(1, 1, 3, 3).repeat(64, 1, 1, 1)
    out_a, out_b = GpuAugment(flip=True, rot90=True, independent=True, generator=torch.Generator().manual_seed(0))(a, a)
    assert not torch.equal(out_a, out_b)  # the two domains are flipped apart
    assert len({tuple(x.flatten().tolist()) for x in out_b}) == 8


def test_presets():
    assert device_augmentation("none") is None
    flip = device_augmentation("flip")
    assert flip.flip and not flip.rot90 and not flip.independent
    assert device_augmentation("dihedral", independent=True).rot90
    assert set(AUGMENT) == {"flip", "dihedral", "none"}
    with pytest.raises(UsageError, match="unknown augment preset"):
        device_augmentation("mixup")


# --------------------------------------------------------------------------- every pipeline


@pytest.mark.parametrize("pipeline", ["pix2pix", "srgan", "cyclegan"])
def test_every_pipeline_augments_its_batches_on_the_device(pipeline):
    """The trainer hands each batch to `pipe.augment`: pix2pix and srgan pairs keep their
    geometry identical on both sides (srgan's LR and HR alike, 8 orientations); CycleGAN's
    unpaired domains are flipped apart."""
    from i2i.pipelines import get_pipeline
    from i2i.training import make_settings

    tiny = {"srgan": {"width": 4, "num_blocks": 1, "scale": 2, "image_size": 16},
            "pix2pix": {"netG": "unet_32", "width": 4, "ndf": 4, "in_channels": 3, "out_channels": 3},
            "cyclegan": {"netG": "resnet_6blocks", "width": 4, "ndf": 4, "in_channels": 3, "out_channels": 3}}
    config, options = make_settings(pipeline, tiny[pipeline])
    pipe = get_pipeline(pipeline)(options, config, torch.device("cpu"))
    a = torch.arange(64, dtype=torch.float32).view(1, 1, 8, 8).repeat(64, 3, 1, 1) / 64  # 64 copies
    b = a.repeat_interleave(2, -1).repeat_interleave(2, -2) if pipeline == "srgan" else 1 - a
    torch.manual_seed(0)
    out = pipe.augment({"A": a, "B": b})
    assert not torch.equal(out["A"], a)
    if pipeline == "srgan":
        assert torch.equal(out["B"], out["A"].repeat_interleave(2, -1).repeat_interleave(2, -2))
        assert len({tuple(x[0].flatten().tolist()) for x in out["A"]}) == 8  # all orientations
    elif pipeline == "pix2pix":
        assert torch.equal(out["B"], 1 - out["A"])
        assert len({tuple(x[0].flatten().tolist()) for x in out["A"]}) == 2  # the reference's flip
    else:
        assert not torch.equal(out["B"], 1 - out["A"])
    config.no_flip = True
    assert get_pipeline(pipeline)(options, config, torch.device("cpu")).augment({"A": a, "B": b})["A"] is a


def test_the_trainer_augments_every_step(tmp_path, monkeypatch):
    from i2i.pipelines import Pipeline
    from i2i.training import make_settings, train
    from test_train import TINY_PIX2PIX, paired

    calls = []
    original = Pipeline.augment

    def recording(self, batch):
        calls.append(batch["A"].shape)
        return original(self, batch)

    monkeypatch.setattr(Pipeline, "augment", recording)
    config, options = make_settings("pix2pix", {"data": str(paired(tmp_path / "data")), "out": str(tmp_path / "run"),
                                                **TINY_PIX2PIX, "max_steps": 3, "augment": "dihedral"})
    train("pix2pix", config, options)
    assert len(calls) == 3 + 1  # three steps and the sample grids' batch
