"""Odd storage under the commands: pipes and sockets among the images, a deleted current
folder, outputs that cannot be made, a run folder inside its own data. Each is one line
naming the file and what is wrong: never a hang, a traceback or a run that cannot resume."""
from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import noise, save

from i2i.cli import main
from i2i.data import io
from i2i.data.derive import derive_pairs
from i2i.errors import I2IError, ImageReadError, UsageError
from i2i.infer import folder

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


def _identity(images: list[io.Image]) -> list[tuple[np.ndarray, np.ndarray | None]]:
    return [(image.pixels, image.alpha) for image in images]


def _release(fifo: Path) -> None:
    """Give a reader blocked on `fifo` its end of file (a writer opens and closes it)."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # no reader waits: nothing to release
        pass


@needs_fifo
def test_a_link_to_a_fifo_in_the_input_folder_fails_one_line_and_does_not_hang(tmp_path):
    """A link is listed (it may lead to an image); opening a FIFO without a writer blocked the
    reader thread forever, so `i2i translate` never ended."""
    src = tmp_path / "in"
    save(src / "a.png", noise(8, 8))
    os.mkfifo(src / "pipe")
    (src / "b.png").symlink_to("pipe")
    result: dict = {}

    def translate() -> None:
        result["summary"] = folder.run_folder(src, tmp_path / "out", _identity, ext="png", suffix="", batch_size=1,
                                              overwrite=False, quality=95, workers=1, default_workers=1,
                                              split_threads=False, progress=False)

    thread = threading.Thread(target=translate, daemon=True)
    thread.start()
    thread.join(20)
    hung = thread.is_alive()
    _release(src / "pipe")
    thread.join(5)
    assert not hung, "translating a folder with a link to a FIFO hung"
    summary = result["summary"]
    assert (summary.done, summary.failed) == (1, 1)
    assert summary.failures[0].startswith(f"{src / 'b.png'}: not a regular file")


def test_a_link_to_a_socket_is_named_as_not_a_regular_file(tmp_path):
    path = tmp_path / "s"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
    except OSError as error:  # a path too long for AF_UNIX (108 bytes)
        pytest.skip(f"cannot make a socket here: {error}")
    try:
        (tmp_path / "x.png").symlink_to(path)
        with pytest.raises(ImageReadError, match=r"x\.png: not a regular file \(a pipe, socket or device\)"):
            io.read_image(tmp_path / "x.png")
    finally:
        server.close()


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_a_link_to_a_device_is_refused_before_it_is_read(tmp_path):
    """/dev/zero never ends: reading it whole filled the memory."""
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    with pytest.raises(ImageReadError, match="not a regular file"):
        io.read_image(tmp_path / "zero.png")


def test_a_folder_is_still_named_as_a_folder(tmp_path):
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ImageReadError, match=r"d\.png: is a folder"):
        io.read_image(tmp_path / "d.png")


@needs_fifo
def test_a_fifo_given_as_the_input_is_not_called_missing(tmp_path):
    """It exists: "no such file or folder" sent the user looking for a typo."""
    os.mkfifo(tmp_path / "p.png")
    with pytest.raises(I2IError, match=r"p\.png: not a regular file or folder"):
        folder.check_paths(tmp_path / "p.png", tmp_path / "out")


def test_a_deleted_current_folder_is_one_line(monkeypatch):
    """torch (its MKL) died at import with "Cannot load libtorch_cpu.so", which names a library."""
    def gone() -> str:
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(os, "getcwd", gone)
    result = CliRunner().invoke(main, ["info"])
    assert result.exit_code == 1, result.output
    assert "the current folder no longer exists" in result.output
    assert "Traceback" not in result.output


def test_derive_into_a_loop_of_links_is_one_line(tmp_path):
    """Path.resolve() raised RuntimeError("Symlink loop from ...") as a traceback."""
    save(tmp_path / "photos" / "a.png", noise(16, 16))
    (tmp_path / "loop").symlink_to("loop")
    with pytest.raises(I2IError, match=r"loop/A/: cannot make the folder"):
        derive_pairs("sr", tmp_path / "photos", tmp_path / "loop", scale=2)


def test_derive_where_a_file_holds_the_pairs_folder_name_is_one_line(tmp_path):
    """mkdir's FileExistsError came out as a traceback."""
    save(tmp_path / "photos" / "a.png", noise(16, 16))
    (tmp_path / "pairs").mkdir()
    (tmp_path / "pairs" / "A").write_text("not a folder")
    with pytest.raises(I2IError, match=r"pairs/A/: cannot make the folder \(File exists\)"):
        derive_pairs("sr", tmp_path / "photos", tmp_path / "pairs", scale=2)


def test_a_new_run_inside_its_data_folder_is_refused(tmp_path):
    """The data is listed recursively: the run's sample grids became training images, and its
    --resume was then refused because the data had changed length. Where the dataset lists
    images (a --task folder whatever its sub-folders, trainA/ through a link, --lr-data) a new
    run is refused; beside them, or in a hidden folder, it trains and resumes."""
    import i2i

    photos = tmp_path / "photos"
    for i in range(2):
        save(photos / "train" / f"{i}.png", noise(32, 32))  # a sub-folder named as a layout's
    settings = {"data": str(photos), "task": "sketch", "netG": "unet_32", "width": 4, "ndf": 4, "image_size": 32,
                "preprocess": "crop", "max_steps": 1, "precision": "fp32", "channels_last": "off",
                "out": str(photos / "runs" / "x")}
    with pytest.raises(UsageError, match=r"runs/x/ is inside .*photos/, which training reads images from"):
        i2i.train("pix2pix", settings)
    assert not (photos / "runs").exists()
    i2i.train("pix2pix", {**settings, "out": str(photos / ".runs" / "x")})  # hidden: never listed

    unpaired, elsewhere = tmp_path / "horses", tmp_path / "elsewhere"
    save(elsewhere / "0.png", noise(32, 32))
    save(unpaired / "trainB" / "0.png", noise(32, 32))
    (unpaired / "trainA").symlink_to(elsewhere, target_is_directory=True)
    settings = {key: value for key, value in settings.items() if key != "task"}
    with pytest.raises(UsageError, match=r"inside .*trainA/"):
        i2i.train("cyclegan", {**settings, "data": str(unpaired), "out": str(unpaired / "trainA/run")})
    i2i.train("cyclegan", {**settings, "data": str(unpaired), "out": str(unpaired / "runs/first")})
    i2i.train("cyclegan", {"out": str(unpaired / "runs/first"), "max_steps": 2}, resume=True)

    hr, lr = tmp_path / "hr", tmp_path / "lr"
    save(hr / "0.png", noise(32, 32))
    save(lr / "0.png", noise(16, 16))
    sr = {"data": str(hr), "lr_data": str(lr), "scale": 2, "width": 4, "num_blocks": 1, "image_size": 16,
          "max_steps": 1, "num_workers": 0}
    with pytest.raises(UsageError, match=r"inside .*lr/"):
        i2i.train("srgan", {**sr, "out": str(lr / "run")})


@needs_fifo
def test_models_import_of_a_fifo_says_it_is_not_a_regular_file(tmp_path):
    """It exists: "file not found" sent the user looking for a typo."""
    os.mkfifo(tmp_path / "G.pth")
    result = CliRunner().invoke(main, ["models", "import", str(tmp_path / "G.pth"),
                                       "--out", str(tmp_path / "G.safetensors")])
    assert result.exit_code == 1, result.output
    assert "G.pth: not a regular file (a pipe, socket or device)" in result.output
    assert "not found" not in result.output


def test_a_quoted_tilde_gets_a_hint_and_never_makes_a_folder_named_tilde(tmp_path, monkeypatch):
    """'~/photos' in quotes reaches i2i unexpanded: the input was "no such file" with no hint,
    and an output '~/out/' made a folder named ~ in the current folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    save(tmp_path / "photos" / "a.png", noise(8, 8))
    with pytest.raises(I2IError, match=r"~/photos: no such file or folder \(the shell did not expand ~"):
        folder.check_paths("~/photos", "out")
    for output in ("~/out/", "~/out.png", "~"):
        with pytest.raises(UsageError, match=r"would make a folder named ~ here \(the shell did not expand ~"):
            folder.check_paths("photos", output)
    result = CliRunner().invoke(main, ["translate", "no-such-model", "photos", "~/out/"])
    assert result.exit_code != 0 and "the shell did not expand ~" in result.output, result.output
    assert not (tmp_path / "~").exists()
    assert folder.check_paths("photos", "./~/o") is False  # asked for by name: not a quoted ~
    (tmp_path / "~").mkdir()  # a folder really named ~ is the user's to write into
    assert folder.check_paths("photos", "~/out/") is False


def test_an_output_name_too_long_for_the_file_system_fails_before_it_is_computed(tmp_path):
    """A long input name plus --suffix failed only when its output was written, after the
    compute; once the output folder existed, the run died with a traceback (stat's ENAMETOOLONG)."""
    src = tmp_path / "in"
    long_name = "a" * 248 + ".png"
    save(src / long_name, noise(8, 8))
    save(src / "b.png", noise(8, 8))
    computed: list[int] = []

    def compute(images: list[io.Image]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        computed.append(len(images))
        return _identity(images)

    (tmp_path / "out").mkdir()
    for _ in range(2):  # the rerun skips b.png and fails the long one again, the same way
        summary = folder.run_folder(src, tmp_path / "out", compute, ext="png", suffix="_fake_x", batch_size=1,
                                    overwrite=False, quality=95, workers=1, default_workers=1,
                                    split_threads=False, progress=False)
        assert summary.failed == 1
        assert summary.failures[0].startswith(f"{src / long_name}: {tmp_path / 'out'}/{'a' * 248}_fake_x.png: "
                                              "cannot write the file (its name is 259 bytes")
    assert computed == [1]  # b.png only, once
    assert (tmp_path / "out" / "b_fake_x.png").is_file()


def _failing_replace(monkeypatch, fails: Callable[[Path], bool], code: int) -> None:
    """os.replace (the last step of every atomic write) raising `code` for the targets `fails` picks."""
    replace = os.replace

    def fake(src, dst, *args, **kwargs):
        if fails(Path(dst)):
            raise OSError(code, os.strerror(code), str(dst))
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", fake)


def test_derive_stops_at_the_first_full_disk_error(tmp_path, monkeypatch):
    """Each later pair failed the same way, one line each, after it was computed."""
    for i in range(4):
        save(tmp_path / "photos" / f"{i}.png", noise(16, 16))
    _failing_replace(monkeypatch, lambda path: path.name != "0.png", errno.ENOSPC)
    result = derive_pairs("colorize", tmp_path / "photos", tmp_path / "pairs")
    assert result.written == 1
    assert len(result.problems) == 1, result.problems
    assert "No space left on device" in result.problems[0]
    assert "stopped after 1 pair written" in result.problems[0]
    assert sorted(p.name for p in (tmp_path / "pairs" / "A").iterdir()) == ["0.png"]
    assert sorted(p.name for p in (tmp_path / "pairs" / "B").iterdir()) == ["0.png"]


def test_derive_onto_a_really_full_file_system_stops_at_the_first_pair(tmp_path):
    """The same on a 64 KiB tmpfs (needs root, or a system that lets this user mount)."""
    for i in range(8):
        save(tmp_path / "photos" / f"{i}.png", noise(64, 64))
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)],
                             capture_output=True).returncode == 0 if shutil.which("mount") else False
    if not mounted:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        result = CliRunner().invoke(main, ["data", "derive", "colorize", str(tmp_path / "photos"), str(small / "p")])
        lines = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert result.exit_code == 1, result.output
        assert len(lines) == 1, result.output
        assert "No space left on device" in lines[0] and "stopped after" in lines[0]
        written = sorted(p.name for p in (small / "p" / "A").iterdir())
        assert written and written == sorted(p.name for p in (small / "p" / "B").iterdir())  # pairs, no temp files
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_derive_overwrite_that_fails_on_b_leaves_the_old_pair(tmp_path, monkeypatch):
    """A was replaced, then B failed and the new A was deleted: the old B was left without its A."""
    save(tmp_path / "photos" / "x.png", noise(16, 16))
    derive_pairs("colorize", tmp_path / "photos", tmp_path / "pairs")
    old = {side: (tmp_path / "pairs" / side / "x.png").read_bytes() for side in ("A", "B")}
    save(tmp_path / "photos" / "x.png", noise(16, 16))  # another photo, same name
    _failing_replace(monkeypatch, lambda path: path.parent.name == "B", errno.EIO)
    result = derive_pairs("colorize", tmp_path / "photos", tmp_path / "pairs", overwrite=True)
    assert result.written == 0 and len(result.problems) == 1
    assert {side: (tmp_path / "pairs" / side / "x.png").read_bytes() for side in ("A", "B")} == old
    assert sorted(p.name for p in (tmp_path / "pairs" / "A").iterdir()) == ["x.png"]  # no temp file left


def test_derive_whose_a_rename_fails_leaves_no_b_without_its_a(tmp_path, monkeypatch):
    """B is renamed into place first: when A's rename then failed, a fresh derive kept a B
    without its A, which pix2pix refuses as unmatched."""
    save(tmp_path / "photos" / "x.png", noise(16, 16))
    _failing_replace(monkeypatch, lambda path: path.parent.name == "A", errno.ENOSPC)
    result = derive_pairs("colorize", tmp_path / "photos", tmp_path / "pairs")
    assert result.written == 0 and "writable)" in result.problems[-1]
    assert [list((tmp_path / "pairs" / side).iterdir()) for side in ("A", "B")] == [[], []]


def test_links_to_sub_folders_are_not_walked_and_the_help_says_so(tmp_path):
    """os.walk does not follow them (a link can lead back up, a loop); that was nowhere written."""
    save(tmp_path / "in" / "a.png", noise(8, 8))
    save(tmp_path / "elsewhere" / "b.png", noise(8, 8))
    (tmp_path / "in" / "linked").symlink_to(tmp_path / "elsewhere")
    assert io.list_images(tmp_path / "in") == [tmp_path / "in" / "a.png"]
    help_text = " ".join(CliRunner().invoke(main, ["translate", "--help"]).output.split())
    assert "Links to sub-folders and hidden sub-folders are not entered" in help_text
