"""i2i: image-to-image translation (CycleGAN, pix2pix, SRGAN) from one set of blocks.

The public API is small and imported lazily, so `import i2i` and `i2i --help` stay fast:

    upscaler = i2i.load_model("srresnet-x4")     # a model file, a run folder or a name
    big = upscaler(PIL.Image.open("small.png"))   # an i2i.Translator: PIL, numpy or tensors
    run = i2i.train("pix2pix", {"data": "photos/", "task": "sketch", "out": "runs/sketch"})
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "I2IError", "load_model", "Translator", "train"]

from i2i.errors import I2IError

_LAZY = {
    "load_model": ("i2i.infer", "load_model"),
    "Translator": ("i2i.infer", "Translator"),
    "train": ("i2i.training", "train"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'i2i' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazy names too: tab completion shows the API without importing it, and help(i2i) lists it."""
    return sorted({*globals(), *_LAZY})
