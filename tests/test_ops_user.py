"""i2i run unattended (cron, Docker, SLURM): logs and pipes instead of a terminal, jobs started
together, signals, containers without a writable /tmp. Every test runs the real command."""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import REPO, noise, save

I2I = [sys.executable, "-m", "i2i"]
SHIPPED_MODEL = REPO / "pretrained" / "srresnet-x4.safetensors"


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


class _SlowFiles(http.server.SimpleHTTPRequestHandler):
    """Serves a folder 1 MiB at a time, 0.2 s apart: a download that lasts a few seconds."""

    def copyfile(self, source, destination) -> None:
        while chunk := source.read(1 << 20):
            destination.write(chunk)
            destination.flush()
            time.sleep(0.2)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def slow_registry(tmp_path):
    """A registry with one model, "opsmodel", served slowly from 127.0.0.1 (no network)."""
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(SHIPPED_MODEL, served / "opsmodel.safetensors")
    handler = lambda *a, **k: _SlowFiles(*a, directory=str(served), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    digest = hashlib.sha256(SHIPPED_MODEL.read_bytes()).hexdigest()
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"opsmodel": {
        "url": f"http://127.0.0.1:{server.server_address[1]}/opsmodel.safetensors", "sha256": digest}}))
    yield registry
    server.shutdown()


def test_two_jobs_pulling_one_model_both_get_it(tmp_path, slow_registry):
    """Two jobs of a SLURM array start together on a fresh cache: the second waits for the first's
    download and uses its file (it used to fail: "another process is downloading"). Their logs
    get whole lines, not a progress bar's carriage returns."""
    env = _env(I2I_REGISTRY=str(slow_registry), I2I_HOME=str(tmp_path / "home"))
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    first = subprocess.Popen([*I2I, "models", "pull", "opsmodel"], env=env, stdout=subprocess.PIPE,
                             stderr=logs[0].open("w"), text=True)
    partial = tmp_path / "home" / "models" / "opsmodel.safetensors.partial"
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run([*I2I, "models", "pull", "opsmodel"], env=env, stdout=subprocess.PIPE,
                            stderr=logs[1].open("w"), text=True, timeout=120)
    out, _ = first.communicate(timeout=120)
    texts = [log.read_text() for log in logs]  # (text mode reads a carriage return as a newline)
    assert (first.returncode, second.returncode) == (0, 0), texts
    assert out.strip() == second.stdout.strip() == str(tmp_path / "home" / "models" / "opsmodel.safetensors")
    assert "waiting for it" in texts[1]
    assert not list((tmp_path / "home" / "models").glob(".*.lock"))  # the cache keeps no lock files
    assert b"\r" not in logs[0].read_bytes() + logs[1].read_bytes()


def test_an_unwritable_cache_names_the_setting_that_moves_it(tmp_path, slow_registry):
    """A container whose home is read-only: the pull's one line says what to set, not only that
    a .partial file could not be written."""
    (tmp_path / "a-file").write_text("")
    env = _env(I2I_REGISTRY=str(slow_registry), I2I_HOME=str(tmp_path / "a-file" / "home"))  # even root fails
    done = subprocess.run([*I2I, "models", "pull", "opsmodel"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "cannot write" in done.stderr and "set I2I_HOME to a writable folder" in done.stderr


def test_output_cut_short_by_head_is_not_a_failure(tmp_path):
    """`i2i models list | head -1`: the reader goes away; i2i exits quietly as `yes | head` does
    (141, 128 + SIGPIPE), not with 1, the status of an error."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    done = subprocess.run([*I2I, "models", "list"], stdout=write_end, stderr=subprocess.PIPE, text=True,
                          env=_env(), timeout=60)
    os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert done.stderr == ""


def test_a_broken_pipe_that_is_not_stdout_is_an_error(tmp_path):
    """Only the reader of stdout going away is 141 and silence; a socket's or a worker's pipe
    breaking is a failure, said on one line."""
    code = ("import sys, i2i.zoo\n"
            "def broken(*a, **k):\n    raise BrokenPipeError(32, 'Broken pipe')\n"
            "i2i.zoo.list_rows = broken\n"
            "from i2i.cli import main\nmain(['models', 'list'])\n")
    with (tmp_path / "out.txt").open("w") as out:
        done = subprocess.run([sys.executable, "-c", code], stdout=out, stderr=subprocess.PIPE, text=True,
                              env=_env(), timeout=60)
    assert done.returncode == 1 and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr


def test_a_cached_model_is_not_queued_behind_another_job(tmp_path, slow_registry):
    """Once in the cache, a model is used at once, even while another job holds the cache's lock
    (every cached load used to wait its turn and log that another job was fetching it)."""
    import fcntl

    env = _env(I2I_REGISTRY=str(slow_registry), I2I_HOME=str(tmp_path / "home"))
    first = subprocess.run([*I2I, "models", "pull", "opsmodel"], env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    with open(tmp_path / "home" / "models" / ".opsmodel.safetensors.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another job busy with it
        again = subprocess.run([*I2I, "models", "pull", "opsmodel"], env=env, capture_output=True, text=True,
                               timeout=60)
    assert again.returncode == 0 and "waiting" not in again.stderr, again.stderr


def test_no_writable_temp_folder_is_one_line(tmp_path):
    """A read-only container without a tmpfs: one line saying to set TMPDIR, not a traceback."""
    code = ("import sys, tempfile\n"
            f"tempfile._candidate_tempdir_list = lambda: [{str(tmp_path / 'missing')!r}]\n"
            "tempfile.tempdir = None\n"
            "from i2i.cli import main\n"
            "main(['bench', 'translate', '--images', '1', '--image-size', '8', '--model', 'tiny'])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: no writable temporary folder") and "TMPDIR" in done.stderr
    assert done.stderr.count("\n") == 1


def test_eval_json_to_stdout_for_jq(tmp_path):
    """`i2i eval ... --json - | jq .psnr_y`: stdout is the JSON alone, the table goes to stderr."""
    for name in ("a", "b"):
        save(tmp_path / "hr" / f"{name}.png", noise(24, 24))
    done = subprocess.run([*I2I, "eval", "bicubic", str(tmp_path / "hr"), "--scale", "2", "--json", "-"],
                          capture_output=True, text=True, env=_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["n_images"] == 2 and set(figures["per_image"]) == {"a", "b"}
    assert "mean (2)" in done.stderr
    assert not (tmp_path / "-").exists()


def test_derive_into_a_log_writes_no_carriage_returns(tmp_path):
    """`i2i data derive ... 2>> derive.log` over a folder of 100+ photos (where a terminal gets
    a progress bar): the log gets no bar redrawn with carriage returns."""
    for i in range(105):
        save(tmp_path / "photos" / f"p{i:03d}.png", noise(8, 8))
    log = tmp_path / "derive.log"
    with log.open("w") as err:
        done = subprocess.run([*I2I, "data", "derive", "gray", str(tmp_path / "photos"), str(tmp_path / "pairs")],
                              stdout=subprocess.PIPE, stderr=err, text=True, env=_env(), timeout=120)
    assert done.returncode == 0, log.read_text()
    assert "wrote 105 pairs" in done.stdout
    assert b"\r" not in log.read_bytes()  # (text mode would read one as a newline)


def test_ctrl_c_in_translate_says_what_was_written(tmp_path):
    """Ctrl-C (SIGINT) during a folder: exit 130, and the log says how many images are there and
    that the same command continues; the rerun skips them."""
    for i in range(300):
        save(tmp_path / "in" / f"i{i:03d}.png", noise(8, 8))
    out = tmp_path / "out"
    command = [*I2I, "translate", "srresnet-x4", str(tmp_path / "in"), str(out), "--workers", "1"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(out.glob("*.png"))) and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.02)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    written = len(list(out.glob("*.png")))
    assert 0 < written < 300
    assert f"stopped after {written} of 300 images were written" in err
    assert "run the same command again to continue" in err



def test_a_notebook_keeps_its_progress_bar(monkeypatch):
    """A Jupyter kernel's stderr is no terminal, yet shows a bar: there the bar stays (log lines
    are for files and pipes only)."""
    import io

    from i2i.progress import progress_bar, watched

    assert not watched()  # pytest's captured stderr: a log
    kernel_stream = type("OutStream", (io.StringIO,), {"__module__": "ipykernel.iostream"})
    monkeypatch.setattr(sys, "stderr", kernel_stream())
    assert watched()
    assert list(progress_bar(list(range(150)), "photos")) == list(range(150))
    assert "\r" in sys.stderr.getvalue()  # tqdm's bar, as a notebook renders it


def test_a_model_just_renamed_into_the_cache_before_its_record_is_waited_for(tmp_path, monkeypatch):
    """A registry row without a sha256: the download record is written after the file is renamed
    into place; a job that finds the file in that moment waits for the lock's holder instead of
    failing with "no download record"."""
    import fcntl
    import threading

    import i2i.zoo

    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"opsmodel": {"url": "http://127.0.0.1:9/opsmodel.safetensors"}}))
    monkeypatch.setenv("I2I_HOME", str(tmp_path / "home"))
    entry = i2i.zoo.lookup("opsmodel", registry)
    cached = i2i.zoo.cache_dir() / entry.file
    cached.parent.mkdir(parents=True)
    shutil.copy(SHIPPED_MODEL, cached)  # renamed into place by the download still holding the lock
    with open(cached.parent / f".{entry.file}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        pinned = threading.Timer(0.5, lambda: i2i.zoo.pin(
            i2i.zoo._record_path(entry), entry.url, hashlib.sha256(cached.read_bytes()).hexdigest(), format="i2i"))
        pinned.start()
        releaser = threading.Timer(0.7, lambda: fcntl.flock(held, fcntl.LOCK_UN))
        releaser.start()
        assert i2i.zoo.resolve("opsmodel", registry_path=registry, progress=False) == cached
        pinned.join()
        releaser.join()


def test_stdout_a_socket_whose_reader_went_away_is_141_and_silent():
    """`i2i models list` writing into a socket (a supervisor's log socket) whose reader closed:
    as for a pipe, not "error: [Errno 32] Broken pipe" and 1."""
    import socket

    ours, theirs = socket.socketpair()
    theirs.close()
    with ours:
        done = subprocess.run([*I2I, "models", "list"], stdout=ours.fileno(), stderr=subprocess.PIPE, text=True,
                              env=_env(), timeout=60)
    assert done.returncode == 141 and done.stderr == "", (done.returncode, done.stderr)
