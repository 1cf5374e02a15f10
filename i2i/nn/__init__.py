"""i2i.nn: every network i2i trains or loads, built by name from one registry.

    net = i2i.nn.create("resnet_9blocks", norm="instance")
    same = i2i.nn.create(**net.arch)          # what a checkpoint stores to rebuild it

A created module carries:
    arch          {"name": name, **kwargs as passed}
    in_channels, out_channels
    scale         output size / input size (1 for translation, the SR factor for SR nets)
    size_multiple input H and W must be multiples of it (resnet 4, unet_N 2**log2(N), SR 1,
                  rrdbnet x2 / x1: 2 / 4; vgg128: the exact input size)

State-dict keys are the reference implementations' (junyanz pytorch-CycleGAN-and-pix2pix,
BasicSR), so their checkpoints load with strict=True. A new network is one function decorated
with `@register("name")` whose keyword arguments are the network's options.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

from i2i.errors import UsageError, did_you_mean

__all__ = ["available", "create", "defaults", "register", "rebuild", "init_weights"]

Builder = Callable[..., nn.Module]
_REGISTRY: dict[str, Builder] = {}


def register(name: str) -> Callable[[Builder], Builder]:
    """Decorator: make `create(name, **kwargs)` call this builder (keyword-only options)."""

    def decorate(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"network {name!r} is registered twice")
        _REGISTRY[name] = builder
        return builder

    return decorate


def available() -> list[str]:
    """The registered network names, sorted."""
    return sorted(_REGISTRY)


def defaults(name: str) -> dict[str, Any]:
    """The options a network takes and their default values."""
    params = inspect.signature(_builder(name)).parameters.values()
    return {p.name: p.default for p in params}


def create(name: str, **kwargs: Any) -> nn.Module:
    """Build network `name` with `kwargs`; one-line UsageError for an unknown name or option."""
    builder = _builder(name)
    valid = list(inspect.signature(builder).parameters)
    unknown = [k for k in kwargs if k not in valid]
    if unknown:
        hint = did_you_mean(unknown[0], valid)
        raise UsageError(f"{name} has no option {', '.join(map(repr, unknown))}; "
                         f"{hint + ' ' if hint else ''}valid options: {', '.join(valid)}")
    net = builder(**kwargs)
    net.arch = {"name": name, **kwargs}
    return net


def rebuild(arch: dict[str, Any]) -> nn.Module:
    """The network a stored `arch` describes, without drawing initial weights where the builder
    takes an init scheme (stored weights replace them); `net.arch` stays the stored one."""
    kwargs = dict(arch)
    name = kwargs.pop("name")
    if "init" not in defaults(name):
        return create(name, **kwargs)
    net = create(name, **{**kwargs, "init": None})
    net.arch = dict(arch)
    return net


def _builder(name: str) -> Builder:
    if name not in _REGISTRY:
        raise UsageError(f"unknown network {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


# The builders register themselves on import; `register` must exist before these lines.
from i2i.nn import discriminators, generators  # noqa: E402,F401
from i2i.nn.init import init_weights  # noqa: E402
