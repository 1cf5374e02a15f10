"""`i2i serve` over real HTTP: a uvicorn server on 127.0.0.1 (ephemeral port) in a thread,
tiny models on disk; the endpoint's PNG is `i2i translate`'s file byte for byte."""
from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner
from test_infer import make_models, pattern

from i2i.cli import main
from i2i.data import io

pytest.importorskip("starlette", reason='the serve extra is not installed: pip install -e ".[serve]"')
pytest.importorskip("uvicorn", reason='the serve extra is not installed: pip install -e ".[serve]"')

from i2i.serve.app import create_app
from i2i.serve.catalog import Catalog
from i2i.serve.engine import Engine
from i2i.serve.server import ServerThread, is_loopback, uvicorn_server

REPO = Path(__file__).resolve().parents[1]
MAX_UPLOAD = 300_000
MAX_PIXELS = 100_000

# Every file opened while `_watching` is set (the server runs in this process): what the
# path-traversal test checks.
_opened: list[str] = []
_watching = threading.Event()


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _watching.is_set() and isinstance(args[0], (str, bytes, os.PathLike)):
        _opened.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    models = make_models(root / "models")
    run = root / "runs" / "sketch"
    (run / "samples").mkdir(parents=True)
    (run / "metrics.jsonl").write_bytes(b"\xff\xfe damaged\n" + "".join(  # one damaged line (took the runs tab down)
        json.dumps({"step": s, "epoch": 1, "G_L1": 1.0 / s, "D": 0.5}) + "\n" for s in range(1, 6)).encode()
        + b'{"step": 6, "G_L')  # a line being written
    io.write_image(run / "samples" / "step_2.png", pattern(8, 24))
    io.write_image(run / "samples" / "step_5.png", pattern(8, 24, seed=1))
    (run / "model.safetensors").write_bytes(models["sr"].read_bytes())
    secret = root / "secret"
    secret.mkdir()
    (secret / "model.safetensors").write_bytes(models["sr"].read_bytes())
    engine = Engine(device="cpu", precision="fp32")
    app = create_app(Catalog([str(root / "models")], root / "runs"), engine, max_upload_bytes=MAX_UPLOAD,
                     max_pixels=MAX_PIXELS)
    server = ServerThread(uvicorn_server(app))
    yield {"root": root, "models": models, "run": run, "secret": secret, "engine": engine, "server": server}
    server.stop()


def call(server: ServerThread, method: str, path: str, body: bytes | None = None,
         headers: dict | None = None) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection(server.url.split("//")[1], timeout=120)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def error_of(answer: tuple[int, dict, bytes]) -> str:
    status, headers, body = answer
    assert headers["content-type"] == "application/json", (status, body[:200])
    return json.loads(body)["error"]


def png_bytes(pixels: np.ndarray, alpha: np.ndarray | None = None, tmp: Path | None = None) -> bytes:
    path = tmp / "image.png"
    io.write_image(path, pixels, alpha)
    return path.read_bytes()


def translate_cli(model: Path | str, image: Path, out: Path, *options: str) -> bytes:
    result = CliRunner().invoke(main, ["translate", str(model), str(image), str(out), "--device", "cpu",
                                       "--precision", "fp32", *options])
    assert result.exit_code == 0, result.output
    return (out / f"{image.stem}.png").read_bytes()


def test_models_lists_the_zoo_model_files_and_run_models(setup):
    status, _, body = call(setup["server"], "GET", "/api/models")
    assert status == 200
    models = {m["name"]: m for m in json.loads(body)["models"]}
    assert {"srresnet-x4", "cyclegan", "sr", "sketch"} <= set(models)
    assert models["srresnet-x4"]["source"] == "zoo" and models["srresnet-x4"]["scale"] == 4
    assert models["cyclegan"]["directions"] == ["AtoB", "BtoA"] and models["cyclegan"]["scale"] == 1
    assert models["sr"]["task"] == "sr" and models["sr"]["scale"] == 2
    assert models["sketch"]["source"] == "run"
    assert str(setup["root"]) not in body.decode()  # names only, no server paths


INPUTS = {  # name -> pixels, alpha
    "rgb": (pattern(13, 17), None),
    "gray": (pattern(9, 11, 1), None),
    "rgba": (pattern(10, 12), np.linspace(0, 255, 120).reshape(10, 12).astype(np.uint8)),
    "gray16": ((pattern(7, 9, 1).astype(np.uint16) * 257 + 3), None),
    "rgb16": ((pattern(6, 10).astype(np.uint16) * 250), None),
}


@pytest.mark.parametrize("model, query, options", [
    ("sr", "", []),
    ("sr", "&tile=8", ["--tile", "8"]),
    ("cyclegan", "&direction=BtoA", ["--direction", "BtoA"]),
])
def test_endpoint_equals_translate_byte_for_byte(setup, tmp_path, model, query, options):
    for name, (pixels, alpha) in INPUTS.items():
        image = tmp_path / f"{name}.png"
        io.write_image(image, pixels, alpha)
        expected = translate_cli(setup["models"][model], image, tmp_path / "cli", *options)
        status, headers, body = call(setup["server"], "POST", f"/api/translate?model={model}{query}",
                                     image.read_bytes())
        assert status == 200, body[:300]
        assert headers["content-type"] == "image/png"
        assert body == expected, f"{name}: the endpoint's PNG differs from i2i translate's"
    out = io.decode_bytes(body)  # 16-bit colour in, 16-bit colour out
    assert out.pixels.dtype == np.uint16 and out.pixels.shape[2] == 3


def test_a_jpeg_comes_back_as_translate_writes_it(setup, tmp_path):
    image = tmp_path / "photo.jpg"
    PIL.Image.fromarray(pattern(16, 16)).save(image, quality=90)
    expected = translate_cli(setup["models"]["sr"], image, tmp_path / "cli")
    assert call(setup["server"], "POST", "/api/translate?model=sr", image.read_bytes())[2] == expected


def test_the_shipped_zoo_model_by_name(setup, tmp_path):
    image = tmp_path / "small.png"
    io.write_image(image, pattern(12, 16))
    expected = translate_cli("srresnet-x4", image, tmp_path / "cli")
    status, _, body = call(setup["server"], "POST", "/api/translate?model=srresnet-x4", image.read_bytes())
    assert status == 200 and body == expected
    assert io.decode_bytes(body).size == (64, 48)


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (its pixel data is a 1x1 image's)."""
    data = bytearray(png_bytes_1x1())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


def png_bytes_1x1() -> bytes:
    import io as stdio

    buffer = stdio.BytesIO()
    PIL.Image.fromarray(pattern(1, 1)).save(buffer, "PNG")
    return buffer.getvalue()


def test_error_statuses_are_json(setup, tmp_path):
    server = setup["server"]
    good = png_bytes(pattern(8, 8), tmp=tmp_path)
    cases = [
        (400, "/api/translate?model=sr", b"this is not an image", "not an image"),
        (400, "/api/translate?model=sr", good[:60], "truncated"),
        (400, "/api/translate?model=sr", b"", "no image"),
        (404, "/api/translate?model=nope", good, "unknown model"),
        (404, "/api/translate", good, "unknown model"),
        (413, "/api/translate?model=sr", good + b"\0" * MAX_UPLOAD, "upload too large"),
        (422, "/api/translate?model=sr", png_bytes(pattern(400, 300), tmp=tmp_path), "image too large"),
        (422, "/api/translate?model=sr", huge_png_header(20000, 20000), "image too large"),
        (400, "/api/translate?model=sr&direction=BtoA", good, "direction"),
        (400, "/api/translate?model=cyclegan&direction=sideways", good, "direction"),
        (400, "/api/translate?model=sr&tile=abc", good, "tile"),
        (400, "/api/translate?model=sr&tile=-8", good, "tile"),
        (400, "/api/translate?model=sr&tile=3", good, "tile"),
        (400, "/api/translate?model=sr&outscale=2", good, "unknown parameter outscale"),  # not silently x2
        (400, "/api/translate?model=sr&tile_pad=4&alpha_upsampler=resize", good, "alpha_upsampler, tile_pad"),
        (404, "/api/run?name=nope", None, "unknown run"),
    ]
    for status, path, body, words in cases:
        answer = call(server, "POST" if body is not None else "GET", path, body)
        assert answer[0] == status, (path, answer[0], answer[2][:200])
        assert words in error_of(answer), (path, error_of(answer))
    assert call(server, "GET", "/api/translate?model=sr")[0] == 405  # POST only
    form = (b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n" + good
            + b"\r\n--x--\r\n")  # what `curl -F file=@a.png` sends
    answer = call(server, "POST", "/api/translate?model=sr", form, {"Content-Type": "multipart/form-data; boundary=x"})
    assert answer[0] == 400 and "--data-binary" in error_of(answer)
    assert call(server, "POST", "/api/translate?model=sr", good)[0] == 200  # the server is still fine


def test_path_traversal_in_every_parameter_opens_nothing(setup):
    server, secret = setup["server"], setup["secret"]
    good = png_bytes_1x1()
    attempts = [
        ("POST", "/api/translate?model=../../etc/passwd"),
        ("POST", "/api/translate?model=%2Fetc%2Fpasswd"),
        ("POST", f"/api/translate?model={secret}"),
        ("POST", f"/api/translate?model={secret}/model.safetensors"),
        ("POST", "/api/translate?model=..%2F..%2Fsecret%2Fmodel"),
        ("POST", "/api/translate?model=sr&direction=../../etc/passwd"),
        ("POST", "/api/translate?model=sr&tile=../../etc/passwd"),
        ("POST", "/api/translate?model=sr&tile=%2Fetc%2Fpasswd"),
        ("GET", "/api/run?name=../../etc"),
        ("GET", f"/api/run?name={secret}"),
        ("GET", "/api/run/sample?name=../secret"),
        ("GET", "/static/..%2F..%2Fcatalog.py"),
        ("GET", "/static/%2Fetc%2Fpasswd"),
        ("GET", "/static/../app.py"),
    ]
    call(server, "GET", "/api/models")  # the catalog is read before watching
    _opened.clear()
    _watching.set()
    try:
        for method, path in attempts:
            status, _, body = call(server, method, path, good if method == "POST" else None)
            assert 400 <= status < 500, (path, status, body[:200])
            assert b"root:" not in body
    finally:
        _watching.clear()
    outside = [p for p in _opened if "passwd" in p or str(secret) in p or "catalog.py" in p or p.endswith("app.py")]
    assert not outside, outside


def test_two_concurrent_requests_queue_and_both_finish(setup, tmp_path):
    server, engine = setup["server"], setup["engine"]
    images = [png_bytes(pattern(12, 12, seed=s), tmp=tmp_path) for s in (1, 2)]
    alone = [call(server, "POST", "/api/translate?model=sr", image)[2] for image in images]
    answers: dict[str, tuple] = {}

    def send(job: str, image: bytes) -> None:
        answers[job] = call(server, "POST", "/api/translate?model=sr", image, {"X-I2I-Job": job})

    with engine.turn:  # a job is translating: the two requests must wait their turn
        threads = []
        for i, image in enumerate(images):  # one after the other: job0 is first in the queue
            threads.append(threading.Thread(target=send, args=(f"job{i}", image)))
            threads[-1].start()
            deadline = time.monotonic() + 30
            while json.loads(call(server, "GET", f"/api/status?job=job{i}")[2])["job"] is None:
                assert time.monotonic() < deadline, "the request never reached the queue"
                time.sleep(0.02)
        status = json.loads(call(server, "GET", "/api/status?job=job1")[2])
        assert status == {"jobs": 2, "job": {"position": 1, "phase": "waiting"}}
        assert not answers
    for thread in threads:
        thread.join(timeout=60)
    assert [answers[f"job{i}"][0] for i in range(2)] == [200, 200]
    assert [answers[f"job{i}"][2] for i in range(2)] == alone
    assert json.loads(call(server, "GET", "/api/status")[2])["jobs"] == 0


def test_runs_are_listed_and_read_not_written(setup):
    server, run = setup["server"], setup["run"]
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    runs = json.loads(call(server, "GET", "/api/runs")[2])["runs"]
    assert [(r["name"], r["step"], r["has_model"]) for r in runs] == [("sketch", 5, True)]
    details = json.loads(call(server, "GET", "/api/run?name=sketch")[2])
    assert details["step"] == 5 and details["sample_step"] == 5
    assert details["charts"].count("<svg") == 2 and "G_L1" in details["charts"]
    status, headers, body = call(server, "GET", "/api/run/sample?name=sketch")
    assert status == 200 and headers["content-type"] == "image/png"
    assert body == (run / "samples" / "step_5.png").read_bytes()
    # a run logging on: the next listing shows it
    with open(run / "metrics.jsonl", "a") as f:
        f.write('L1": 0.1}\n{"step": 7, "G_L1": 0.1}\n')
    try:
        assert json.loads(call(server, "GET", "/api/run?name=sketch")[2])["step"] == 7
    finally:
        data = (run / "metrics.jsonl").read_bytes()
        (run / "metrics.jsonl").write_bytes(data[:data.index(b'L1": 0.1}')])
        os.utime(run / "metrics.jsonl", ns=(before[run / "metrics.jsonl"],) * 2)
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before


def test_page_and_its_files_ship_with_the_package(setup):
    server = setup["server"]
    status, headers, page = call(server, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'src="/static/app.js"' in page and b'href="/static/style.css"' in page
    assert "default-src 'self'" in headers["content-security-policy"]
    static = REPO / "i2i" / "serve" / "static"
    for name in ("app.js", "style.css"):
        status, _, body = call(server, "GET", f"/static/{name}")
        assert status == 200 and body == (static / name).read_bytes()
    for path in static.iterdir():  # nothing fetched from elsewhere (the SVG namespace is a name)
        text = path.read_text().replace("http://www.w3.org/2000/svg", "")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path.name
    assert "i2i.serve = static/*" in (REPO / "setup.cfg").read_text()  # installed as package data


def test_foreign_hosts_and_origins_are_refused(setup):
    server = setup["server"]
    port = server.url.rsplit(":", 1)[1]
    good = png_bytes_1x1()
    assert call(server, "POST", "/api/translate?model=sr", good, {"Origin": "http://evil.example"})[0] == 403
    assert call(server, "GET", "/api/models", headers={"Host": f"evil.example:{port}"})[0] == 403
    assert call(server, "POST", "/api/translate?model=sr", good, {"Origin": f"http://127.0.0.1:{port}"})[0] == 200
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")


def test_the_command_starts_fast_and_stops_on_ctrl_c(tmp_path):
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "i2i", "serve", "--port", "0", "--models", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("i2i serve: http://127.0.0.1:"), line + process.stderr.read()
        address = line.split("http://")[1].split("/")[0]
        connection = http.client.HTTPConnection(address, timeout=30)
        connection.request("GET", "/")
        assert connection.getresponse().status == 200
        took = time.monotonic() - started
        assert took < 10, f"the page answered after {took:.1f} s"  # ~0.5 s; a loaded CI machine is slower
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_ctrl_c_while_the_models_are_still_being_read_stops_cleanly(tmp_path):
    # a model file named on its own is checked at start, so torch is loaded before the server
    # runs; a process that then exited while the warm-up thread was inside torch aborted (134)
    model = make_models(tmp_path / "models")["sr"]
    process = subprocess.Popen([sys.executable, "-m", "i2i", "serve", "--port", "0", "--models", str(model)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("i2i serve: http://127.0.0.1:"), line + process.stderr.read()
        process.send_signal(signal.SIGINT)
        # the shutdown may wait up to 60 s for the warm-up thread (i2i.serve.app): on a loaded
        # machine a 60 s wait here raced it (seen once on CI); a hang still fails
        assert process.wait(timeout=150) == 0, process.stderr.read()
        assert "terminate called" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()


def test_command_line_mistakes_are_one_line(tmp_path):
    result = CliRunner().invoke(main, ["serve", "--models", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "no such model file or folder" in result.output  # bad input, as translate
    assert "Traceback" not in result.output
    text = tmp_path / "notes.png"
    text.write_text("not a model")
    result = CliRunner().invoke(main, ["serve", "--models", str(text)])  # named on its own: must be a model
    assert result.exit_code == 1 and result.output.startswith(f"error: {text}: not a safetensors model file")
    result = CliRunner().invoke(main, ["serve", "--device", "banana"])  # at start, not at every request
    assert result.exit_code == 2 and result.output == "error: unknown device 'banana' (use auto, cpu, cuda, cuda:N or mps)\n"
    blocked = "import sys; sys.modules['starlette'] = None; from i2i.cli import main; main(['serve'])"
    without = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, timeout=60, check=False)
    assert without.returncode == 1
    assert without.stderr.strip() == ('error: i2i serve needs the web extra: pip install -e ".[serve]" '
                                      '(or: pip install "i2i[serve]")')
    lazy = subprocess.run([sys.executable, "-c", "import sys, i2i.cli; print('starlette' in sys.modules)"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert lazy.stdout.strip() == "False"  # `i2i --help` does not import the web stack


def test_a_translation_cut_by_the_server_stopping_is_a_json_503(setup, tmp_path, capfd):
    """Ctrl-C while a translation waits or runs: after uvicorn's grace period the request is
    cancelled; the client gets a JSON 503 and the terminal one line, not an ASGI traceback."""
    root, engine = setup["root"], Engine(device="cpu", precision="fp32")
    server = ServerThread(uvicorn_server(create_app(Catalog([str(root / "models")]), engine,
                                                    max_upload_bytes=MAX_UPLOAD)))
    server.server.config.timeout_graceful_shutdown = 0.5
    answer: list[tuple] = []
    image = png_bytes(pattern(12, 12), tmp=tmp_path)
    with engine.turn:  # another job holds the model: this one waits in the server
        sender = threading.Thread(target=lambda: answer.append(
            call(server, "POST", "/api/translate?model=sr", image, {"X-I2I-Job": "cut"})))
        sender.start()
        deadline = time.monotonic() + 30
        while json.loads(call(server, "GET", "/api/status?job=cut")[2])["job"] is None:
            assert time.monotonic() < deadline, "the request never reached the queue"
            time.sleep(0.02)
        server.stop()
    sender.join(timeout=30)
    assert answer and answer[0][0] == 503 and "stopping" in error_of(answer[0])
    err = capfd.readouterr().err
    assert "cancelled" in err and "Traceback" not in err and "Exception in ASGI application" not in err
