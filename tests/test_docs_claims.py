"""What the docs say about the scripts beside the package (benchmarks/, datasets/): their documented
invocations start, and the models and folders they name or default to exist."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load(relative: str):
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem + "_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", ["benchmarks/sr_figure.py", "datasets/make_samples.py"])
def test_argv_scripts_answer_help_with_their_usage(script):
    """Both take bare sys.argv; `--help` used to end in a KeyError / IndexError traceback."""
    done = subprocess.run([sys.executable, script, "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"python {script}" in done.stdout
    wrong = subprocess.run([sys.executable, script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2 and f"python {script}" in wrong.stderr and "Traceback" not in wrong.stderr


def test_diffaug_draws_from_the_shared_training_photos_by_default(shared_dir, monkeypatch):
    """benchmarks/README.md runs `python benchmarks/diffaug.py --steps 1000 --size 64 ...` without
    --photos; its default was one machine's /work/runs/sr291, absent elsewhere (a traceback).
    Now T91 + BSD200 of ../shared, drawn as from the one folder the figures were measured on."""
    monkeypatch.setenv("I2I_SHARED", str(shared_dir))
    diffaug = _load("benchmarks/diffaug.py")
    sr = shared_dir / "data" / "sr"
    assert diffaug.DEFAULT_PHOTOS == [sr / "T91", sr / "BSD200"]
    chosen = diffaug.choose_photos(diffaug.DEFAULT_PHOTOS, 60, 64 * 286 // 256, seed=0)
    assert len(chosen) == 60 and {p.parent.name for p in chosen} <= {"T91", "BSD200"}
    # the same draw as from one folder holding both sets (how sr291/ was laid out)
    assert [p.name for p in chosen[:3]] == ["94079.png", "t23.png", "12074.png"]


def test_realworld_sr_usage_names_registered_models():
    """Its docstring's `score` example named `realesr-x4`, which no registry entry is."""
    from i2i import zoo

    doc = _load("benchmarks/realworld_sr.py").__doc__
    (line,) = [line for line in doc.splitlines() if "realworld_sr.py score" in line]
    models = line.split("#")[0].split()[5:]  # python SCRIPT score HR LR MODEL...
    assert models
    for name in models:
        zoo.lookup(name)
