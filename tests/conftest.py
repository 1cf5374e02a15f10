"""Shared test fixtures: where ../shared lives, golden loading, tiny images on disk."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("I2I_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (or $I2I_SHARED); tests that need it skip cleanly when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


def golden_manifest(shared: Path, family: str) -> dict:
    return json.loads((shared / "golden" / family / "MANIFEST.json").read_text())
