"""User mistakes on the command line are one line and cost nothing: no input overwritten, no
output outside OUTPUT, no folder named like a file, no silent success with nothing done, no
"Aborted!" for Ctrl-C, no exporter dump above the error."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner
from conftest import noise, save
from test_import import compact_state
from test_infer import make_models
from test_train import paired

from i2i.cli import main
from i2i.data import io


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return make_models(tmp_path_factory.mktemp("models"))


def run_cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args], prog_name="i2i")
    return result.exit_code, result.output


def refused(code: int, output: str, *words: str) -> bool:
    """Exit status 2 and one `error:` line holding every one of `words`, no traceback."""
    return (code == 2 and output.count("\n") == 1 and output.startswith("error: ")
            and all(word in output for word in words) and "Traceback" not in output)


def invoke_commands(*callbacks) -> list:
    """Each callback run as an `i2i` command of its own (the CLI's error handling around it),
    added for the call only; their click Results."""
    names = [callback.__name__.replace("_", "-") for callback in callbacks]
    for name, callback in zip(names, callbacks):
        main.add_command(click.Command(name, callback=callback))
    try:
        return [CliRunner().invoke(main, [name]) for name in names]
    finally:
        for name in names:
            main.commands.pop(name)


def files_under(folder: Path) -> set[Path]:
    return {path.relative_to(folder) for path in folder.rglob("*")}


# ----------------------------------------------------------------------------- models import / export


def test_import_never_overwrites_its_input_and_writes_safetensors_only(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    monkeypatch.chdir(tmp_path)
    torch.save(compact_state(), "ref_G.pth")
    save_file(compact_state(seed=1), "ref_G.safetensors")  # a foreign file i2i could write over
    before = {name: Path(name).read_bytes() for name in ("ref_G.pth", "ref_G.safetensors")}
    for source, out in (("ref_G.pth", "ref_G.pth"), ("ref_G.pth", "sub/../ref_G.pth"),
                        ("ref_G.safetensors", "ref_G.safetensors"), ("ref_G.safetensors", "./ref_G.safetensors")):
        assert refused(*run_cli("models", "import", source, "--out", out), "input file", f"({source})")
    for out in ("x.onnx", "noext"):
        assert refused(*run_cli("models", "import", "ref_G.pth", "--out", out), out, ".safetensors")
    assert {name: Path(name).read_bytes() for name in before} == before
    assert files_under(tmp_path) == {Path(name) for name in before}

    code, output = run_cli("models", "import", "ref_G.pth", "--out", "imported.safetensors")
    assert code == 0 and "wrote imported.safetensors" in output
    first = Path("imported.safetensors").read_bytes()  # e.g. a run's trained model
    assert refused(*run_cli("models", "import", "ref_G.safetensors", "--out", "imported.safetensors"),
                   "imported.safetensors exists", "--overwrite")
    assert Path("imported.safetensors").read_bytes() == first
    code, output = run_cli("models", "import", "ref_G.safetensors", "--out", "imported.safetensors", "--overwrite")
    assert code == 0 and Path("imported.safetensors").read_bytes() != first
    assert refused(*run_cli("models", "import", "imported.safetensors", "--out", "again.safetensors"),
                   "already an i2i model file")


def test_export_never_overwrites_its_model_and_writes_onnx_only(tmp_path, models):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(models["sr"], run / "model.safetensors")
    before = (run / "model.safetensors").read_bytes()
    for out in (run / "model.safetensors", run / "sub" / ".." / "model.safetensors"):
        assert refused(*run_cli("models", "export", run, "--out", out), "input file")
    for out in (run / "model.bin", run / "model"):
        assert refused(*run_cli("models", "export", run, "--out", out), str(out), ".onnx")
    assert (run / "model.safetensors").read_bytes() == before
    assert files_under(tmp_path) == {Path("run"), Path("run/model.safetensors")}
    (tmp_path / "mine.onnx").write_bytes(b"an earlier export, kept")
    assert refused(*run_cli("models", "export", run, "--out", tmp_path / "mine.onnx"), "exists", "--overwrite")
    assert (tmp_path / "mine.onnx").read_bytes() == b"an earlier export, kept"


def test_eval_json_is_a_json_file_never_an_input_image(tmp_path):
    """`--json` onto an HR image (or a model) was written over it; a name without .json is
    refused before the evaluation, and an earlier figures file is replaced as a re-run expects."""
    hr = tmp_path / "hr"
    hr.mkdir()
    save(hr / "a.png", noise(24, 24, 3))
    before = (hr / "a.png").read_bytes()
    assert refused(*run_cli("eval", "bicubic", hr, "--scale", "2", "--json", hr / "a.png"), "a.png", ".json")
    assert (hr / "a.png").read_bytes() == before
    figures = tmp_path / "figures.json"
    for _ in range(2):
        code, output = run_cli("eval", "bicubic", hr, "--scale", "2", "--json", figures)
        assert code == 0 and f"wrote {figures}" in output


def test_export_default_output_still_works(tmp_path, models):
    pytest.importorskip("onnx", reason="onnx is not installed (pip install 'i2i[export]')")
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(models["sr"], run / "model.safetensors")
    code, output = run_cli("models", "export", run)
    assert code == 0, output
    assert (run / "model.onnx").is_file() and f"wrote {run / 'model.onnx'}" in output


def test_export_failure_is_one_line_without_the_exporters_dump(tmp_path, models, capfd):
    """torch's TorchScript exporter prints the whole graph (from C++, past sys.stdout) before
    raising; none of it reaches the terminal."""
    pytest.importorskip("onnx", reason="onnx is not installed (pip install 'i2i[export]')")
    code, output = run_cli("models", "export", models["sr"], "--out", tmp_path / "x.onnx", "--opset", "99")
    native = capfd.readouterr()
    assert code == 1 and output.count("\n") == 1, output
    assert output.startswith("error: ") and "99" in output
    assert "graph" not in native.out + native.err and native.out + native.err == "", native
    assert not (tmp_path / "x.onnx").exists()


def test_dynamo_export_of_an_opset_it_cannot_write_is_refused(tmp_path, models, capfd):
    """torch.export's exporter logs a traceback and writes its own opset (18) where it cannot
    convert: that file would claim opset 99 in its metadata."""
    pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install 'i2i[export]')")
    code, output = run_cli("models", "export", models["sr"], "--out", tmp_path / "x.onnx", "--opset", "99",
                           "--exporter", "dynamo")
    native = capfd.readouterr()
    assert code == 1 and output.count("\n") == 1 and "cannot write opset 99" in output, output
    assert native.out + native.err == "", native
    assert not (tmp_path / "x.onnx").exists()


# ----------------------------------------------------------------------------- translate


def test_translate_suffix_cannot_leave_the_output_folder(tmp_path, models):
    save(tmp_path / "in" / "a.png", noise(8, 8))
    save(tmp_path / "in" / "sub" / "a.png", noise(8, 8))
    for suffix in ("/../x", "..", "_a/b", "_a\\b"):
        code, output = run_cli("translate", models["sr"], tmp_path / "in", tmp_path / "out", "--suffix", suffix)
        assert refused(code, output, "suffix", repr(suffix))
    assert files_under(tmp_path) == {Path("in"), Path("in/a.png"), Path("in/sub"), Path("in/sub/a.png")}


def test_translate_output_that_is_a_file_is_refused_before_the_model_loads(tmp_path, models):
    save(tmp_path / "in" / "a.png", noise(8, 8))
    listing = tmp_path / "f.txt"
    listing.write_text("keep me")
    absent = tmp_path / "absent.safetensors"  # were it loaded first, the error would name it
    for out in (listing, listing / "sub"):
        assert refused(*run_cli("translate", absent, tmp_path / "in", out), f"{listing}: exists and is not a folder")
        assert refused(*run_cli("translate", models["sr"], tmp_path / "in", out), f"{listing}: exists and is not a folder")
    assert refused(*run_cli("translate", models["sr"], tmp_path / "in" / "a.png", tmp_path / "in" / "a.png" / "x"),
                   "exists and is not a folder")
    assert listing.read_text() == "keep me"
    assert files_under(tmp_path) == {Path("in"), Path("in/a.png"), Path("f.txt")}


def test_translate_with_nothing_to_translate_fails_but_all_skipped_succeeds(tmp_path, models):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.txt").write_text("no images here")
    for folder in (tmp_path / "empty", tmp_path / "notes"):
        code, output = run_cli("translate", models["sr"], folder, tmp_path / "out", "--device", "cpu")
        assert code == 1 and output.count("\n") == 1, output
        assert output.startswith(f"error: {folder}: no images") and ".png" in output
    assert not (tmp_path / "out").exists()

    save(tmp_path / "in" / "a.png", noise(8, 8))
    code, output = run_cli("translate", models["sr"], tmp_path / "in", tmp_path / "out", "--device", "cpu")
    assert code == 0 and "done 1, skipped 0, failed 0" in output, output
    code, output = run_cli("translate", models["sr"], tmp_path / "in", tmp_path / "out", "--device", "cpu")
    assert code == 0 and "done 0, skipped 1, failed 0" in output, output


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs sysfs, where nobody can make a folder")
def test_translate_into_a_folder_that_cannot_be_written_stops_before_any_work(tmp_path, models):
    """It computed every image and then printed one 'cannot write' line per image."""
    (tmp_path / "in").mkdir()
    for name in ("a", "b", "c"):
        save(tmp_path / "in" / f"{name}.png", noise(8, 8))
    code, output = run_cli("translate", models["sr"], tmp_path / "in", "/sys/i2i-test-out", "--device", "cpu")
    assert code == 1 and output.count("\n") == 1 and "/sys/i2i-test-out/: cannot write there" in output, output


def test_translate_of_a_dangling_or_looping_link_says_so(tmp_path, models):
    (tmp_path / "loopA").symlink_to(tmp_path / "loopB")
    (tmp_path / "loopB").symlink_to(tmp_path / "loopA")
    (tmp_path / "dangling.png").symlink_to(tmp_path / "gone.png")
    for name in ("loopA", "dangling.png"):
        code, output = run_cli("translate", models["sr"], tmp_path / name, tmp_path / "out", "--device", "cpu")
        assert code == 1 and output.count("\n") == 1, output  # as a missing input
        assert f"{name}: no such file or folder (a symbolic link to nothing, or a loop of links)" in output


def test_translate_to_jpeg_says_that_transparency_was_dropped(tmp_path, models):
    import numpy as np

    (tmp_path / "in").mkdir()
    save(tmp_path / "in" / "opaque.png", noise(8, 8))
    io.write_image(tmp_path / "in" / "clear.png", noise(8, 8), np.full((8, 8), 128, np.uint8))
    code, output = run_cli("translate", models["sr"], tmp_path / "in", tmp_path / "out", "--ext", "jpg",
                           "--device", "cpu")
    assert code == 0 and "done 2" in output, output
    assert "the transparency of 1 image was dropped (JPEG and BMP have none; a PNG output keeps it)" in output
    code, output = run_cli("translate", models["sr"], tmp_path / "in", tmp_path / "png", "--device", "cpu")
    assert code == 0 and "transparency" not in output, output


def test_translate_one_image_to_a_format_it_cannot_write(tmp_path, models):
    image = save(tmp_path / "a.png", noise(8, 8))
    for name in ("out.gif", "out.xyz"):
        code, output = run_cli("translate", models["sr"], image, tmp_path / name, "--device", "cpu")
        assert refused(code, output, name, f"cannot write {name[3:]} images", ".png", ".jpg", ".webp")
        assert not (tmp_path / name).exists()
    for out, written in (("out", "out/a.png"), ("out.v2/", "out.v2/a.png"), ("b.jpg", "b.jpg")):
        code, output = run_cli("translate", models["sr"], image, f"{tmp_path}/{out}", "--device", "cpu")
        assert code == 0 and (tmp_path / written).is_file(), output


# ----------------------------------------------------------------------------- Ctrl-C


def _torch_loading(pid: int) -> bool:
    """The process maps libtorch: its command runs (the CLI imports torch inside commands only)."""
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see the command start")
def test_ctrl_c_before_the_first_step_exits_130(tmp_path):
    """A SIGINT while torch is still being imported exits 130, as one done in training would
    (there the trainer checkpoints first); never click's "Aborted!" and exit 1."""
    data = paired(tmp_path / "data")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "i2i", "train", "pix2pix", "--data", str(data),
                             "--out", str(tmp_path / "run"), "--netG", "unet_32", "--width", "4", "--ndf", "4",
                             "--image-size", "32", "--load-size", "36", "--num-workers", "0",
                             "--max-steps", "100000"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 60
    while not _torch_loading(proc.pid) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Aborted" not in err, err
    assert "interrupted" in err or "SIGINT: stopped at step" in err, err


def test_ctrl_c_that_surfaces_as_another_error_is_still_an_interrupt():
    """A SIGINT inside an import can leave a half-initialised module whose next use fails with
    another error (seen: a RecursionError in numpy, an ImportError for a pipeline): after a
    Ctrl-C that is "interrupted", exit 130; without one the same error is not hidden."""

    def half_imported() -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            raise RecursionError("maximum recursion depth exceeded") from None

    def plain_error() -> None:
        raise RecursionError("a bug, not an interrupt")

    interrupted, failed = invoke_commands(half_imported, plain_error)
    assert interrupted.exit_code == 130 and interrupted.output == "interrupted\n"
    assert isinstance(failed.exception, RecursionError)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the command's handler is gone


def test_a_ctrl_c_that_an_import_swallowed_still_stops_training(tmp_path, monkeypatch):
    """Seen 2 times in 80: a SIGINT inside a library's import was caught there and dropped, and
    training went on until a second Ctrl-C. The CLI's handler noted it; the trainer reads that
    when it takes the signal over, and stops before its first step with a checkpoint."""
    from i2i.training import trainer

    enter = trainer._StopSignal.__enter__

    def swallowed_then_enter(self):
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:  # what the library's import did
            pass
        return enter(self)

    monkeypatch.setattr(trainer._StopSignal, "__enter__", swallowed_then_enter)
    code, output = run_cli("train", "pix2pix", "--data", paired(tmp_path / "data"), "--out", tmp_path / "run",
                           "--netG", "unet_32", "--width", "4", "--ndf", "4", "--image-size", "32",
                           "--load-size", "36", "--num-workers", "0", "--max-steps", "20")
    assert code == 130 and "SIGINT: stopped at step 0 of 20; checkpoint saved" in output, output
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    monkeypatch.undo()
    code, output = run_cli("train", "pix2pix", "--out", tmp_path / "run", "--resume", "--max-steps", "2")
    assert code == 0, output


def test_a_missing_core_dependency_is_one_line(monkeypatch):
    """A broken install (kornia, albumentations or scipy missing) gave an import traceback."""

    def needs_kornia() -> None:
        import kornia.filters  # noqa: F401

    def broken_own_import() -> None:
        import i2i.no_such_module  # noqa: F401  a bug of ours stays a traceback

    monkeypatch.setitem(sys.modules, "kornia", None)
    missing, bug = invoke_commands(needs_kornia, broken_own_import)
    assert missing.exit_code == 1 and missing.output.count("\n") == 1, missing.output
    assert missing.output.startswith("error: i2i needs the Python package 'kornia'") and "pip install -e ." in missing.output
    assert isinstance(bug.exception, ModuleNotFoundError)


def test_commands_other_than_train_refuse_torchrun(tmp_path, models, monkeypatch):
    """Under torchrun each process ran the whole translate, racing over one output folder."""
    save(tmp_path / "in" / "a.png", noise(8, 8))
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, output = run_cli("translate", models["sr"], tmp_path / "in", tmp_path / "out")
    assert code == 2 and "i2i translate runs as one process; torchrun is for `i2i train`" in output, output
    assert not (tmp_path / "out").exists()


def test_a_cut_message_ends_at_a_word():
    """A message cut for one line ended mid-word ("...transferred incorrectly, o)")."""
    from i2i.errors import one_line

    text = one_line(ValueError("the file was transferred incorrectly, or it is not a checkpoint"), 40)
    assert text == "the file was transferred incorrectly,…"
    assert one_line(ValueError("short"), 40) == "short"


def test_a_plain_pickle_is_one_line_without_torch_warnings(tmp_path):
    """A .pth written by plain `pickle` (protocol 4): torch's weights-only loader warned in two
    lines above ours; now just the one line."""
    import pickle

    import warnings

    (tmp_path / "p.pth").write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        code, output = run_cli("models", "import", tmp_path / "p.pth", "--out", tmp_path / "p.safetensors")
    assert code == 1 and output.count("\n") == 1 and "not a PyTorch weights file" in output, output
    assert not shown, [str(w.message) for w in shown]
