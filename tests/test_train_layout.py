"""--channels-last: the memory layout a run trains in, chosen without disturbing the run."""
from __future__ import annotations

import time
from pathlib import Path

import torch
import yaml
from click.testing import CliRunner
from conftest import noise, save
from torch import nn

from i2i.cli import main
from i2i.training.layout import choose_channels_last

CPU = torch.device("cpu")
TINY_PIX2PIX = {"netG": "unet_32", "width": 4, "ndf": 4, "image_size": 32, "load_size": 36, "num_workers": 0}


def paired(root: Path, n: int) -> Path:
    """`n` small random PNG pairs in root/A and root/B."""
    for side in ("A", "B"):
        for i in range(n):
            save(root / side / f"img_{i}.png", noise(40, 40))
    return root


def is_channels_last(net: nn.Module) -> bool:
    """Every conv weight in NHWC (the nets here have no 1x1 kernels, which are both layouts at once)."""
    return all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
               for p in net.parameters() if p.dim() == 4)


def is_contiguous(net: nn.Module) -> bool:
    return all(p.is_contiguous() for p in net.parameters())


class SlowContiguous(nn.Module):
    """A conv net that is slower while its weights are contiguous, with BatchNorm statistics
    and dropout (randomness) for the probe to leave as they were."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv.weight.is_contiguous():
            time.sleep(0.12)
        else:
            time.sleep(0.06)
        return self.drop(self.norm(self.conv(x)))


def test_on_and_off_put_every_network_in_that_layout():
    nets = {"G": nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 3, 3)), "D": nn.Conv2d(3, 1, 4)}
    probe = torch.rand(1, 3, 16, 16)
    assert choose_channels_last("on", nets, nets["G"], probe, CPU, "fp32") is True
    assert all(is_channels_last(net) for net in nets.values())
    assert choose_channels_last("off", nets, nets["G"], probe, CPU, "fp32") is False
    assert all(is_contiguous(net) for net in nets.values())


def test_auto_keeps_contiguous_for_a_tiny_network():
    """Too small for the layout to matter: no race, so tiny runs train the same every time."""
    nets = {"G": nn.Conv2d(3, 3, 3, padding=1)}
    assert choose_channels_last("auto", nets, nets["G"], torch.rand(1, 3, 8, 8), CPU, "fp32") is False
    assert is_contiguous(nets["G"])


def test_auto_measures_on_the_cpu_and_leaves_the_run_untouched():
    torch.manual_seed(3)
    net = SlowContiguous().train()
    nets = {"G": net, "D": nn.Conv2d(3, 1, 4)}
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    probe = torch.rand(2, 3, 8, 8)
    rng = torch.get_rng_state()

    assert choose_channels_last("auto", nets, net, probe, CPU, "fp32") is True
    assert is_channels_last(net) and is_channels_last(nets["D"])  # every network, not only the probed one
    assert torch.equal(torch.get_rng_state(), rng)  # dropout's draws were the probe's own
    for key, value in net.state_dict().items():  # weights and BatchNorm's running statistics
        assert torch.equal(value, weights[key]), key
    assert all(p.grad is None for n in nets.values() for p in n.parameters())
    assert net.training


def test_a_run_records_its_layout_and_a_resume_keeps_it(tmp_path):
    data = paired(tmp_path / "data", n=2)
    run = tmp_path / "run"
    flags = ["train", "pix2pix", "--data", str(data), "--out", str(run), "--batch-size", "2", "--checkpoint-every", "2",
             *[f"--{k.replace('_', '-')}={v}" for k, v in TINY_PIX2PIX.items()]]
    result = CliRunner().invoke(main, [*flags, "--max-steps", "2", "--channels-last", "on"])
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["channels_last"] == "on" and saved["channels_last_resolved"] is True
    assert ", channels_last," in result.output

    # an `auto` run resumed keeps what it chose (here, as if it had measured channels_last)
    saved.update(channels_last="auto")
    (run / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    result = CliRunner().invoke(main, [*flags, "--max-steps", "3", "--resume"])
    assert result.exit_code == 0, result.output
    assert ", channels_last," in result.output
    assert yaml.safe_load((run / "config.yaml").read_text())["channels_last_resolved"] is True

    from i2i.checkpoint import load_model

    assert load_model(run / "model.safetensors").networks["G"] is not None  # saved contiguous, loads
