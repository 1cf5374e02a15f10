"""Inference: a trained generator applied to images, arrays, tensors and whole folders.

    translator = i2i.load_model("runs/horse2zebra", direction="AtoB")
    zebra = translator(PIL.Image.open("horse.jpg"))               # PIL in, PIL out
    translator.translate_folder("photos/", "zebras/", tile=512)   # what `i2i translate` runs

How a model runs is its model file's contract, `i2i.spec.ModelSpec` (value ranges, colour
space, channels, scale, size requirements, directions, test mode); nothing here knows a
pipeline by name. The rooms, one job each:

    loading.py     a model file, a run folder or a zoo name -> a Translator
    translator.py  Translator: one image of any kind, or a folder
    images.py      PIL / numpy / tensor / decoded files <-> [0, 1] tensors; alpha; 16-bit
    model.py       the model call: range and channels -> pad -> run -> crop; test mode
    tiles.py       tiled runs
    speed.py       precision and memory layout, measured at the first call on the CPU
    folder.py      the folder runner: planning, reader / model / writer threads, Summary
"""
from __future__ import annotations

from i2i.infer.folder import OUTPUT_EXTENSIONS, Summary
from i2i.infer.loading import load_model, resolve_model_path, zoo_model_path
from i2i.infer.translator import Translator

__all__ = ["OUTPUT_EXTENSIONS", "Summary", "Translator", "load_model", "resolve_model_path", "zoo_model_path"]
