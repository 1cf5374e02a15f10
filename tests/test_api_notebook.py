"""The Python API as a notebook uses it: what a call leaves behind in the process (random
streams, default dtype), what comes back (tensors a user can go on computing with), pickling
for multiprocessing, and what help() and tab completion show."""
from __future__ import annotations

import copy
import pickle
import warnings

import numpy as np
import pytest
import torch

import i2i
from i2i.errors import UsageError
from i2i.infer import load_model, speed
from test_infer import make_models, pattern


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    """The tiny model files of test_infer (a CycleGAN and an x2 SR model)."""
    return make_models(tmp_path_factory.mktemp("models"))


def test_the_first_call_leaves_the_callers_random_stream_alone(models, monkeypatch, tmp_path):
    monkeypatch.setattr(speed, "_TUNED", {})  # measure precision and layout again, on random probes,
    monkeypatch.setenv("I2I_HOME", str(tmp_path))  # with no winner kept by an earlier test
    translator = load_model(models["sr"], device="cpu")
    torch.manual_seed(0)
    expected = torch.rand(4)
    torch.manual_seed(0)
    translator(pattern(8, 8))
    assert torch.equal(torch.rand(4), expected)


def test_output_tensors_are_ordinary_tensors(models):
    sr = load_model(models["sr"], device="cpu", precision="fp32")
    y = sr(torch.rand(3, 8, 8))
    assert not y.is_inference()
    y.mul_(2)  # an inference-mode tensor refuses in-place updates outside inference mode
    prediction = torch.rand(3, 16, 16, requires_grad=True)
    torch.nn.functional.mse_loss(prediction, sr(torch.rand(1, 4, 8, 8))[0, :3]).backward()  # and autograd
    assert prediction.grad is not None
    with torch.inference_mode():
        assert sr(torch.rand(3, 8, 8)).is_inference()  # asked for: left so


def test_a_meta_tensor_is_a_one_line_usage_error(models):
    sr = load_model(models["sr"], device="cpu", precision="fp32")
    with pytest.raises(UsageError, match="^the tensor is on the 'meta' device"):
        sr(torch.rand(3, 8, 8, device="meta"))


def test_a_float64_default_dtype_changes_nothing(models):
    x = pattern(8, 10)
    expected = load_model(models["sr"], device="cpu", precision="fp32")(x)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        translator = load_model(models["sr"], device="cpu")  # built, loaded and probed under float64
        np.testing.assert_array_equal(translator(x), expected)
        assert translator(torch.rand(3, 8, 10)).dtype == torch.float64  # the input's dtype
    finally:
        torch.set_default_dtype(old)


@pytest.mark.parametrize("source", ["sr", "pix2pix"])
def test_a_translator_pickles_and_copies(models, source):
    if source == "pix2pix":  # a model that runs with dropout and seeded masks (a lock of its own)
        net = i2i.nn.create("unet_32", width=4, norm="batch", dropout=True)
        translator = i2i.Translator(net, device="cpu", precision="fp32", test_mode="train")
        assert translator.stochastic
    else:
        translator = load_model(models["sr"], device="cpu")
    x = pattern(32, 32)
    expected = translator(x)
    for twin in (pickle.loads(pickle.dumps(translator)), copy.deepcopy(translator)):
        np.testing.assert_array_equal(twin(x), expected)


def test_help_and_tab_completion_show_the_lazy_api():
    names = dir(i2i)
    assert {"load_model", "Translator", "train", "I2IError", "__version__"} <= set(names)
    assert "i2i.load_model" in (i2i.__doc__ or "")


def test_a_path_is_refused_with_a_hint(models, tmp_path):
    sr = load_model(models["sr"], device="cpu", precision="fp32")
    with pytest.raises(UsageError, match=r"^cannot translate a str: .*PIL\.Image\.open; translate_folder takes paths"):
        sr(str(tmp_path / "photo.png"))


def test_a_read_only_float_array_gives_no_torch_warning(models, tmp_path, monkeypatch):
    sr = load_model(models["sr"], device="cpu", precision="fp32")
    np.save(tmp_path / "image.npy", pattern(8, 8).astype(np.float32) / 255)
    image = np.load(tmp_path / "image.npy", mmap_mode="r")  # read-only
    from_numpy = torch.from_numpy

    def writeable_only(array: np.ndarray) -> torch.Tensor:  # torch warns once per process: ask directly
        assert array.flags.writeable, "a read-only array given to torch.from_numpy"
        return from_numpy(array)

    monkeypatch.setattr(torch, "from_numpy", writeable_only)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = sr(image)
    assert out.dtype == np.float32 and out.shape == (16, 16, 3)
