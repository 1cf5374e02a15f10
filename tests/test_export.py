"""`i2i models export MODEL --format onnx`: every generator kind, exported with dynamic batch,
height and width, gives in onnxruntime what it gives in torch (within 1e-3) on two sizes the
export never saw (one of them a batch of 2), and the file records its opset and model spec."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from i2i.cli import main

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'i2i[export]')")
onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'i2i[export]')")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install 'i2i[export]')")

SR = {"pipeline": "srgan", "input_range": (0.0, 1.0), "output_range": (0.0, 1.0)}
# kind -> (architecture, spec fields, two (batch, height, width) the export never saw)
KINDS = {
    "resnet": ({"name": "resnet_6blocks", "width": 4, "norm": "instance"}, {"pipeline": "cyclegan"},
               [(2, 20, 36), (1, 44, 12)]),
    "unet": ({"name": "unet_32", "width": 2, "norm": "batch", "dropout": True},
             {"pipeline": "pix2pix", "test_mode": "train"}, [(2, 32, 64), (1, 96, 32)]),
    "srresnet": ({"name": "srresnet", "width": 4, "num_blocks": 1, "scale": 4}, SR, [(2, 9, 13), (1, 21, 6)]),
    "rrdbnet": ({"name": "rrdbnet", "width": 4, "num_blocks": 1, "growth": 4, "scale": 2}, SR,
                [(2, 10, 14), (1, 6, 22)]),
    "srvggnet_compact": ({"name": "srvggnet_compact", "width": 4, "num_blocks": 1, "scale": 4}, SR,
                         [(2, 7, 11), (1, 19, 5)]),
}


def run_cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args], prog_name="i2i")
    return result.exit_code, result.output


def model_file(tmp_path, arch: dict, fields: dict):
    import i2i.nn
    from i2i.checkpoint import save_model
    from i2i.spec import spec_for_network

    torch.manual_seed(0)
    net = i2i.nn.create(**arch)
    for name, buffer in net.named_buffers():  # BatchNorm statistics other than the defaults
        if name.endswith("running_mean"):
            buffer.uniform_(-0.1, 0.1)
        elif name.endswith("running_var"):
            buffer.uniform_(0.5, 1.5)
    path = tmp_path / f"{arch['name']}.safetensors"
    save_model(path, {"G": net}, spec_for_network(net, **fields))
    return path, net.eval()


# Every kind with the default (TorchScript) exporter; the dynamo one takes 5-10 s a network, so it
# gets the one with the fewest layers (it handles the others too: i2i/export.py).
CASES = [(kind, "torchscript") for kind in KINDS] + [("srvggnet_compact", "dynamo")]


@pytest.mark.parametrize("kind,exporter", CASES)
def test_onnx_matches_torch_on_unseen_sizes(tmp_path, kind, exporter):
    arch, fields, sizes = KINDS[kind]
    path, net = model_file(tmp_path, arch, fields)
    out = tmp_path / "exported.onnx"
    code, output = run_cli("models", "export", path, "--format", "onnx", "--out", out, "--exporter", exporter)
    assert code == 0, output
    assert "ONNX opset 18" in output
    if fields.get("test_mode") == "train":
        assert "exported in eval mode" in output

    proto = onnx.load(str(out))
    metadata = {p.key: p.value for p in proto.metadata_props}
    assert metadata["i2i.exporter"].startswith(f"torch.onnx {exporter} ")
    assert metadata["i2i.opset"] == "18" and any(o.version == 18 for o in proto.opset_import if o.domain == "")
    assert json.loads(metadata["i2i.arch"]) == arch
    spec = json.loads(metadata["i2i.spec"])
    assert spec["size"]["multiple"] == net.size_multiple and spec["scale"] == net.scale
    dims = [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "", "height", "width"]

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for batch, height, width in sizes:
        x = torch.rand(batch, net.in_channels, height, width) * 2 - 1
        with torch.no_grad():
            expected = net(x).numpy()
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        assert got.shape == expected.shape == (batch, net.out_channels, height * net.scale, width * net.scale)
        assert np.abs(got - expected).max() <= 1e-3


def test_default_output_and_bad_model(tmp_path):
    code, output = run_cli("models", "export", tmp_path / "absent.safetensors")
    assert code == 1 and output.count("\n") == 1 and "absent.safetensors: model file not found" in output
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    code, output = run_cli("models", "export", tmp_path / "junk.safetensors")
    assert code == 1 and "junk.safetensors" in output and "Traceback" not in output
    assert not (tmp_path / "junk.onnx").exists()

    from i2i.export import default_output

    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").write_bytes(b"")
    assert default_output(tmp_path / "junk.safetensors") == tmp_path / "junk.onnx"
    assert default_output(run) == run / "model.onnx"
    assert str(default_output("horse2zebra")) == "horse2zebra.onnx"
