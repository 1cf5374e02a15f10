"""Every code block of README.md runs as a user would paste it.

A block runs unless the line before it says otherwise:
    <!-- readme-test: skip: REASON -->   not run here, for the reason given;
    <!-- readme-test: needs Set5 -->      run with ../shared's Set5 linked in (skipped without it).
Shell blocks run line by line with `i2i` from this venv, in a fresh folder that holds a link to
the repository's `datasets/` (so paths are the README's). Python blocks run in such a folder with
a `small.png` and a `photos/` folder, the files they name. `text` blocks are not code.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import SHARED

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(?:<!-- readme-test: (?P<marker>[^>]*?) -->\n)?```(?P<lang>\w*)\n(?P<code>.*?)```", re.S)


def blocks() -> list[tuple[str, str, str]]:
    """(language, code, marker) of every fenced block, in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return [(m["lang"], m["code"], m["marker"] or "") for m in BLOCK.finditer(text)]


def test_every_block_is_runnable_or_says_why_not():
    found = blocks()
    assert len(found) >= 8
    for lang, code, marker in found:
        assert lang in ("bash", "python", "text"), f"block without a known language: {code[:60]!r}"
        assert not marker or marker.startswith(("skip: ", "needs ")), marker


def workspace(tmp_path: Path, marker: str) -> Path:
    (tmp_path / "datasets").symlink_to(REPO / "datasets")
    if marker.startswith("needs "):
        for name in marker[len("needs "):].split():
            source = SHARED / "data" / "sr" / name
            if not source.is_dir():
                pytest.skip(f"needs {name} from {source} (set I2I_SHARED)")
            (tmp_path / name).symlink_to(source)
    return tmp_path


def run_bash(code: str, cwd: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for line in code.splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        done = subprocess.run(shlex.split(line), cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{line}\n{done.stderr[-2000:]}"


def run_python(code: str, cwd: Path) -> None:
    photos = sorted((REPO / "datasets" / "samples" / "photos").iterdir())
    (cwd / "photos").symlink_to(REPO / "datasets" / "samples" / "photos")
    Image.open(photos[0]).convert("RGB").resize((24, 20)).save(cwd / "small.png")
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("index", range(len(blocks())))
def test_readme_block(tmp_path, index):
    lang, code, marker = blocks()[index]
    if lang == "text":
        pytest.skip("not code")
    if marker.startswith("skip: "):
        pytest.skip(marker[len("skip: "):])
    cwd = workspace(tmp_path, marker)
    if lang == "bash":
        run_bash(code, cwd)
    else:
        run_python(code, cwd)
