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
with `@register("name")` whose keyword arguments are the network's options; the module it
returns must set the four attributes above (`create` refuses one that does not: the trainer,
model files and inference read them). Your own generator, trained by a pipeline:

    @i2i.nn.register("my_unet")
    def my_unet(*, in_channels: int = 3, out_channels: int = 3, width: int = 64, norm: str = "instance",
                dropout: bool = False, init: str | None = "normal", init_gain: float = 0.02) -> nn.Module:
        net = MyUnet(in_channels, out_channels, width)   # sets in_channels, out_channels, scale, size_multiple
        return net if init is None else i2i.nn.init_weights(net, init, init_gain)

    i2i.train("pix2pix", {"netG": "my_unet", ...})

CycleGAN and pix2pix pass a generator exactly these options (srgan: in_channels, out_channels,
width, scale and its --arch's own); `init=None` is how a model file rebuilds it before loading
its weights. The registry lives in the process: a model file of your own network loads only
where the module that registers it was imported first (`i2i.load_model(...).translate_folder`
in your script; the `i2i` command does not know it).
"""
from __future__ import annotations

import inspect
import numbers
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
    _check_built(name, net)
    net.arch = {"name": name, **kwargs}
    return net


#: What every created network carries (the module docstring): the trainer sizes its crops and
#: model files their contract by them, so a builder that forgets one fails here, not after training.
REQUIRED_ATTRIBUTES = ("in_channels", "out_channels", "scale", "size_multiple")


def _check_built(name: str, net: object) -> None:
    """A one-line UsageError for a builder that returned no module or one without the attributes."""
    if not isinstance(net, nn.Module):
        raise UsageError(f"network {name!r}: its builder returned {type(net).__name__}, not a torch.nn.Module")
    missing = [attr for attr in REQUIRED_ATTRIBUTES  # numpy's integers count: np.int64(4) is a scale
               if not isinstance(getattr(net, attr, None), numbers.Integral)]
    if missing:
        raise UsageError(f"network {name!r}: its builder returned a {type(net).__name__} without integer "
                         f"{', '.join(missing)}; set {', '.join(REQUIRED_ATTRIBUTES)} on it (see i2i.nn)")
    for attr in REQUIRED_ATTRIBUTES:  # Python ints from here on: a model file's spec is JSON, which takes no np.int64
        if type(value := getattr(net, attr)) is not int:
            try:
                setattr(net, attr, int(value))
            except AttributeError:  # a read-only property: read as it is
                pass


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
        hint = did_you_mean(name, available()) if isinstance(name, str) else ""
        own = "" if hint else " (a network of your own: import the module that registers it first)"
        raise UsageError(f"unknown network {name!r}{own}; {hint + ' ' if hint else ''}available: {', '.join(available())}")
    return _REGISTRY[name]


# The builders register themselves on import; `register` must exist before these lines.
from i2i.nn import discriminators, generators  # noqa: E402,F401
from i2i.nn.init import init_weights  # noqa: E402
