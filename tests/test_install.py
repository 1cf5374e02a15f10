"""A wheel installed the way `pip install i2i` installs it (not an editable checkout) still
has its pretrained models and the demo's photos (they live outside the package)."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _can_build_wheels() -> bool:
    """setuptools builds wheels itself from 70.1; older ones need the wheel package."""
    try:
        import setuptools
    except ImportError:
        return False
    try:
        import wheel  # noqa: F401
        return True
    except ImportError:
        return tuple(int(x) for x in setuptools.__version__.split(".")[:2]) >= (70, 1)


def _install(wheel_file: Path, prefix: Path) -> Path:
    """Unpack a pure-Python wheel into `prefix` as an installer does (the code into
    site-packages, `<name>.data/data/` into the prefix); returns site-packages. Not `pip
    install --prefix`: pip would first uninstall the i2i of the environment running the tests."""
    site = Path(sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)}))
    with zipfile.ZipFile(wheel_file) as wheel:
        for name in wheel.namelist():
            head, _, rest = name.partition("/")
            if head.endswith(".data"):
                kind, _, inner = rest.partition("/")
                assert kind == "data", name  # i2i ships no scripts or headers this way
                target = prefix / inner
            else:
                target = site / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(wheel.read(name))
    return site


@pytest.mark.skipif(not _can_build_wheels(), reason="needs setuptools >= 70.1 (or wheel) to build offline")
def test_an_installed_wheel_finds_its_models_and_sample_photos(tmp_path):
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", str(REPO), "-w", str(tmp_path / "wheel")],
                   check=True, cwd=tmp_path, timeout=300)
    prefix = tmp_path / "prefix"
    site = _install(next((tmp_path / "wheel").glob("i2i-*.whl")), prefix)
    probe = ("import i2i, i2i.demo, i2i.zoo as z\n"
             "print(i2i.__file__); print(z.REGISTRY_FILE); print(i2i.demo.SAMPLES)\n"
             "print(z.local_file(z.lookup('srresnet-x4')))\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=120, check=True).stdout.splitlines()
    package, registry, samples, model = map(Path, out)
    assert package.is_relative_to(site)  # the installed copy, not this checkout
    assert registry == prefix / "share/i2i/pretrained/registry.json" and registry.is_file()
    assert samples == prefix / "share/i2i/datasets/samples/photos" and len(list(samples.glob("*.jpg"))) >= 10
    assert model.parent == registry.parent and model.name == "srresnet-x4.safetensors"
