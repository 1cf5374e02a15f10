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
