"""Fuzzing the three doors untrusted bytes come in by: image files, config YAML, model files.

Whatever hypothesis makes of them (1,000 cases each, derandomized so CI sees the same ones),
nothing escapes but i2i's own one-line errors (I2IError), and what is accepted is sane.
"""
from __future__ import annotations

import io as bytes_io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save

import i2i.nn
from i2i.checkpoint import load_model, load_training_state, read_header
from i2i.data.io import read_image, write_image
from i2i.errors import I2IError
from i2i.spec import spec_for_network
from i2i.training import make_settings

FUZZ = settings(max_examples=1000, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def one_line_error(call) -> None:
    try:
        call()
    except I2IError as error:
        assert "\n" not in str(error), str(error)


# ----------------------------------------------------------------------------- images


def _seeds(folder: Path) -> list[bytes]:
    """Small real files of every kind i2i reads."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    files = []
    for name, image, options in (("a.png", Image.fromarray(rgb), {}),
                                 ("b.png", Image.fromarray(rgb).convert("P"), {}),
                                 ("c.png", Image.fromarray(rgb).convert("LA"), {}),
                                 ("d.jpg", Image.fromarray(rgb), {"quality": 80}),
                                 ("e.jpg", Image.fromarray(rgb).convert("CMYK"), {}),
                                 ("f.bmp", Image.fromarray(rgb), {}),
                                 ("g.tif", Image.fromarray(rgb), {})):
        buffer = bytes_io.BytesIO()
        image.save(buffer, format=Image.registered_extensions()[Path(name).suffix], **options)
        files.append(buffer.getvalue())
    sixteen = (rgb.astype(np.uint16) * 257)
    for name in ("h.png", "i.tif"):
        write_image(folder / name, sixteen, alpha=sixteen[..., 0])
        files.append((folder / name).read_bytes())
    return files


@pytest.fixture(scope="module")
def image_seeds(tmp_path_factory) -> list[bytes]:
    return _seeds(tmp_path_factory.mktemp("seeds"))


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the corrupt tags it skips
@FUZZ
@given(data=st.data())
def test_fuzz_image_decoding(tmp_path, image_seeds, data):
    seed = data.draw(st.sampled_from(image_seeds))
    kind = data.draw(st.sampled_from(["truncate", "flip", "splice", "random"]))
    if kind == "truncate":
        blob = seed[:data.draw(st.integers(0, len(seed)))]
    elif kind == "flip":
        blob = bytearray(seed)
        for _ in range(data.draw(st.integers(1, 8))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
        blob = bytes(blob)
    elif kind == "splice":
        cut = data.draw(st.integers(0, len(seed)))
        blob = seed[:cut] + data.draw(st.binary(max_size=64)) + seed[cut:]
    else:
        blob = data.draw(st.binary(max_size=256))
    path = tmp_path / f"x{data.draw(st.sampled_from(['.png', '.jpg', '.tif', '.bmp', '.webp', '.avif']))}"
    path.write_bytes(blob)
    try:
        image = read_image(path)
    except I2IError as error:
        assert "\n" not in str(error) and str(path) in str(error)
        return
    assert image.pixels.ndim == 3 and image.pixels.shape[2] in (1, 3)
    assert image.pixels.dtype in (np.uint8, np.uint16) and min(image.pixels.shape[:2]) >= 1


# ----------------------------------------------------------------------------- config files

YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6)
KEYS = ["lr", "batch_size", "image_size", "netG", "norm", "dropout", "max_steps", "lr_policy", "preprocess",
        "scale", "stage", "gan", "pixel_weight", "ema", "augment", "direction", "seed", "d_width", "unknown_key"]


@FUZZ
@given(pipeline=st.sampled_from(["cyclegan", "pix2pix", "srgan"]),
       text=st.one_of(st.text(max_size=80),
                      st.dictionaries(st.sampled_from(KEYS), YAML_VALUES, max_size=4).map(json.dumps)))
def test_fuzz_config_files(tmp_path, pipeline, text):
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    one_line_error(lambda: make_settings(pipeline, {}, config_file=path))


# ----------------------------------------------------------------------------- model files and checkpoints


@pytest.fixture(scope="module")
def model_parts():
    torch.manual_seed(0)
    net = i2i.nn.create("srresnet", width=4, num_blocks=1, scale=2)
    tensors = {f"G.{k}": v.contiguous() for k, v in net.state_dict().items()}
    return tensors, spec_for_network(net, "srgan").to_dict()


ODD = st.one_of(st.none(), st.booleans(), st.integers(-2**64, 2**64), st.floats(), st.text(max_size=6),
                st.lists(st.integers(-2, 300), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


@FUZZ
@given(data=st.data())
def test_fuzz_model_metadata(tmp_path, model_parts, data):
    tensors, spec = model_parts
    arch = {"name": "srresnet", "width": 4, "num_blocks": 1, "scale": 2}
    target = data.draw(st.sampled_from(["arch", "spec", "metadata"]))
    metadata = {"format": "i2i-model/1", "pipeline": "srgan"}
    if target == "arch":
        key = data.draw(st.sampled_from(["name", "width", "num_blocks", "scale", "in_channels", "growth", "extra"]))
        arch[key] = data.draw(st.sampled_from(i2i.nn.available()) if key == "name" else ODD)
    elif target == "spec":
        spec = {**spec, data.draw(st.sampled_from([*spec, "extra"])): data.draw(ODD)}
    else:
        metadata[data.draw(st.sampled_from(["format", "pipeline", "settings"]))] = data.draw(st.text(max_size=20))
    metadata["networks"] = json.dumps({"G": arch})
    if data.draw(st.booleans()) or target != "metadata":
        metadata["spec"] = json.dumps(spec)
    path = tmp_path / "m.safetensors"
    path.write_bytes(save(tensors, metadata=metadata))
    for load in (read_header, load_model):
        one_line_error(lambda: load(path))


@FUZZ
@given(data=st.data())
def test_fuzz_model_and_checkpoint_bytes(tmp_path, model_parts, data):
    tensors, spec = model_parts
    model = save(tensors, metadata={"format": "i2i-model/1", "pipeline": "srgan",
                                    "networks": json.dumps({"G": {"name": "srresnet", "width": 4, "num_blocks": 1,
                                                                  "scale": 2}}),
                                    "spec": json.dumps(spec)})
    buffer = bytes_io.BytesIO()
    torch.save({"step": 3, "networks": {"G": {k[2:]: v for k, v in tensors.items()}}}, buffer)
    blob = bytearray(data.draw(st.sampled_from([model, buffer.getvalue()])))
    for _ in range(data.draw(st.integers(1, 6))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    blob = bytes(blob[:data.draw(st.integers(1, len(blob)))])
    (tmp_path / "m.safetensors").write_bytes(blob)
    (tmp_path / "s.pt").write_bytes(blob)
    one_line_error(lambda: load_model(tmp_path / "m.safetensors"))
    one_line_error(lambda: load_training_state(tmp_path / "s.pt"))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    import pickle

    class Boom:
        def __reduce__(self):
            return (exec, ("open('pwned', 'w').write('x')",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"step": Boom()}))
    with pytest.raises(I2IError, match="evil.pt"):
        load_training_state(tmp_path / "evil.pt")
    assert not Path("pwned").exists()
