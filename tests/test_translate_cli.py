"""`i2i translate`: the CLI runs the API on a real folder tree; user errors are one line."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_infer import make_models, make_tree, output_for, pattern

from i2i.cli import main
from i2i.data import io
from i2i.infer import load_model


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return make_models(tmp_path_factory.mktemp("models"))


def translate(*args: str):
    return CliRunner().invoke(main, ["translate", *map(str, args)])


def test_cli_tree_matches_the_api(tmp_path, models):
    src = tmp_path / "in"
    good, bad = make_tree(src)
    result = translate(models["cyclegan"], src, tmp_path / "cli", "--direction", "BtoA", "--suffix", "_B",
                       "--batch-size", "2", "--workers", "3", "--device", "cpu", "--precision", "fp32")
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    for rel in bad:
        assert str(src / rel) in result.stderr
    assert f"done {len(good)}, skipped 0, failed {len(bad)}" in result.stderr

    translator = load_model(models["cyclegan"], device="cpu", precision="fp32", direction="BtoA")
    summary = translator.translate_folder(src, tmp_path / "api", suffix="_B", progress=False)
    assert summary.done == len(good)
    for rel in good:
        cli = io.read_image(output_for(tmp_path / "cli", rel, suffix="_B"))
        api = io.read_image(output_for(tmp_path / "api", rel, suffix="_B"))
        # each run times the memory layouts and may keep another (a busy machine): float rounding
        # then moves a value by one level at most, 16-bit outputs included
        assert np.abs(cli.pixels.astype(np.int64) - api.pixels).max() <= 1, rel
        assert (cli.alpha is None) == (api.alpha is None)

    again = translate(models["cyclegan"], src, tmp_path / "cli", "--direction", "BtoA", "--suffix", "_B")
    assert f"done 0, skipped {len(good)}, failed {len(bad)}" in again.stderr
    redo = translate(models["cyclegan"], src, tmp_path / "cli", "--direction", "BtoA", "--suffix", "_B",
                     "--overwrite")
    assert f"done {len(good)}, skipped 0, failed {len(bad)}" in redo.stderr


def test_cli_sr_tiles_jpg_and_success_exit(tmp_path, models):
    src = tmp_path / "in"
    src.mkdir()
    io.write_image(src / "photo.png", np.dstack([pattern(21, 30), np.full((21, 30), 200, np.uint8)]))
    result = translate(models["sr"], src / "photo.png", tmp_path / "out", "--ext", "jpg", "--tile", "8",
                       "--tile-pad", "8", "--quality", "90")
    assert result.exit_code == 0, result.output
    out = io.read_image(tmp_path / "out/photo.jpg")
    assert out.size == (60, 42) and out.alpha is None  # JPEG holds no alpha


def test_cli_user_errors_are_one_line(tmp_path, models):
    result = translate(models["sr"], tmp_path / "missing", tmp_path / "out")
    assert result.exit_code == 1 and result.stderr.strip().count("\n") == 0
    assert "no such file or folder" in result.stderr
    result = translate(models["sr"], tmp_path, tmp_path / "out", "--direction", "BtoA")
    assert result.exit_code == 2 and "AtoB" in result.stderr
    result = translate(models["sr"], tmp_path, tmp_path / "out", "--ext", "gif")
    assert result.exit_code == 2  # click's own choice check


def test_cli_wrong_model_file_in_a_real_process(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x00" * 64)
    src = tmp_path / "in"
    src.mkdir()
    io.write_image(src / "a.png", pattern(4, 4))
    run = subprocess.run([sys.executable, "-m", "i2i", "translate", str(bad), str(src), str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert run.stderr.startswith("error: ") and run.stderr.strip().count("\n") == 0, run.stderr
    assert str(bad) in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()


def test_eval_flag_switches_pix2pix_to_running_statistics(tmp_path):
    from test_infer import _tiny_pix2pix_file

    model = _tiny_pix2pix_file(tmp_path / "p2p.safetensors")
    src = tmp_path / "in"
    src.mkdir()
    io.write_image(src / "a.png", pattern(64, 64))
    image = io.read_image(src / "a.png").pixels
    for flags, mode in (([], "train"), (["--eval"], "eval"), (["--seed", "5"], "train")):
        out = tmp_path / f"out{len(flags)}{mode}"
        result = translate(model, src, out, "--device", "cpu", "--precision", "fp32", *flags)
        assert result.exit_code == 0, result.output
        seed = 5 if "--seed" in flags else 0
        expected = load_model(model, device="cpu", precision="fp32", test_mode=mode, seed=seed)(image)
        assert np.array_equal(io.read_image(out / "a.png").pixels, expected), flags
    first, second = (io.read_image(tmp_path / name / "a.png").pixels for name in ("out0train", "out1eval"))
    assert np.abs(first.astype(int) - second).max() > 10


# ----------------------------------------------------------------------------- hardening


def test_an_output_never_overwrites_an_input(tmp_path, models):
    d = tmp_path / "d"
    d.mkdir()
    for name in ("a0.png", "a1.png"):
        io.write_image(d / name, pattern(8, 8))
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    for args in ((d / "a0.png", d / "a0.png"), (d / "a1.png", d), (d, d), (d / "a0.png", tmp_path / "." / "d" / "a0.png")):
        result = translate(models["sr"], *args, "--overwrite", "--device", "cpu")
        assert result.exit_code == 2, (args, result.output)
        assert result.output.count("error:") == 1 and "Traceback" not in result.output
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    # an output folder inside the input folder still works (and is not read back as input)
    result = translate(models["sr"], d, d / "out", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (d / "out").iterdir()) == ["a0.png", "a1.png"]


def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path, models):
    """Piped or logged, `i2i translate` says it is tuning, and prints progress every 10 s
    (here every 0.05 s, through the same heartbeat) besides the final summary."""
    from i2i.infer import folder

    src = tmp_path / "in"
    for i in range(3):
        io.write_image(src / f"{i}.png", pattern(16, 16, seed=i))
    code = ("import sys, time\n"
            "from i2i.infer import folder, load_model\n"
            "folder._Heartbeat.__init__.__defaults__ = (0.01,)\n"
            f"t = load_model({str(models['sr'])!r}, device='cpu')\n"
            "original = t.translate_arrays\n"
            "def slow(*a, **k):\n    time.sleep(0.5)\n    return original(*a, **k)\n"
            "t.translate_arrays = slow\n"
            f"t.translate_folder({str(src)!r}, {str(tmp_path / 'out')!r}, workers=1)\n")
    assert folder._Heartbeat.__init__.__defaults__ == (10.0,)
    env = {**os.environ, "I2I_HOME": str(tmp_path / "home")}  # no probe result kept from other tests
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert any(line.startswith("measuring which precision") for line in lines), done.stderr
    beats = [line for line in lines if line.startswith("progress: ")]
    assert beats and all("/3 images" in beat for beat in beats), done.stderr
    assert lines[-1].startswith("done 3, skipped 0, failed 0")


def test_ab_split_translates_the_half_the_direction_starts_from(tmp_path, models):
    """The reference's aligned test layout: each file is A|B side by side."""
    left, right = pattern(10, 12, seed=1), pattern(10, 12, seed=2)
    src = tmp_path / "test"
    io.write_image(src / "pair.png", np.concatenate([left, right], axis=1))
    io.write_image(tmp_path / "left.png", left)
    io.write_image(tmp_path / "right.png", right)
    cases = (("AtoB", "left"), ("BtoA", "right"))
    for direction, half in cases:
        out = tmp_path / f"out_{direction}"
        result = translate(models["cyclegan"], src, out, "--ab-split", "--direction", direction, "--device", "cpu",
                           "--precision", "fp32")
        assert result.exit_code == 0, result.output
        expected = load_model(models["cyclegan"], device="cpu", precision="fp32", direction=direction)(
            io.read_image(tmp_path / f"{half}.png").pixels)
        assert np.array_equal(io.read_image(out / "pair.png").pixels, expected)


def test_a_tile_too_small_is_refused_up_front_as_the_server_refuses_it(tmp_path, models):
    """--tile 3 would run thousands of forward passes of mostly pad; translate and eval refuse
    it in one line before the model loads, with the rule the API and `i2i serve` use."""
    from i2i.infer.tiles import TILE_RULE

    io.write_image(tmp_path / "a.png", pattern(8, 8))
    for args in (["translate", models["sr"], tmp_path / "a.png", tmp_path / "out", "--tile", "3"],
                 ["eval", models["sr"], tmp_path, "--scale", "2", "--tile", "7"]):
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == 2 and result.output == f"error: tile must be {TILE_RULE}, not {args[-1]}\n", args
    assert not (tmp_path / "out").exists()
    assert translate(models["sr"], tmp_path / "a.png", tmp_path / "out", "--tile", "8").exit_code == 0
