"""Shared test fixtures: where ../shared lives, golden loading, tiny images on disk."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("I2I_SHARED", REPO.parent / "shared"))


@pytest.fixture(autouse=True, scope="session")
def private_i2i_home(tmp_path_factory):
    """Tests never read or write the user's $I2I_HOME (downloads, kept precision probes): one
    fresh home for the session, inherited by the subprocesses tests start."""
    old = os.environ.get("I2I_HOME")
    os.environ["I2I_HOME"] = str(tmp_path_factory.mktemp("i2i_home"))
    yield Path(os.environ["I2I_HOME"])
    if old is None:
        os.environ.pop("I2I_HOME", None)
    else:
        os.environ["I2I_HOME"] = old


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (or $I2I_SHARED); tests that need it skip cleanly when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


def golden_manifest(shared: Path, family: str) -> dict:
    return json.loads((shared / "golden" / family / "MANIFEST.json").read_text())


def save(path: Path, pixels: np.ndarray) -> Path:
    """Write a test image (HxW, HxWx1 or HxWxC uint8) with Pillow, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.squeeze(-1) if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels).save(path)
    return path


def noise(h: int, w: int, c: int = 3, rng: np.random.Generator = np.random.default_rng(0)) -> np.ndarray:
    """Random uint8 pixels (one generator for the session, so images differ from call to call)."""
    return rng.integers(0, 256, (h, w, c), dtype=np.uint8)
