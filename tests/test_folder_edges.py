"""`i2i translate` / `Translator.translate_folder` on awkward folders: links that lead nowhere,
line breaks in names, colliding outputs, outputs too large for their format, and a progress
line that agrees with the summary. Each failure is one line naming its file; the run goes on."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_infer import make_models, pattern

from i2i.cli import main
from i2i.data import io
from i2i.infer import folder, load_model

FP32 = ("--device", "cpu", "--precision", "fp32")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return make_models(tmp_path_factory.mktemp("models"))


def translate(*args: object):
    return CliRunner().invoke(main, ["translate", *map(str, args)])


def failed_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("failed: ")]


def test_links_in_a_loop_or_to_nothing_fail_one_line_each(tmp_path, models):
    """Path.resolve() raised "Symlink loop from ..." for the whole run, and nothing was written."""
    d = tmp_path / "d"
    d.mkdir()
    io.write_image(d / "good.png", pattern(8, 8))
    (d / "loop2.png").symlink_to("loop1.png")
    (d / "loop1.png").symlink_to("loop2.png")
    (d / "dangling.png").symlink_to("nothing.png")
    result = translate(models["cyclegan"], d, tmp_path / "out", *FP32)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    lines = failed_lines(result.stderr)
    named = [line.split(":")[1].strip() for line in lines]
    assert named == [str(d / name) for name in ("dangling.png", "loop1.png", "loop2.png")]
    assert "symbolic links" in lines[1] and "no such file" in lines[0]
    assert "done 1, skipped 0, failed 3" in result.stderr
    assert io.read_image(tmp_path / "out/good.png").size == (8, 8)


def test_a_line_break_or_two_spaces_in_a_name_give_one_line_naming_it_once(tmp_path, models):
    """The reader writes a line break in a name as \\n: the runner looked for the raw name in
    the message, did not find it, and printed it again (with its line break) in front."""
    d = tmp_path / "d"
    d.mkdir()
    io.write_image(d / "good.png", pattern(8, 8))
    (d / "bad\nname.png").write_bytes(b"junk")
    (d / "two  spaces.png").write_bytes(b"junk")
    result = translate(models["cyclegan"], d, tmp_path / "out", *FP32)
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert all(line.startswith(("failed: ", "done ", "measuring ")) for line in lines), result.stderr
    not_an_image = "not an image (or not a format i2i reads: PNG, JPEG, WebP, BMP, TIFF, AVIF)"
    assert failed_lines(result.stderr) == [f"failed: {d}/bad\\nname.png: {not_an_image}",
                                           f"failed: {d}/two  spaces.png: {not_an_image}"]
    assert "done 1, skipped 0, failed 2" in result.stderr


def test_progress_counts_collisions_and_writes_as_the_summary_does(tmp_path, models, monkeypatch, capsys):
    """Three inputs whose output another takes and a slow image: the progress line said "3/4
    images (0 done, 3 failed)" (collisions missing from the total; files written counted only
    when collected), the summary "done 4, skipped 0, failed 3"."""
    src = tmp_path / "in"
    for name in ("a", "b", "c"):
        io.write_image(src / f"{name}.jpg", pattern(8, 8), quality=95)
        io.write_image(src / f"{name}.png", pattern(8, 8))
    io.write_image(src / "slow.png", pattern(9, 8))
    translator = load_model(models["cyclegan"], device="cpu", precision="fp32")
    original = translator.translate_arrays

    def slow(pixels, *args, **kwargs):
        if pixels[0].shape[0] == 9:  # heartbeats while the model thread waits for this one,
            deadline = time.time() + 30  # after the other three are written (however busy the machine)
            while len(list((tmp_path / "out").glob("*.png"))) < 3 and time.time() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)
        return original(pixels, *args, **kwargs)

    monkeypatch.setattr(translator, "translate_arrays", slow)
    monkeypatch.setattr(folder._Heartbeat.__init__, "__defaults__", (0.02,))
    summary = translator.translate_folder(src, tmp_path / "out", workers=1, progress=True)
    assert (summary.done, summary.skipped, summary.failed) == (4, 0, 3)
    lines = capsys.readouterr().err.splitlines()
    beats = [line for line in lines if line.startswith("progress: ")]
    assert beats and all("/7 images" in beat for beat in beats), beats
    assert any(beat.startswith("progress: 6/7 images (3 done, 3 failed)") for beat in beats), beats
    assert lines[-1].startswith("done 4, skipped 0, failed 3")


def test_a_collision_with_a_file_that_fails_says_nothing_untrue(tmp_path, models):
    """trunc.png was refused as "already made from trunc.jpg" while trunc.jpg failed."""
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    (zoo / "trunc.jpg").write_bytes(b"\xff\xd8\xff\xe0junk")
    io.write_image(zoo / "trunc.png", pattern(8, 8))
    out = tmp_path / "out"
    result = translate(models["cyclegan"], zoo, out, *FP32)
    assert result.exit_code == 1, result.output
    assert "already made" not in result.stderr
    assert failed_lines(result.stderr) == [
        (f"failed: {zoo}/trunc.png: {out}/trunc.png is also the output of {zoo}/trunc.jpg; rename one "
         "(or use --ext same, or a --suffix)"),
        f"failed: {zoo}/trunc.jpg: truncated file (image data ends early)"]
    assert not out.exists() or not any(out.iterdir())


def test_an_output_too_large_for_its_format_fails_before_the_compute(tmp_path):
    """JPEG holds 65500 px a side, WebP 16383, AVIF 32768 (what libavif opens again): the output's
    size is the input's times the model's scale, known before the compute (which took 34 s for
    srresnet-x4 on a 100000 x 1 input before "cannot encode as JPG (broken data stream ...)")."""
    src = tmp_path / "in"
    io.write_image(src / "wide.png", pattern(1, 32751))  # x2: 65502 wide
    io.write_image(src / "tall.webp", pattern(8192, 1))  # x2: 16384 high
    io.write_image(src / "fits.webp", pattern(8191, 1))  # x2: 16382 high
    io.write_image(src / "web.avif", pattern(16, 12))  # --ext same: an AVIF photo stays AVIF
    io.write_image(src / "wide.avif", pattern(1, 16385))  # x2: 32770 wide
    computed: list[tuple[int, ...]] = []

    def twice(images: list[io.Image]) -> list[tuple[np.ndarray, None]]:
        computed.extend(image.pixels.shape for image in images)
        return [(image.pixels.repeat(2, 0).repeat(2, 1), None) for image in images]

    summary = folder.run_folder(src, tmp_path / "out", twice, ext="same", suffix="", batch_size=1, overwrite=False,
                                quality=90, workers=1, default_workers=1, split_threads=False, progress=False,
                                scale=2)
    assert sorted(computed) == [(1, 32751, 3), (16, 12, 3), (8191, 1, 3)]  # wide.png goes to a PNG
    assert (summary.done, summary.failed) == (3, 2)
    assert summary.failures == [(f"{src}/tall.webp: its output would be 2x16384 px; WebP holds at most 16383 px "
                                 f"a side ({tmp_path}/out/tall.webp); write it as PNG or TIFF"),
                                (f"{src}/wide.avif: its output would be 32770x2 px; AVIF holds at most 32768 px "
                                 f"a side ({tmp_path}/out/wide.avif); write it as PNG or TIFF")]
    assert io.read_image(tmp_path / "out/web.avif").pixels.shape == (32, 24, 3)
    summary = folder.run_folder(src / "wide.png", tmp_path / "o.jpg", twice, ext="png", suffix="", batch_size=1,
                                overwrite=False, quality=90, workers=1, default_workers=1, split_threads=False,
                                progress=False, scale=2)
    assert len(computed) == 3 and summary.failed == 1
    assert "its output would be 65502x2 px; JPEG holds at most 65500 px a side" in summary.failures[0]


def test_translate_refuses_a_jpg_too_wide_in_one_line(tmp_path, models):
    io.write_image(tmp_path / "wide.png", pattern(4, 65501))
    result = translate(models["cyclegan"], tmp_path / "wide.png", tmp_path / "o.jpg", *FP32)
    assert result.exit_code == 1, result.output
    assert failed_lines(result.stderr) == [
        (f"failed: {tmp_path}/wide.png: its output would be 65501x4 px; JPEG holds at most 65500 px a side "
         f"({tmp_path}/o.jpg); write it as PNG or TIFF")]
    assert "Maximum supported image dimension" not in result.output and not (tmp_path / "o.jpg").exists()
