"""Loss charts as a browser draws them (headless Chromium from the OS packages): on the run
page and embedded in a page with no stylesheet (as the demo page embeds them), the plot
areas are white with a blue line, not solid black, and no axis label is cut off."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from i2i.report import loss_charts, write_index

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian: apt-get install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]

# Every <text> of every chart reports whether it lies inside its <svg>.
CHECK = """<script>window.addEventListener('load', () => {
  const out = [];
  for (const svg of document.querySelectorAll('svg')) {
    const box = svg.getBoundingClientRect();
    for (const t of svg.querySelectorAll('text')) {
      const r = t.getBoundingClientRect();
      out.push({text: t.textContent, inside: r.left >= box.left - 0.5 && r.right <= box.right + 0.5});
    }
  }
  document.body.setAttribute('data-labels', JSON.stringify(out));
});</script>"""


def records() -> list[dict]:
    steps = range(1, 401)
    return [{"step": s, "epoch": 1, "G": 0.00927 + 1e-5 * (s - 1), "D": -12345.6 + s, "lr": 2e-4} for s in steps]


def browse(page: Path, tmp_path: Path) -> tuple[np.ndarray, list[dict]]:
    """(screenshot as an RGB array, the labels' placement) of `page` in headless Chromium."""
    profile = tmp_path / "profile"
    run = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=800,600"]
    shot = tmp_path / "shot.png"
    subprocess.run([*run, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True)
    dom = subprocess.run([*run, "--virtual-time-budget=3000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    labels = json.loads(dom.split("data-labels=\"")[1].split("\"")[0].replace("&quot;", "\""))
    return np.asarray(Image.open(shot).convert("RGB")), labels


def check(pixels: np.ndarray, labels: list[dict]) -> None:
    blue = (pixels[..., 2] > 150) & (pixels[..., 0] < 100)
    black = pixels.max(axis=2) < 30
    assert blue.sum() > 200, "no chart line drawn"
    assert black.mean() < 0.02, f"{black.mean():.1%} of the page is black"
    assert labels and all(label["inside"] for label in labels), [l for l in labels if not l["inside"]]
    assert any("0.00927" in label["text"] for label in labels)


def test_charts_on_the_run_page(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records()))
    page = write_index(run)
    page.write_text(page.read_text().replace("</body>", CHECK + "</body>"))
    check(*browse(page, tmp_path))


def test_charts_embedded_in_a_page_without_styles(tmp_path):
    page = tmp_path / "demo.html"
    page.write_text(f"<!DOCTYPE html><html><body>{loss_charts(records(), ('G', 'D'))}{CHECK}</body></html>")
    check(*browse(page, tmp_path))
