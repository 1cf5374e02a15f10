"""`i2i serve` when things go wrong on the server's side, over real HTTP (127.0.0.1, an
ephemeral port): a model file replaced by garbage while it is served, a --models file's
header read once at start, and the tile rule the server shares with the Python API."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from test_infer import make_models, pattern
from test_serve import call, error_of, png_bytes  # skips this module without the serve extra

import i2i.checkpoint
from i2i.errors import UsageError
from i2i.infer import load_model
from i2i.infer.tiles import MAX_TILE, MIN_TILE, TILE_RULE
from i2i.serve.app import create_app
from i2i.serve.catalog import Catalog
from i2i.serve.engine import Engine
from i2i.serve.server import ServerThread, make_server, uvicorn_server


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A server of its own (the tests here break its files): two model files and a run folder."""
    root = tmp_path_factory.mktemp("serve_errors")
    models = make_models(root / "models")
    run = root / "models" / "run1"
    run.mkdir()
    (run / "model.safetensors").write_bytes(models["sr"].read_bytes())
    app = create_app(Catalog([str(root / "models")]), Engine(device="cpu", precision="fp32"),
                     max_upload_bytes=1 << 20)
    server = ServerThread(uvicorn_server(app))
    yield {"root": root, "server": server, "files": {"sr": models["sr"], "run1": run / "model.safetensors"}}
    server.stop()


def replace(path: Path, data: bytes) -> None:
    """Write `data` over `path` and move its modification time on by a second, so the change
    is seen however coarse the file system's clock is (the server reloads on a new mtime)."""
    before = path.stat().st_mtime_ns
    path.write_bytes(data)
    os.utime(path, ns=(before + 10**9, before + 10**9))


@pytest.mark.parametrize("name", ["sr", "run1"])  # a model file, a run folder's model
@pytest.mark.parametrize("damage", ["random bytes", "truncated", "deleted"])
def test_a_model_file_broken_while_served_is_a_503_naming_it(served, tmp_path, capfd, name, damage):
    server, path = served["server"], served["files"][name]
    image = png_bytes(pattern(8, 8), tmp=tmp_path)
    status, _, before = call(server, "POST", f"/api/translate?model={name}", image)
    assert status == 200  # loaded and kept
    good = path.read_bytes()
    try:
        if damage == "deleted":
            path.unlink()
        else:
            replace(path, os.urandom(len(good)) if damage == "random bytes" else good[:len(good) // 2])
        answer = call(server, "POST", f"/api/translate?model={name}", image)
        message = error_of(answer)
        assert answer[0] == 503, (answer[0], message)
        expected = "cannot read its file" if damage == "deleted" else "cannot be loaded: not a safetensors model file"
        assert message.startswith(f"model {name!r}") and expected in message, message
        assert "\n" not in message and str(served["root"]) not in message  # one line, no server paths
        assert call(server, "POST", "/api/translate?model=cyclegan", image)[0] == 200  # the others still serve
    finally:
        path.write_bytes(good)
        os.utime(path, ns=(path.stat().st_mtime_ns + 2 * 10**9,) * 2)
    assert call(server, "POST", f"/api/translate?model={name}", image)[2] == before  # mended: served again
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception in ASGI application" not in err


def test_a_models_file_is_read_once_at_start(tmp_path, monkeypatch):
    """`i2i serve --models FILE` checks FILE at start; listing it must not read it again."""
    model = make_models(tmp_path / "models")["sr"]
    read_header, reads = i2i.checkpoint.read_header, []

    def counted(path):
        reads.append(Path(path).resolve())
        return read_header(path)

    monkeypatch.setattr(i2i.checkpoint, "read_header", counted)
    server = ServerThread(make_server([str(model)], device="cpu"))
    try:
        status, _, body = call(server, "GET", "/api/models")
        assert status == 200 and b'"name":"sr"' in body
    finally:
        server.stop()  # waits for the warm-up thread, which lists the models too
    assert reads.count(model.resolve()) == 1


def test_the_server_and_the_python_api_refuse_the_same_tiles(served, tmp_path):
    server, image = served["server"], pattern(8, 8)
    sr = load_model(served["files"]["sr"], device="cpu", precision="fp32")
    for tile in (1, MIN_TILE - 1, MAX_TILE + 1):
        expected = f"tile must be {TILE_RULE}, not {tile}"
        with pytest.raises(UsageError) as error:
            sr(image, tile=tile)  # an 8x8 image: one tile whatever the size, refused all the same
        assert str(error.value) == expected
        answer = call(server, "POST", f"/api/translate?model=sr&tile={tile}", png_bytes(image, tmp=tmp_path))
        assert answer[0] == 400 and error_of(answer) == expected
    answer = call(server, "POST", "/api/translate?model=sr&tile=%C2%B2", png_bytes(image, tmp=tmp_path))  # "²"
    assert answer[0] == 400 and error_of(answer) == f"tile must be {TILE_RULE}"
    for tile in (MIN_TILE, MAX_TILE):
        assert np.array_equal(sr(image, tile=tile), sr(image))
        assert call(server, "POST", f"/api/translate?model=sr&tile={tile}", png_bytes(image, tmp=tmp_path))[0] == 200
