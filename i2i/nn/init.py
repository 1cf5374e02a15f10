"""Weight initialisation: the CycleGAN reference's schemes and BasicSR's scaled Kaiming.

CycleGAN/pix2pix networks are initialised after construction with `init_weights` (the
reference's `init_net`, normal 0.02 by default). BasicSR's SR networks initialise themselves in
their constructors with `scaled_kaiming_` (Kaiming normal times 0.1 for residual branches), and
must not be re-initialised with the CycleGAN scheme.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn
from torch.nn import init as torch_init

from i2i.errors import UsageError

INIT_SCHEMES = ("normal", "xavier", "kaiming", "orthogonal")

_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
             nn.ConvTranspose3d, nn.Linear)


def check_init(init: str | None) -> None:
    """One-line UsageError for an unknown scheme (None = keep PyTorch's defaults)."""
    if init is not None and init not in INIT_SCHEMES:
        raise UsageError(f"init must be one of {', '.join(INIT_SCHEMES)} or None, got {init!r}")


def reference_init(net: nn.Module, init: str | None, gain: float) -> nn.Module:
    """`init_weights(net, init, gain)`, or nothing for init=None (weights loaded right after);
    an unknown scheme is `check_init`'s one-line error."""
    check_init(init)
    return net if init is None else init_weights(net, init, gain)


def init_weights(net: nn.Module, scheme: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise `net` in place as the reference does; returns `net` for chaining.

    Conv / ConvTranspose / Linear: weights by `scheme` (normal N(0, gain), xavier_normal with
    gain, kaiming_normal fan_in with a=0 (gain unused, as in the reference), orthogonal with
    gain), biases 0. BatchNorm2d: weight N(1, gain), bias 0. Other modules (InstanceNorm, ...)
    are left alone. Modules are visited in `nn.Module.apply` order, like the reference, so a
    seeded init draws the same numbers.
    """
    if scheme not in INIT_SCHEMES:
        raise UsageError(f"init scheme must be one of {', '.join(INIT_SCHEMES)}, got {scheme!r}")

    @torch.no_grad()
    def init_module(m: nn.Module) -> None:
        if isinstance(m, _WEIGHTED):
            if scheme == "normal":
                torch_init.normal_(m.weight, 0.0, gain)
            elif scheme == "xavier":
                torch_init.xavier_normal_(m.weight, gain=gain)
            elif scheme == "kaiming":
                torch_init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                torch_init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None:
                torch_init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            torch_init.normal_(m.weight, 1.0, gain)
            torch_init.zeros_(m.bias)

    net.apply(init_module)
    return net


@torch.no_grad()
def scaled_kaiming_(modules: nn.Module | Iterable[nn.Module], scale: float = 1.0,
                    bias_fill: float = 0.0) -> None:
    """BasicSR's `default_init_weights`: Kaiming normal (fan_in, a=0) times `scale`, bias filled.

    Small `scale` (0.1) keeps deep residual stacks close to identity at the start of training.
    Covers every Conv2d / Linear inside the given modules; BatchNorm gets weight 1, bias fill.
    """
    if isinstance(modules, nn.Module):
        modules = [modules]
    for module in modules:
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                torch_init.kaiming_normal_(m.weight)
                m.weight.mul_(scale)
                if m.bias is not None:
                    m.bias.fill_(bias_fill)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                torch_init.constant_(m.weight, 1.0)
                if m.bias is not None:
                    m.bias.fill_(bias_fill)
