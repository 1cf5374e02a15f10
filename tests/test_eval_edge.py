"""`i2i eval MODEL DATA` at the edges: a model that reconstructs some HR images exactly."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from i2i.cli import main

from conftest import noise, save


def _upsampling_model(path: Path, scale: int) -> Path:
    """An SRResNet with every weight zero: its output is the bilinear upsampling of its input
    (the network's skip), so a flat image comes back exactly and a noisy one does not."""
    import i2i.nn
    from i2i.checkpoint import save_model
    from i2i.spec import spec_for_network

    net = i2i.nn.create("srresnet", width=4, num_blocks=1, scale=scale)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.zero_()
    save_model(path, {"G": net}, spec_for_network(net, "srgan", input_range=(0, 1), output_range=(0, 1)))
    return path


def test_eval_model_mean_psnr_is_over_the_images_not_reconstructed_exactly(tmp_path: Path) -> None:
    """One flat HR image made the mean PSNR-Y of the whole set inf."""
    model = _upsampling_model(tmp_path / "model.safetensors", 4)
    save(tmp_path / "hr/flat.png", np.full((24, 24, 3), 77, np.uint8))
    for name in ("one", "two"):
        save(tmp_path / f"hr/{name}.png", noise(24, 24))
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(main, ["eval", str(model), str(tmp_path / "hr"), "--scale", "4", "--device", "cpu",
                                       "--json", str(out)])
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    finite = [scores["per_image"][name]["psnr_y"] for name in ("one", "two")]
    assert scores["per_image"]["flat"]["psnr_y"] is None and all(math.isfinite(v) for v in finite)
    assert scores["psnr_y"] == pytest.approx(np.mean(finite)) and scores["n_exact"] == 1
    table = result.stdout.splitlines()
    assert table[1].split()[:2] == ["flat", "inf"]
    assert table[-3].split()[:3] == ["mean", "(3)", f"{np.mean(finite):.3f}"]
    assert table[-2] == "PSNR-Y mean over 2 of 3 images: 1 reconstructed exactly (inf) left out"
    assert table[-1] == f"wrote {out}"


def test_eval_reads_the_sr_layouts_training_reads(tmp_path: Path) -> None:
    """`i2i eval MODEL pairs` on what `i2i data derive sr` wrote (B = HR, A = LR), or on
    DATA/HR + DATA/LR, scores the LR files there, as `--lr` would; it said 'no images found'."""
    model = _upsampling_model(tmp_path / "model.safetensors", 4)
    for name in ("one", "two"):
        save(tmp_path / f"photos/{name}.png", noise(32, 40))
    runner = CliRunner()
    assert runner.invoke(main, ["data", "derive", "sr", str(tmp_path / "photos"), str(tmp_path / "pairs")]).exit_code == 0
    (tmp_path / "basicsr").mkdir()
    (tmp_path / "pairs/B").rename(tmp_path / "basicsr/HR")
    (tmp_path / "pairs/A").rename(tmp_path / "basicsr/LR")
    for name in ("one", "two"):  # an LR that differs from bicubic, so using it shows in the scores
        save(tmp_path / f"basicsr/LR/{name}.png", noise(8, 10))

    def scores(*args: str) -> dict:
        out = tmp_path / "scores.json"
        result = runner.invoke(main, ["eval", str(model), *args, "--scale", "4", "--device", "cpu", "--json", str(out)])
        assert result.exit_code == 0, result.output
        return json.loads(out.read_text())

    layout = scores(str(tmp_path / "basicsr"))
    explicit = scores(str(tmp_path / "basicsr/HR"), "--lr", str(tmp_path / "basicsr/LR"))
    bicubic = scores(str(tmp_path / "basicsr/HR"))
    assert layout["per_image"] == explicit["per_image"] != bicubic["per_image"]
    assert layout["lr"] == str(tmp_path / "basicsr/LR") and bicubic["lr"] is None


def test_a_bad_file_is_found_before_the_model_runs(tmp_path: Path, monkeypatch) -> None:
    """One unreadable file last in the folder: eval scored every other image (minutes on a real
    set) and then threw the scores away; now it is one line before the first forward pass."""
    from i2i.infer.translator import Translator

    model = _upsampling_model(tmp_path / "model.safetensors", 4)
    for name in ("a", "b", "c"):
        save(tmp_path / f"hr/{name}.png", noise(24, 24))
    (tmp_path / "hr/zz_text.png").write_text("not an image")
    runs = []
    forward = Translator.__call__
    monkeypatch.setattr(Translator, "__call__", lambda self, *a, **k: runs.append(1) or forward(self, *a, **k))
    for command in (["eval", str(model), "--device", "cpu"], ["eval", "bicubic"]):
        result = CliRunner().invoke(main, [*command, str(tmp_path / "hr"), "--scale", "4"])
        assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
        assert result.output.startswith(f"error: {tmp_path / 'hr/zz_text.png'}: ")
    assert runs == []
