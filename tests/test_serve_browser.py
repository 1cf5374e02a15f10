"""The `i2i serve` page in a real browser: headless Chromium from the OS packages, driven
over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages ending in a
NUL byte on fds 3 and 4; no websocket client, no selenium). It chooses a model, uploads an
image through the file input, waits for the result, downloads it and the zip of all, and
takes a screenshot, which must not be blank."""
from __future__ import annotations

import base64
import fcntl
import io as stdio
import json
import os
import select
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_infer import make_models, pattern

from i2i.data import io

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
BASH = shutil.which("bash")
pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian: apt-get install chromium)"),
              pytest.mark.skipif(BASH is None, reason="no bash here (it hands Chromium its DevTools pipe)")]
pytest.importorskip("starlette", reason='the serve extra is not installed: pip install -e ".[serve]"')
pytest.importorskip("uvicorn", reason='the serve extra is not installed: pip install -e ".[serve]"')

from i2i.serve.server import ServerThread, make_server

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--remote-debugging-pipe"]


class DevTools:
    """Chromium with the DevTools protocol on a pipe: `send` a command, `wait_for` an event."""

    def __init__(self, profile: Path):
        to_chrome, self._in = os.pipe()  # Chromium reads commands from its fd 3
        self._out, from_chrome = os.pipe()  # and writes answers and events to its fd 4
        # bash moves them there (numbers >= 10 first, so that no redirection overwrites the other)
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_chrome, from_chrome)]
        for fd in (to_chrome, from_chrome):
            os.close(fd)
        script = f'exec "$0" "$@" 3<&{ends[0]} 4>&{ends[1]} {ends[0]}<&- {ends[1]}>&-'
        self.process = subprocess.Popen([BASH, "-c", script, CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
                                         "about:blank"], pass_fds=ends,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in ends:
            os.close(fd)
        self._buffer, self._next, self.events = b"", 0, []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        self._next += 1
        message = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._in, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read(deadline, method)
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                return answer["result"]
            self.events.append(answer)

    def wait_for(self, method: str, timeout: float = 60, **params) -> dict:
        """The first event `method` (since the last wait) whose params include `params`."""
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method and params.items() <= event.get("params", {}).items():
                    del self.events[: i + 1]
                    return event["params"]
            self.events.append(self._read(deadline, method))

    def _read(self, deadline: float, waiting_for: str) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._out], [], [], left)[0]:
                raise AssertionError(f"Chromium did not answer in time ({waiting_for})")
            chunk = os.read(self._out, 1 << 20)
            if not chunk:
                raise AssertionError(f"Chromium closed the pipe ({waiting_for})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except AssertionError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._in)
        os.close(self._out)


def evaluate(browser: DevTools, session: str, expression: str):
    result = browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
    return result["result"].get("value")


def wait_until(browser: DevTools, session: str, expression: str, timeout: float = 180):
    """The value of `expression` once it is truthy (generous: a busy 2-core machine is slow)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = evaluate(browser, session, expression)
        if value:
            return value
        time.sleep(0.1)
    page = evaluate(browser, session, "document.querySelector('main').innerText")
    raise AssertionError(f"never true: {expression}\npage: {page}")


def test_upload_translate_download_and_screenshot(tmp_path):
    models = make_models(tmp_path / "models")
    image = tmp_path / "photo.png"
    io.write_image(image, pattern(48, 64))
    server = ServerThread(make_server([str(models["sr"])], device="cpu", precision="fp32"))
    browser = DevTools(tmp_path / "profile")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.send("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads),
                                                     "eventsEnabled": True})
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1000, "height": 700, "deviceScaleFactor": 1, "mobile": False}, session)
        browser.send("Page.enable", session=session)
        browser.send("Page.navigate", {"url": server.url + "/"}, session)
        browser.wait_for("Page.loadEventFired")
        wait_until(browser, session, "[...document.querySelector('#model').options].some(o => o.value === 'sr')")
        evaluate(browser, session, "(s => { s.value = 'sr'; s.dispatchEvent(new Event('change')); })"
                                   "(document.querySelector('#model'))")
        assert "sr, x2" in evaluate(browser, session, "document.querySelector('#model-info').textContent")

        root = browser.send("DOM.getDocument", session=session)["root"]["nodeId"]
        node = browser.send("DOM.querySelector", {"nodeId": root, "selector": "#files"}, session)["nodeId"]
        browser.send("DOM.setFileInputFiles", {"files": [str(image)], "nodeId": node}, session)
        status = wait_until(browser, session, "(s => s.textContent.startsWith('done') || s.classList.contains('error')"
                                              " ? s.textContent : '')(document.querySelector('.result .status'))")
        assert status.startswith("done") and "128x96" in status, status

        expected = (tmp_path / "expected.png")
        from click.testing import CliRunner

        from i2i.cli import main

        result = CliRunner().invoke(main, ["translate", str(models["sr"]), str(image), str(expected.parent / "cli"),
                                           "--device", "cpu", "--precision", "fp32"])
        assert result.exit_code == 0, result.output
        expected = (tmp_path / "cli" / "photo.png").read_bytes()

        evaluate(browser, session, "document.querySelector('.result a.download').click()")
        browser.wait_for("Browser.downloadProgress", state="completed")
        assert (downloads / "photo.png").read_bytes() == expected

        evaluate(browser, session, "document.querySelector('#download-all').click()")
        browser.wait_for("Browser.downloadProgress", state="completed")
        with zipfile.ZipFile(downloads / "i2i-results.zip") as archive:
            assert archive.testzip() is None
            assert archive.namelist() == ["photo.png"] and archive.read("photo.png") == expected

        shot = browser.send("Page.captureScreenshot", {"format": "png"}, session)["data"]
        (tmp_path / "screenshot.png").write_bytes(base64.b64decode(shot))
        pixels = np.asarray(Image.open(stdio.BytesIO(base64.b64decode(shot))).convert("RGB")).astype(int)
    finally:
        browser.close()
        server.stop()
    assert pixels.shape == (700, 1000, 3)
    assert pixels.std() > 20, "the screenshot is blank"
    header = pixels[:30].reshape(-1, 3)
    assert (np.abs(header - [0x1f, 0x3b, 0x57]).sum(axis=1) < 30).mean() > 0.5, "no page header drawn"
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert colours > 500, f"only {colours} colours: the input and output images are not shown"
