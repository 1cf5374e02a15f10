"""The pretrained registry: shipped files offline, downloads from a real local HTTP server."""
from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest

from i2i import zoo
from i2i.errors import I2IError


@pytest.fixture()
def http_root(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def write_registry(folder: Path, rows: dict) -> Path:
    path = folder / "registry.json"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return path


def test_download_verifies_and_caches(tmp_path, http_root, monkeypatch):
    www, base = http_root
    payload = b"model bytes" * 1000
    (www / "m.safetensors").write_bytes(payload)
    monkeypatch.setenv("I2I_CACHE", str(tmp_path / "cache"))
    reg = write_registry(tmp_path / "reg", {"tiny": {"file": "m.safetensors", "url": f"{base}/m.safetensors",
                                                     "sha256": hashlib.sha256(payload).hexdigest()}})
    path = zoo.resolve("tiny", registry_path=reg, progress=False)
    assert path.read_bytes() == payload
    (www / "m.safetensors").unlink()  # the second call must not need the server
    assert zoo.resolve("tiny", registry_path=reg, progress=False) == path


def test_corrupt_download_is_not_kept(tmp_path, http_root, monkeypatch):
    www, base = http_root
    (www / "m.safetensors").write_bytes(b"tampered")
    monkeypatch.setenv("I2I_CACHE", str(tmp_path / "cache"))
    reg = write_registry(tmp_path / "reg", {"tiny": {"file": "m.safetensors", "url": f"{base}/m.safetensors",
                                                     "sha256": "0" * 64}})
    with pytest.raises(I2IError, match="corrupt"):
        zoo.resolve("tiny", registry_path=reg, progress=False)
    assert not any((tmp_path / "cache").rglob("*.safetensors"))


def test_missing_url_and_unknown_name(tmp_path, http_root, monkeypatch):
    _, base = http_root
    monkeypatch.setenv("I2I_CACHE", str(tmp_path / "cache"))
    reg = write_registry(tmp_path / "reg", {"gone": {"file": "gone.safetensors", "url": f"{base}/gone.safetensors",
                                                     "sha256": "0" * 64}})
    with pytest.raises(I2IError, match="cannot download 'gone'"):
        zoo.resolve("gone", registry_path=reg, progress=False)
    with pytest.raises(I2IError, match="known: gone"):
        zoo.resolve("nope", registry_path=reg, progress=False)


def test_shipped_file_used_offline_and_checked(tmp_path):
    folder = tmp_path / "reg"
    folder.mkdir()
    (folder / "s.safetensors").write_bytes(b"shipped")
    reg = write_registry(folder, {"s": {"file": "s.safetensors", "sha256": hashlib.sha256(b"shipped").hexdigest()}})
    assert zoo.resolve("s", registry_path=reg) == folder / "s.safetensors"
    (folder / "s.safetensors").write_bytes(b"edited")
    with pytest.raises(I2IError, match="does not match"):
        zoo.resolve("s", registry_path=reg)


def test_models_list_and_translate_by_name(tmp_path):
    """The shipped srresnet-x4 is listed and translates offline by name."""
    import numpy as np
    from click.testing import CliRunner

    from i2i.cli import main
    from i2i.data.io import read_image, write_image

    if "srresnet-x4" not in zoo.registry():
        pytest.skip("srresnet-x4 not registered")
    runner = CliRunner()
    listed = runner.invoke(main, ["models", "list"])
    assert listed.exit_code == 0 and "srresnet-x4" in listed.output and "shipped" in listed.output
    write_image(tmp_path / "in" / "a.png", np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8))
    result = runner.invoke(main, ["translate", "srresnet-x4", str(tmp_path / "in"), str(tmp_path / "out"),
                                  "--device", "cpu", "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "out" / "a.png").pixels.shape == (36, 28, 3)
