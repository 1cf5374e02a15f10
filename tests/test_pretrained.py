"""The shipped srresnet-x4 reaches its published targets on Set5 and Set14 (x4, PSNR-Y)."""
from __future__ import annotations

import pytest

from i2i import zoo
from i2i.evaluate import evaluate_model

TARGETS = {"Set5": 31.5, "Set14": 28.1}  # issue 7: better than VDSR on the same 291 training images


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_srresnet_x4_reaches_targets(shared_dir, name):
    if "srresnet-x4" not in zoo.registry():
        pytest.skip("srresnet-x4 not registered")
    result = evaluate_model("srresnet-x4", shared_dir / "data" / "sr" / name, 4, device="cpu", precision="fp32")
    assert result["n_images"] == {"Set5": 5, "Set14": 14}[name]
    assert result["psnr_y"] >= TARGETS[name]
    # the registry's figures are what `i2i eval` measures
    assert result["psnr_y"] == pytest.approx(zoo.registry()["srresnet-x4"].metrics[name]["psnr_y"], abs=5e-4)
