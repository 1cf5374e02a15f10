"""The model contract: what a model file promises about how its generator is to be run.

A pipeline writes one `ModelSpec` into every model file it saves; inference reads only it
(and the networks' weights). Every field is documented here, once.
"""
from __future__ import annotations

import dataclasses
import reprlib
from dataclasses import dataclass, field
from typing import Any, Mapping

from i2i.errors import I2IError, one_line

DIRECTIONS = ("AtoB", "BtoA")
TEST_MODES = ("train", "eval")
COLOR_SPACES = ("rgb", "lab")
TASKS = (None, "colorize", "colorize_lab", "sketch", "sr")


@dataclass(frozen=True)
class SizeRequirements:
    """What input sizes the generator takes. Inference pads an image at the bottom/right up
    to them (reflect, or replicate where the image is too small) and crops the output back."""

    minimum: int = 8    # smallest padded side (a ResNet's 1/4 bottleneck must reflect-pad)
    multiple: int = 1   # height and width must be multiples of this (a U-Net: 2**depth)

    def padded(self, height: int, width: int) -> tuple[int, int]:
        """The smallest (height, width) at least this size that the generator takes."""
        def up(value: int) -> int:
            return max(-(-value // self.multiple) * self.multiple, self.minimum)

        return up(height), up(width)


@dataclass(frozen=True)
class ModelSpec:
    """How to run the generator(s) of a model file."""

    pipeline: str
    """The pipeline that trained it ("cyclegan", "pix2pix", "srgan"): for messages only."""
    directions: Mapping[str, str] = field(default_factory=lambda: {"AtoB": "G"})
    """Direction ("AtoB", "BtoA") -> name of the network in the file that translates it."""
    default_direction: str = "AtoB"
    """The direction used when none is asked for: the one the model was trained for."""
    input_range: tuple[float, float] = (-1.0, 1.0)
    """The network's input pixel range; [0, 1] images map onto it linearly ((-1, 1) for
    CycleGAN and pix2pix, (0, 1) for the SR nets, as BasicSR)."""
    output_range: tuple[float, float] = (-1.0, 1.0)
    """The network's output range, mapped back to [0, 1] and clamped."""
    in_channels: int = 3
    """Channels the AtoB network takes (BtoA's takes `out_channels`). Gray images are
    replicated for 3-channel networks; colour images become their BT.601 luminance for
    1-channel ones."""
    out_channels: int = 3
    """Channels the AtoB network returns."""
    scale: int = 1
    """Output size / input size (the SR factor; 1 for translation)."""
    size: SizeRequirements = SizeRequirements()
    """Input sizes the generator takes (inference pads to them)."""
    color_space: str = "rgb"
    """"rgb", or "lab": the reference's colorization, where the network takes L/100 and
    returns ab/220 + 0.5 (both through the ranges above); the output is the input's L with
    the predicted ab."""
    task: str | None = None
    """What the pairs were derived from a photo folder for: "colorize", "colorize_lab",
    "sketch", "sr", or None. "sr" (as any scale > 1) keeps gray images gray."""
    test_mode: str = "eval"
    """"train": BatchNorm on each image's own statistics and dropout on, as the pix2pix paper
    and the reference's test.py (without --eval) run a generator; "eval": running statistics,
    no dropout."""

    def __post_init__(self) -> None:
        problems = []
        if not self.directions or any(d not in DIRECTIONS for d in self.directions):
            problems.append(f"directions must map AtoB/BtoA to networks, not {dict(self.directions)!r}")
        elif self.default_direction not in self.directions:
            problems.append(f"default direction {self.default_direction!r} is not one of its directions")
        for name in ("input_range", "output_range"):
            lo, hi = getattr(self, name)
            if not hi > lo:
                problems.append(f"bad {name} {[lo, hi]}")
        if self.color_space not in COLOR_SPACES:
            problems.append(f"unknown color space {self.color_space!r}")
        if self.test_mode not in TEST_MODES:
            problems.append(f"unknown test mode {self.test_mode!r}")
        if min(self.in_channels, self.out_channels, self.scale, self.size.minimum, self.size.multiple) < 1:
            problems.append("channels, scale and sizes must be >= 1")
        if self.color_space == "lab" and (self.in_channels, self.out_channels, self.scale) != (1, 2, 1):
            problems.append("a Lab model maps 1 channel (L) to 2 (ab) at scale 1")
        if problems:
            raise I2IError(f"bad model spec: {'; '.join(problems)}")

    @property
    def keeps_gray(self) -> bool:
        """Gray in, gray out (super-resolution keeps colours, as Real-ESRGAN does)."""
        return self.scale > 1 or self.task == "sr"

    def channels(self, direction: str) -> tuple[int, int]:
        """(in, out) channels of the network that translates `direction`."""
        if direction == "BtoA" and len(set(self.directions.values())) > 1:
            return self.out_channels, self.in_channels
        return self.in_channels, self.out_channels

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (what a model file's metadata holds)."""
        values = dataclasses.asdict(self)
        values["directions"] = dict(self.directions)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ModelSpec:
        """The inverse of `to_dict`; a wrong structure is one I2IError line naming the field."""
        if not isinstance(values, Mapping):
            raise I2IError(f"bad model spec: expected a mapping, not {type(values).__name__}")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known), key=str)
        if unknown:
            raise I2IError(f"bad model spec: unknown field{'s' if len(unknown) > 1 else ''} "
                           f"{', '.join(n if isinstance(n, str) and n.isprintable() else repr(n) for n in unknown)}")
        kwargs: dict[str, Any] = {}
        for name, value in values.items():
            try:
                kwargs[name] = _FIELD_READERS.get(name, _same)(value)
            except (TypeError, ValueError, KeyError):
                raise I2IError(f"bad model spec: field {name} = {reprlib.repr(value)}") from None
        if "pipeline" not in kwargs:
            raise I2IError("bad model spec: no pipeline")
        return cls(**kwargs)


def to_network_range(x: Any, value_range: tuple[float, float]) -> Any:
    """[0, 1] image pixels -> a network's `value_range` (e.g. x*2-1 for (-1, 1))."""
    lo, hi = value_range
    return x * (hi - lo) + lo


def to_image_range(y: Any, value_range: tuple[float, float]) -> Any:
    """A network's output in `value_range` -> [0, 1] image pixels, clamped."""
    lo, hi = value_range
    return ((y - lo) / (hi - lo)).clamp(0, 1)


def spec_for_network(net: Any, pipeline: str = "", **fields: Any) -> ModelSpec:
    """A spec for a bare generator: its own channels, scale and size multiple, and `fields`."""
    return ModelSpec(pipeline=pipeline, in_channels=int(getattr(net, "in_channels", 3)),
                     out_channels=int(getattr(net, "out_channels", 3)), scale=int(getattr(net, "scale", 1)),
                     size=SizeRequirements(multiple=int(getattr(net, "size_multiple", 1))), **fields)


def _same(value: Any) -> Any:
    if not isinstance(value, (str, type(None))):
        raise TypeError(value)
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(value)
    return value


def _range(value: Any) -> tuple[float, float]:
    lo, hi = value
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (lo, hi)):
        raise TypeError(value)
    return float(lo), float(hi)


def _directions(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise TypeError(value)
    return dict(value)


def _size(value: Any) -> SizeRequirements:
    if not isinstance(value, Mapping) or set(value) - {"minimum", "multiple"}:
        raise TypeError(value)
    return SizeRequirements(**{k: _int(v) for k, v in value.items()})


_FIELD_READERS = {"directions": _directions, "input_range": _range, "output_range": _range,
                  "in_channels": _int, "out_channels": _int, "scale": _int, "size": _size}


def from_legacy_settings(pipeline: str, settings: Mapping[str, Any], archs: Mapping[str, Mapping]) -> ModelSpec:
    """The spec of a model file written before the spec existed (its untyped "settings" dict),
    with the defaults inference used for missing keys then. Channels, scale and size multiple
    come from the networks (`archs`: name -> stored architecture), built on the meta device."""
    import torch

    import i2i.nn

    directions = settings.get("directions") or (
        {"AtoB": "G_A", "BtoA": "G_B"} if {"G_A", "G_B"} <= set(archs) else {"AtoB": "G"})
    try:
        with torch.device("meta"):
            atob = i2i.nn.rebuild(archs[directions["AtoB"]] if "AtoB" in directions else next(iter(archs.values())))
    except (KeyError, StopIteration):
        raise I2IError(f"bad model spec: no network for {dict(directions)!r}") from None
    except RuntimeError as error:  # e.g. a width whose weights overflow a size, even on meta
        raise I2IError(f"bad model spec: its AtoB network cannot be built ({one_line(error, 200)})") from None
    default_range = [0, 1] if pipeline == "srgan" else [-1, 1]
    return ModelSpec.from_dict({
        "pipeline": pipeline,
        "directions": directions,
        "default_direction": settings.get("default_direction") or "AtoB",
        "input_range": _legacy_range(settings.get("input_range", default_range)),
        "output_range": _legacy_range(settings.get("output_range", default_range)),
        "in_channels": int(atob.in_channels),
        "out_channels": int(atob.out_channels),
        "scale": int(getattr(atob, "scale", 1)),
        "size": {"minimum": 8, "multiple": int(getattr(atob, "size_multiple", 1))},
        "color_space": settings.get("color_space") or "rgb",
        "task": settings.get("task"),
        "test_mode": settings.get("test_mode") or ("train" if pipeline == "pix2pix" else "eval"),
    })


def _legacy_range(value: Any) -> list[float]:
    """Old settings may hold a range as [lo, hi] or the string "lo,hi"."""
    if isinstance(value, str):
        try:
            return [float(v) for v in value.split(",")]
        except ValueError:
            raise I2IError(f"bad model spec: pixel range {value!r}") from None
    return value
