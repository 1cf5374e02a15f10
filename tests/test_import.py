"""`i2i models import`: foreign checkpoints as the reference code writes them become i2i model
files that translate as the reference does.

Parity: the golden state dicts (../shared/golden, made by the reference code) are written the way
the reference writes checkpoints (CycleGAN/pix2pix: `torch.save(net.cpu().state_dict(), path)`;
BasicSR: `torch.save({"params": ...})`), imported with the CLI, loaded with `i2i.load_model` and
run through i2i's inference (`translate_tensor`: range mapping, padding, crop, clamp) on the
golden inputs. The pixels then equal what the reference's test script writes from the golden
outputs (CycleGAN/pix2pix `util.tensor2im`: (y + 1) / 2 * 255 truncated to uint8; BasicSR
`tensor2img`: clamp to [0, 1], * 255, rounded) within 1 level. The golden inputs are the network
inputs at full size (64, 128 or 256 px, multiples of 4: what the reference's `--preprocess none`
path feeds), no flips; at 256x256 (unet_256) the default 256 crop path is the same input.
"""
from __future__ import annotations

import math
import pickle
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from conftest import golden_manifest, noise, save
from i2i.cli import main

CYCLEGAN_ITEMS = ["resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256"]
BASICSR_ITEMS = ["msrresnet", "rrdbnet"]


def run_cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args], prog_name="i2i")
    return result.exit_code, result.output


def golden(shared, family: str, name: str) -> tuple[dict, dict, dict]:
    item = golden_manifest(shared, family)["items"][name]
    folder = shared / "golden" / family
    return item, load_file(str(folder / item["files"]["weights"])), load_file(str(folder / item["files"]["io"]))


def import_file(tmp_path, checkpoint, *extra) -> tuple[str, object]:
    """Import with the CLI; (its output, the model file's path)."""
    out = tmp_path / "imported.safetensors"
    code, output = run_cli("models", "import", checkpoint, "--out", out, *extra)
    assert code == 0, output
    return output, out


def i2i_pixels(model_path, x_network: torch.Tensor, input_range: tuple[float, float]) -> tuple[torch.Tensor, np.ndarray]:
    """i2i's inference on a network-range input: ([0, 1] output, uint8 pixels as i2i writes them)."""
    import i2i
    from i2i.data import io

    translator = i2i.load_model(model_path, device="cpu", precision="fp32", test_mode="eval")
    lo, hi = input_range
    y, _ = translator.translate_tensor((x_network - lo) / (hi - lo))
    return y, io.from_tensor(y[0], 8)


@pytest.mark.parametrize("name", CYCLEGAN_ITEMS)
def test_reference_checkpoint_translates_like_reference_test(shared_dir, tmp_path, name):
    item, weights, io_tensors = golden(shared_dir, "cyclegan", name)
    checkpoint = tmp_path / f"latest_net_G_{name}.pth"
    torch.save(weights, checkpoint)  # the reference: torch.save(net.cpu().state_dict(), path)
    output, model = import_file(tmp_path, checkpoint)

    from i2i.checkpoint import read_header

    header = read_header(model)
    arch, c = header.archs["G"], item["constructor"]
    assert (arch["name"], arch["width"], arch["norm"]) == (c["netG"], c["ngf"], c["norm"])
    assert (arch["in_channels"], arch["out_channels"]) == (c["input_nc"], c["output_nc"])
    if arch["name"].startswith("resnet"):  # the ResNet block layout shows dropout; the U-Net's does not
        assert arch["dropout"] == c["use_dropout"]
        assert f"inferred: dropout {'on' if c['use_dropout'] else 'off'}" in output
    else:
        assert "assumed: dropout" in output
    assert header.spec.input_range == header.spec.output_range == (-1.0, 1.0)

    y, pixels = i2i_pixels(model, io_tensors["input"], (-1.0, 1.0))
    expected = io_tensors["output"]
    assert (y - (expected + 1) / 2).abs().max().item() < 1e-5
    reference = ((expected[0].permute(1, 2, 0).numpy() + 1) / 2.0 * 255.0).astype(np.uint8)  # util.tensor2im
    assert np.abs(pixels.astype(int) - reference.astype(int)).max() <= 1


@pytest.mark.parametrize("name", BASICSR_ITEMS)
def test_basicsr_checkpoint_translates_like_basicsr(shared_dir, tmp_path, name):
    item, weights, io_tensors = golden(shared_dir, "basicsr", name)
    checkpoint = tmp_path / f"net_g_{name}.pth"
    # BasicSR's save_network with param_key ["params", "params_ema"], as DataParallel leaves the keys;
    # "params" is a different net, so importing the wrong one fails the comparison.
    wrapped = {k: v for k, v in weights.items()}
    torch.save({"params": {f"module.{k}": v + 0.01 for k, v in wrapped.items()},
                "params_ema": {f"module.{k}": v for k, v in wrapped.items()}}, checkpoint)
    output, model = import_file(tmp_path, checkpoint)
    assert "inferred: weights from 'params_ema'" in output and "'module.' prefix removed" in output

    from i2i.checkpoint import read_header

    arch, c = read_header(model).archs["G"], item["constructor"]
    assert arch["width"] == c["num_feat"] and arch["num_blocks"] == c["num_block"]
    assert arch["scale"] == c.get("upscale", c.get("scale"))

    y, pixels = i2i_pixels(model, io_tensors["input"], (0.0, 1.0))
    expected = io_tensors["output"]
    assert (y - expected.clamp(0, 1)).abs().max().item() < 1e-5
    reference = (expected[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)  # tensor2img
    assert np.abs(pixels.astype(int) - reference.astype(int)).max() <= 1


def test_unet_batch_norm_assumes_reference_test_mode(shared_dir, tmp_path):
    _, weights, _ = golden(shared_dir, "cyclegan", "unet_128")
    checkpoint = tmp_path / "latest_net_G.pth"
    torch.save(weights, checkpoint)
    output, model = import_file(tmp_path, checkpoint, "--arch", "unet_128")
    from i2i.checkpoint import read_header

    header = read_header(model)
    assert header.spec.test_mode == "train" and header.archs["G"]["dropout"] is True
    assert "assumed: test mode 'train'" in output and "assumed: dropout on" in output


# ----------------------------------------------------------------------------- old ESRGAN, compact


def old_esrgan_keys(state: dict) -> dict:
    """RRDBNet keys -> the original ESRGAN repository's (RRDB_ESRGAN_x4.pth) layout."""
    blocks = len({k.split(".")[1] for k in state if k.startswith("body.")})
    tops = {"conv_first": "model.0", "conv_body": f"model.1.sub.{blocks}", "conv_up1": "model.3",
            "conv_up2": "model.6", "conv_hr": "model.8", "conv_last": "model.10"}
    old = {}
    for key, value in state.items():
        m = re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)\.(weight|bias)", key)
        if m:
            old[f"model.1.sub.{m[1]}.RDB{m[2]}.conv{m[3]}.0.{m[4]}"] = value
        else:
            name, leaf = key.rsplit(".", 1)
            old[f"{tops[name]}.{leaf}"] = value
    return old


def test_old_esrgan_layout(shared_dir, tmp_path):
    _, weights, io_tensors = golden(shared_dir, "basicsr", "rrdbnet")
    checkpoint = tmp_path / "RRDB_ESRGAN_x4.pth"
    torch.save(old_esrgan_keys(weights), checkpoint)
    output, model = import_file(tmp_path, checkpoint, "--arch", "rrdbnet")
    assert "original ESRGAN key layout" in output
    y, _ = i2i_pixels(model, io_tensors["input"], (0.0, 1.0))
    assert (y - io_tensors["output"].clamp(0, 1)).abs().max().item() < 1e-5


def compact_state(in_ch=3, width=6, num_conv=2, scale=4, seed=0) -> dict:
    """A state dict in Real-ESRGAN's SRVGGNetCompact key names (body.<i>; PReLU at odd i)."""
    g = torch.Generator().manual_seed(seed)
    state, i = {}, 0
    for conv_in in [in_ch] + [width] * num_conv:
        state[f"body.{i}.weight"] = torch.randn(width, conv_in, 3, 3, generator=g) * 0.2
        state[f"body.{i}.bias"] = torch.randn(width, generator=g) * 0.05
        state[f"body.{i + 1}.weight"] = torch.rand(width, generator=g) * 0.5
        i += 2
    state[f"body.{i}.weight"] = torch.randn(in_ch * scale * scale, width, 3, 3, generator=g) * 0.2
    state[f"body.{i}.bias"] = torch.randn(in_ch * scale * scale, generator=g) * 0.05
    return state


def compact_forward(state: dict, x: torch.Tensor, scale: int) -> torch.Tensor:
    """SRVGGNetCompact.forward as srvgg_arch.py computes it, written out with functionals."""
    convs = sorted(int(k.split(".")[1]) for k in state if k.endswith(".bias"))
    out = x
    for i in convs:
        out = F.conv2d(out, state[f"body.{i}.weight"], state[f"body.{i}.bias"], padding=1)
        if f"body.{i + 1}.weight" in state:
            out = F.prelu(out, state[f"body.{i + 1}.weight"])
    return F.pixel_shuffle(out, scale) + F.interpolate(x, scale_factor=scale, mode="nearest")


def test_real_esrgan_compact(tmp_path):
    state = compact_state(scale=4)
    checkpoint = tmp_path / "realesr-general-x4v3.pth"
    torch.save({"params": state}, checkpoint)
    output, model = import_file(tmp_path, checkpoint)
    assert "srvggnet_compact" in output and "x4" in output
    x = torch.rand(1, 3, 11, 9)  # >= 8 px: smaller images are padded to 8 (i2i's minimum), which moves borders
    y, _ = i2i_pixels(model, x, (0.0, 1.0))
    assert y.shape == (1, 3, 44, 36)
    assert (y - compact_forward(state, x, 4).clamp(0, 1)).abs().max().item() < 1e-5

    src, dst = tmp_path / "in" / "a.png", tmp_path / "out"
    save(src, noise(9, 5))
    code, text = run_cli("translate", model, src.parent, dst, "--device", "cpu")
    assert code == 0, text
    from PIL import Image

    assert Image.open(dst / "a.png").size == (20, 36)


def test_compact_scale_2_and_gray(tmp_path):
    state = compact_state(in_ch=1, width=4, num_conv=1, scale=2)
    checkpoint = tmp_path / "compact_x2.pth"
    torch.save(state, checkpoint)
    _, model = import_file(tmp_path, checkpoint)
    from i2i.checkpoint import read_header

    arch = read_header(model).archs["G"]
    assert (arch["scale"], arch["in_channels"], arch["num_blocks"], arch["width"]) == (2, 1, 1, 4)


# ----------------------------------------------------------------------------- files that are not


class _Payload:
    """A pickle that would create a file if unpickled with code execution."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _bad_files(tmp_path, shared) -> dict:
    good = tmp_path / "good.pth"
    _, weights, _ = golden(shared, "cyclegan", "resnet_9blocks")
    torch.save(weights, good)
    data = good.read_bytes()
    files = {
        "empty.pth": b"",
        "truncated.pth": data[: len(data) // 2],
        "random.pth": np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes(),
        "text.pth": b"hello, not weights\n",
        "hostile.pth": pickle.dumps({"x": _Payload(tmp_path / "PWNED")}, protocol=2),
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}}, tmp_path / "training.pth")
    torch.save({"conv1.weight": torch.zeros(8, 3, 7, 7), "fc.weight": torch.zeros(10, 8)}, tmp_path / "classifier.pth")
    broken = dict(weights)
    broken.pop("model.1.weight" if "model.1.bias" not in broken else "model.1.bias")
    torch.save(broken, tmp_path / "missing_tensor.pth")
    save_file({"a": torch.zeros(4)}, str(tmp_path / "whole.safetensors"))
    whole = (tmp_path / "whole.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(whole[:-8])
    return {
        "empty.pth": "empty", "truncated.pth": "truncated or corrupt", "random.pth": "not a PyTorch weights file",
        "text.pth": "not a PyTorch weights file", "hostile.pth": "refused", "training.pth": "not a bare state dict",
        "classifier.pth": "not a generator i2i can import", "missing_tensor.pth": "do not fit",
        "cut.safetensors": "broken safetensors", "absent.pth": "not found",
    }


def test_bad_files_give_one_line(shared_dir, tmp_path):
    for name, expected in _bad_files(tmp_path, shared_dir).items():
        out = tmp_path / f"{name}.safetensors"
        code, output = run_cli("models", "import", tmp_path / name, "--out", out)
        assert code == 1, (name, output)
        assert output.count("\n") == 1 and output.startswith("error: ") and str(tmp_path / name) in output, output
        assert expected in output, (name, output)
        assert "Traceback" not in output and not out.exists()
    assert not (tmp_path / "PWNED").exists()  # the hostile pickle ran nothing


def test_arch_must_match(shared_dir, tmp_path):
    _, weights, _ = golden(shared_dir, "cyclegan", "resnet_9blocks")
    torch.save(weights, tmp_path / "g.pth")
    code, output = run_cli("models", "import", tmp_path / "g.pth", "--out", tmp_path / "m.safetensors",
                           "--arch", "resnet_6blocks")
    assert code == 1 and "holds a resnet_9blocks, not the resnet_6blocks asked for" in output
    code, output = run_cli("models", "import", tmp_path / "g.pth", "--out", tmp_path / "m.safetensors", "--arch", "vgg")
    assert code == 1 and "unknown architecture 'vgg'" in output


def test_half_precision_weights_become_float32(tmp_path):
    state = {k: v.half() for k, v in compact_state(width=4, num_conv=1).items()}
    torch.save({"params_ema": state}, tmp_path / "half.pth")
    output, model = import_file(tmp_path, tmp_path / "half.pth")
    assert "float16" in output
    assert all(v.dtype == torch.float32 for v in load_file(str(model)).values())
    assert math.isclose(float(load_file(str(model))["G.body.0.bias"][0]), float(state["body.0.bias"][0]))


def test_published_cyclegan_file_with_old_instance_norm_statistics(tmp_path):
    """The reference's published CycleGAN generators were saved by PyTorch < 0.4: their
    InstanceNorm layers carry running_mean/running_var (and no weights). They are instance norm,
    not batch norm, and the statistics are dropped as the reference's loader drops them."""
    import i2i.nn

    net = i2i.nn.rebuild({"name": "resnet_6blocks", "width": 8, "norm": "instance"})
    state = net.state_dict()
    old = dict(state)
    for key in list(state):
        if key.endswith(".weight") and state[key].ndim == 4:
            norm = key.rsplit(".", 2)
            index = int(norm[-2]) + 1 if norm[-2].isdigit() else None
            if index is not None:
                prefix = f"{norm[0]}.{index}"
                if f"{prefix}.weight" not in state and not any(k.startswith(prefix + ".") for k in state):
                    old[f"{prefix}.running_mean"] = torch.zeros(state[key].shape[0])
                    old[f"{prefix}.running_var"] = torch.ones(state[key].shape[0])
    assert len(old) > len(state)  # the file really carries the old statistics
    checkpoint = tmp_path / "latest_net_G_A.pth"
    torch.save(old, checkpoint)
    output, model = import_file(tmp_path, checkpoint)
    assert "norm instance" in output and "PyTorch < 0.4" in output
    loaded = load_file(str(model))
    assert not any(k.endswith("running_mean") for k in loaded)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = net.eval()(x)
    y, _ = i2i_pixels(model, x, (-1.0, 1.0))
    torch.testing.assert_close(y * 2 - 1, expected.clamp(-1, 1), atol=1e-5, rtol=0)
