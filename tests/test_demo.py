"""`i2i demo` end to end with a few steps: trains both models, translates, writes the page."""
from __future__ import annotations

from click.testing import CliRunner

from i2i.cli import main
from i2i.data.io import list_images, read_image
from i2i.demo import SAMPLES


def test_demo_writes_page_with_every_photo(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--steps", "2", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert f"open {out / 'index.html'}" in result.output
    photos = list_images(SAMPLES)
    assert len(photos) >= 12
    page = (out / "index.html").read_text()
    for task in ("sketch", "colorize"):
        outputs = list_images(out / task)
        assert [p.stem for p in outputs] == [p.stem for p in photos]
        assert read_image(outputs[0]).size == read_image(photos[0]).size
        assert (out / "runs" / task / "model.safetensors").is_file()
        assert f"{task}/{photos[0].stem}.png" in page
    assert "<svg" in page  # loss curves


def test_demo_refuses_to_overwrite(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "keep.txt").write_text("mine")
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "demo"), "--steps", "1"])
    assert result.exit_code == 2
    assert "--overwrite" in result.output
    assert (tmp_path / "demo" / "keep.txt").read_text() == "mine"
