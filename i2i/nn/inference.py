"""How a trained network runs at test time: layer swaps and modes that change no weights.

* `use_fast_instance_norm`: InstanceNorm2d (no running stats) as group_norm with one group
  per channel: the same result, but group_norm has channels_last and bf16 kernels where
  instance_norm copies to a contiguous layout and back.
* `use_batch_statistics`: the pix2pix paper's and the reference test.py's test mode (without
  `--eval`): BatchNorm normalises each input by its own statistics and dropout stays on, as
  in training. Running statistics are neither used nor updated, so the weights stay as loaded.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FastInstanceNorm(nn.Module):
    """nn.InstanceNorm2d without running stats, computed as group_norm (one group per channel)."""

    def __init__(self, norm: nn.InstanceNorm2d):
        super().__init__()
        self.eps = norm.eps
        self.weight, self.bias = norm.weight, norm.bias  # None unless affine

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, x.shape[1], self.weight, self.bias, self.eps)


def use_fast_instance_norm(net: nn.Module) -> None:
    """Swap, in place, every InstanceNorm2d that normalises by the instance's own statistics."""
    for name, child in net.named_children():
        if isinstance(child, nn.InstanceNorm2d) and not child.track_running_stats:
            setattr(net, name, FastInstanceNorm(child))
        else:
            use_fast_instance_norm(child)


def normalises_per_image(net: nn.Module) -> bool:
    """Whether an InstanceNorm normalises by the input's own statistics: then a tile of an image
    gets other statistics than the whole, and tiling changes the output."""
    return any(isinstance(m, nn.InstanceNorm2d) and not m.track_running_stats for m in net.modules())


def is_stochastic_at_test(net: nn.Module) -> bool:
    """Whether the training-time test mode changes anything: BatchNorm or dropout layers."""
    return any(isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd))
               for m in net.modules())


def use_batch_statistics(net: nn.Module) -> None:
    """Put `net` (in place) in the reference's training-time test mode.

    BatchNorm layers run in training mode without tracking (`track_running_stats=False`:
    PyTorch then normalises by the batch's statistics and leaves the running ones alone);
    dropout layers run in training mode. Everything else stays in eval mode.
    """
    net.eval()
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.train()
            module.track_running_stats = False
        elif isinstance(module, nn.modules.dropout._DropoutNd):
            module.train()
