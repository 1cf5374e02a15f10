"""MATLAB-exact bicubic imresize: hand-computed values, mirroring, rounding, torch == numpy."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from i2i.data.bicubic import imresize, imresize_torch, modcrop, output_length, resize_weights

# Shrinking by 2: the kernel is widened to 8 taps, 0.5 * cubic(0.5 * d) at the offsets
# d = +-0.5, +-1.5, +-2.5, +-3.5, i.e. cubic(0.25) = 0.8671875, cubic(0.75) = 0.2265625,
# cubic(1.25) = -0.0703125, cubic(1.75) = -0.0234375, each halved by the normalisation.
HALF_WEIGHTS = np.array(
    [-0.01171875, -0.03515625, 0.11328125, 0.43359375, 0.43359375, 0.11328125, -0.03515625, -0.01171875]
)


def test_weights_of_a_shrink_by_two_by_hand() -> None:
    weights, indices = resize_weights(4, 2, 0.5)
    assert np.array_equal(weights, np.stack([HALF_WEIGHTS, HALF_WEIGHTS]))
    # Output 0 samples 1-based input -2..5: -2, -1, 0 mirror to 3, 2, 1; 5 mirrors to 4.
    assert indices[0].tolist() == [2, 1, 0, 0, 1, 2, 3, 3]
    assert indices[1].tolist() == [0, 0, 1, 2, 3, 3, 2, 1]


def test_shrink_by_two_by_hand() -> None:
    row = np.array([10, 50, 0, 200, 100, 30, 80, 255], dtype=np.float64)
    image = np.tile(row, (8, 1))  # every row the same: the row pass leaves it unchanged
    out = imresize(image, 0.5)
    assert out.shape == (4, 4)
    # out[0] = -.01171875*v[2] - .03515625*v[1] + .11328125*v[0] + .43359375*(v[0] + v[1])
    #          + .11328125*v[2] - .03515625*v[3] - .01171875*v[4]  (v[-3..-1] mirrored)
    assert out[0, 0] == 17.1875
    assert out[0, 1] == 101.25
    expected = [sum(w * row[i] for w, i in zip(HALF_WEIGHTS, idx)) for idx in resize_weights(8, 4, 0.5)[1]]
    assert np.allclose(out, np.tile(expected, (4, 1)), rtol=0, atol=1e-12)
    as_uint8 = imresize(np.tile(row.astype(np.uint8), (8, 1)), 0.5)
    assert as_uint8.dtype == np.uint8
    assert as_uint8[0, :2].tolist() == [17, 101]


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 2, 3, 4])
def test_constant_image_stays_constant(scale: float) -> None:
    image = np.full((12, 15, 3), 77, dtype=np.uint8)
    out = imresize(image, scale)
    assert out.shape == (output_length(12, scale), output_length(15, scale), 3)
    assert np.all(out == 77)
    out = imresize(image.astype(np.float32) / 255, scale)
    assert out.dtype == np.float32
    assert np.allclose(out, 77 / 255, atol=1e-6)


def test_output_size_and_scale_rounding() -> None:
    assert output_length(510, 1 / 3) == 170  # not ceil(170.00000000000003)
    assert output_length(5, 0.5) == 3  # MATLAB: ceil
    assert imresize(np.zeros((9, 6)), output_size=(4, 7)).shape == (4, 7)
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)))


def test_upscale_keeps_a_ramp_inside() -> None:
    ramp = np.tile(np.arange(16, dtype=np.float64), (16, 1))
    out = imresize(ramp, 2)
    # Output column x (1-based) samples u = x/2 + 0.25; cubic reproduces linear functions.
    u = np.arange(1, 33) / 2 + 0.25 - 1
    assert np.allclose(out[:, 4:-4], u[4:-4], atol=1e-12)


def test_uint8_is_rounded_after_each_pass() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (24, 18, 3), dtype=np.uint8)
    out = imresize(image, 1 / 3)
    rows_only = imresize(image, output_size=(8, 18))  # scales (1/3, 1): rows pass only
    two_step = imresize(rows_only, output_size=(8, 6))  # then the columns pass only
    assert np.array_equal(out, two_step)
    in_float = imresize(image.astype(np.float64), 1 / 3)
    assert not np.array_equal(out, np.floor(np.clip(in_float, 0, 255) + 0.5))


def test_uint8_rounds_half_away_from_zero() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    exact = imresize(image.astype(np.float64), output_size=(32, 16))  # weights k/128: ties occur
    assert np.any(exact % 1 == 0.5)
    assert np.array_equal(imresize(image, output_size=(32, 16)), np.floor(np.clip(exact, 0, 255) + 0.5))


def test_uint16_keeps_its_depth() -> None:
    image = np.full((8, 8), 60000, dtype=np.uint16)
    image[2:5, 3:6] = 1000
    out = imresize(image, 0.5)
    assert out.dtype == np.uint16
    expected = np.floor(np.clip(imresize(imresize(image.astype(float), output_size=(4, 8)), output_size=(4, 4)), 0, 65535) + 0.5)
    assert np.abs(out.astype(float) - expected).max() <= 1


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 2, 3, 4])
def test_torch_equals_numpy_float(scale: float) -> None:
    rng = np.random.default_rng(2)
    image = rng.random((13, 17, 3))
    expected = imresize(image, scale)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None]
    out = imresize_torch(tensor, scale)[0].permute(1, 2, 0).numpy()
    assert np.allclose(out, expected, rtol=0, atol=1e-12)
    out32 = imresize_torch(tensor.float(), scale)[0].permute(1, 2, 0).numpy()
    assert np.allclose(out32, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("scale", [0.25, 0.5, 2, 4])
def test_torch_round_uint8_equals_numpy_uint8(scale: float) -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)
    expected = imresize(image, scale)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].double()
    out = imresize_torch(tensor, scale, round_uint8=True, data_range=255.0)
    assert np.array_equal(out[0].permute(1, 2, 0).numpy(), expected)
    out01 = imresize_torch(tensor / 255, scale, round_uint8=True)  # [0, 1] tensors
    assert np.array_equal(np.round(out01[0].permute(1, 2, 0).numpy() * 255), expected)


def test_modcrop() -> None:
    image = np.arange(7 * 10 * 3).reshape(7, 10, 3)
    cropped = modcrop(image, 3)
    assert cropped.shape == (6, 9, 3)
    assert np.array_equal(cropped, image[:6, :9])
    assert modcrop(image, 1).shape == image.shape
    assert modcrop(image[:, :, 0], 4).shape == (4, 8)
