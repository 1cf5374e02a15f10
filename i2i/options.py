"""Typed settings fields: what a setting's CLI flag, help and valid range need, kept on the
dataclass field itself. TrainConfig (i2i.training) and every pipeline's Options use them, so
they live below both.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from i2i.errors import UsageError


def setting(default: Any, help: str, *, choices: tuple = (), shown: str | None = None, old_names: tuple[str, ...] = (),
            path: str | None = None, value_type: type | None = None, required: bool = False,
            at_least: float | None = None, above: float | None = None, below: float | None = None) -> Any:
    """A settings field (TrainConfig's, a pipeline's Options'), with what its CLI flag needs.

    The flag is `--` + the name with dashes (`n_layers_D` -> `--n-layers-D`); a bool is an
    on/off pair (`--dropout/--no-dropout`), or a single flag when named `no_*`. The metadata:
    help; choices (the allowed values, where they are defined; "" is the unset value and is
    not offered); shown (how --help shows a default the value alone does not explain, e.g.
    "0: off"); old_names (earlier names, still read from config files and accepted as hidden
    flags); path ("dir" or "file"); value_type (when the default is None); required; the
    valid range of a number: at_least (inclusive), above and below (exclusive). A float
    setting must be finite in any case (`check_ranges`).
    """
    metadata = {"help": help, "choices": tuple(choices), "shown": shown, "old_names": tuple(old_names),
                "path": path, "value_type": value_type, "required": required,
                "range": (at_least, above, below)}
    return dataclasses.field(default=default, metadata=metadata)


def with_default(cls: type, name: str, default: Any) -> Any:
    """Field `name` of dataclass `cls` with another default (a subclass's Options)."""
    (found,) = (f for f in dataclasses.fields(cls) if f.name == name)
    return dataclasses.field(default=default, metadata=found.metadata)


def check_ranges(settings: Any) -> None:
    """Every number of a settings dataclass within its field's range, and finite (a NaN or
    negative learning rate, a pool of -1 images: one line naming the flag, not a traceback)."""
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        flag = "--" + field.name.replace("_", "-")
        if not math.isfinite(value):
            raise UsageError(f"{flag} must be a finite number, got {value}")
        at_least, above, below = field.metadata.get("range", (None, None, None))
        if at_least is not None and value < at_least:
            raise UsageError(f"{flag} must be >= {at_least:g}, got {value:g}")
        if above is not None and value <= above:
            raise UsageError(f"{flag} must be > {above:g}, got {value:g}")
        if below is not None and value >= below:
            raise UsageError(f"{flag} must be < {below:g}, got {value:g}")
