"""`i2i train` from the command line: kill -9 then --resume, SIGTERM, and the one-line
refusals (existing run, wrong layout, changed model on resume, foreign run, bad config)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from i2i.cli import main
from i2i.report import read_metrics
from test_train import metrics, one_thread, paired, unpaired  # noqa: F401  (one_thread: autouse fixture)

TINY = ["--netG", "resnet_6blocks", "--width", "4", "--ndf", "4", "--image-size", "32", "--load-size", "36",
        "--num-workers", "0"]


def run_cli(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "i2i", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(run: Path, proc: subprocess.Popen, at_least: int = 1, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(list((run / "checkpoints").glob("step_*.pt"))) >= at_least:
            return
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def test_kill9_then_resume_then_sigterm(tmp_path):
    from i2i.checkpoint import load_training_state
    from i2i.training import RunFolder

    data = unpaired(tmp_path / "data")
    run = tmp_path / "run"
    common = ["train", "cyclegan", "--data", data, "--out", run, *TINY, "--log-every", "1", "--sample-every", "1000"]

    # 1. kill -9 at some point after the first checkpoint: nothing corrupt is left
    proc = start(*common, "--max-steps", "100000", "--checkpoint-every", "3")
    wait_for_checkpoint(run, proc, at_least=2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    found = RunFolder(run).checkpoints()
    last = int(found[-1].stem.split("_")[1])
    for path in found:  # every checkpoint that is there is complete
        assert load_training_state(path)["step"] == int(path.stem.split("_")[1])

    # 2. --resume with the original flags and a new --max-steps continues from that step
    code, output = run_cli(*common, "--resume", "--max-steps", last + 2, "--checkpoint-every", "3")
    assert code == 0, output
    steps = [r["step"] for r in metrics(run)]
    assert steps == list(range(1, last + 3))  # lines a kill left past the checkpoint are dropped
    assert load_training_state(RunFolder(run).checkpoints()[-1])["step"] == last + 2

    # 3. SIGTERM: the step in progress finishes, a checkpoint is written, exit status 143 (128 + 15)
    proc = start(*common, "--resume", "--max-steps", "100000", "--checkpoint-every", "1000")
    deadline = time.time() + 60
    while len(read_metrics(run)) < last + 4 and time.time() < deadline:  # trained a little further
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "SIGTERM: stopped at step" in stderr and "Traceback" not in stderr
    stopped = int(stderr.split("SIGTERM: stopped at step ")[1].split()[0])
    assert stopped >= last + 4
    assert load_training_state(RunFolder(run).checkpoints()[-1])["step"] == stopped
    assert metrics(run)[-1]["step"] == stopped  # the last step is always logged
    assert "max_steps: 100000" in (run / "config.yaml").read_text()  # the new length is recorded


def test_refusals_are_one_line(tmp_path):
    data = unpaired(tmp_path / "data")
    run = tmp_path / "run"
    code, output = run_cli("train", "cyclegan", "--data", data, "--out", run, *TINY, "--max-steps", 1)
    assert code == 0, output

    def refused(*args, code=2, match=""):
        exit_code, output = run_cli(*args)
        lines = [line for line in output.splitlines() if line.startswith("error:")]
        assert exit_code == code and len(lines) == 1 and match in lines[0], output
        return lines[0]

    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    # an existing, non-empty run without --resume
    refused("train", "cyclegan", "--data", data, "--out", run, *TINY, match="already exists")
    # --resume with a different generator
    line = refused("train", "cyclegan", "--data", data, "--out", run, *TINY, "--netG", "resnet_9blocks", "--resume",
                   match="different model")
    assert "netG 'resnet_6blocks' -> 'resnet_9blocks'" in line
    # --resume with what the rest of the run would train on changed (was taken without a word)
    line = refused("train", "cyclegan", "--out", run, "--resume", "--batch-size", "2", "--seed", "7",
                   "--augment", "dihedral", "--lambda-A", "1", match="changed training settings")
    assert all(f"{key} -> " in line for key in ("batch_size 1", "seed 0", "augment 'flip'", "lambda_A 10.0")), line
    # a cyclegan run resumed as pix2pix
    refused("train", "pix2pix", "--data", data, "--out", run, "--resume", match="is a cyclegan run")
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before  # nothing was touched
    # a config.yaml damaged since: named, not "a None run"; a value gone names the file
    saved = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text("::: bad\n")
    refused("train", "cyclegan", "--out", run, "--resume", match=f"{run / 'config.yaml'}: damaged")
    (run / "config.yaml").write_text(saved.replace("beta1: 0.5", "beta1:"))
    refused("train", "cyclegan", "--out", run, "--resume", match=f"setting beta1 in {run / 'config.yaml'} must be")
    (run / "config.yaml").write_text(saved)

    # wrong data layouts, an empty folder, nothing to resume, an unknown config key
    refused("train", "cyclegan", "--data", paired(tmp_path / "pairs"), "--out", tmp_path / "r2", match="trainA")
    refused("train", "pix2pix", "--data", data / "trainA", "--out", tmp_path / "r2", match="--task")
    (tmp_path / "empty" / "trainA").mkdir(parents=True)
    refused("train", "cyclegan", "--data", tmp_path / "empty", "--out", tmp_path / "r3", match="no images")
    refused("train", "cyclegan", "--data", data, "--out", tmp_path / "r4", "--resume", match="nothing to resume")
    config = tmp_path / "c.yaml"
    config.write_text("lambda_A: 5\nlamda_B: 5\n")
    refused("train", "cyclegan", "--data", data, "--out", tmp_path / "r5", "--config", config, match="lamda_B")
    assert not any((tmp_path / name).exists() for name in ("r2", "r3", "r4", "r5"))


def test_pix2pix_cli_small_unet(tmp_path):
    data = paired(tmp_path / "data")
    run = tmp_path / "run"
    code, output = run_cli("train", "pix2pix", "--data", data, "--out", run, "--netG", "unet_32", "--width", 4,
                           "--ndf", 4, "--image-size", 32, "--max-steps", 2, "--num-workers", 0, "--lambda-L1", 50,
                           "--no-flip")
    assert code == 0, output
    text = (run / "config.yaml").read_text()
    assert "netG: unet_32" in text and "lambda_L1: 50.0" in text and "no_flip: true" in text
    assert (run / "model.safetensors").is_file() and (run / "index.html").is_file()


def test_train_help_lists_pipelines():
    code, output = run_cli("train", "--help")
    assert code == 0 and "cyclegan" in output and "pix2pix" in output
    code, output = run_cli("train", "cyclegan", "--help")
    assert "--lambda-identity" in output and "--max-steps" in output and "--resume" in output


def test_cyclegan_trained_btoa_translates_with_the_generator_trained_for_it(tmp_path):
    """--direction BtoA trains G_A to map trainB images to trainA's look; `i2i translate RUN`
    with the model's default direction runs that G_A, and --direction AtoB runs G_B."""
    import numpy as np
    import torch
    from PIL import Image

    from i2i.checkpoint import load_training_state
    from i2i.nn import create
    from test_infer import pattern

    data = unpaired(tmp_path / "data")
    run = tmp_path / "run"
    code, output = run_cli("train", "cyclegan", "--data", data, "--out", run, *TINY, "--direction", "BtoA",
                           "--max-steps", "2", "--init-type", "xavier", "--init-gain", "1")
    assert code == 0, output
    state = load_training_state(run / "checkpoints" / "step_2.pt")
    (tmp_path / "in").mkdir()
    Image.fromarray(pattern(32, 32)).save(tmp_path / "in" / "photo.png")
    x = torch.from_numpy(np.array(Image.open(tmp_path / "in" / "photo.png"))).permute(2, 0, 1)[None] / 255.0

    def expected(name: str) -> np.ndarray:
        net = create("resnet_6blocks", width=4, norm="instance", init=None)
        net.load_state_dict(state["networks"][name])
        with torch.no_grad():
            y = ((net.eval()(x * 2 - 1) + 1) / 2).clamp(0, 1)
        return np.round(y[0].permute(1, 2, 0).numpy() * 255).astype(int)

    for flags, name in (([], "G_A"), (["--direction", "BtoA"], "G_A"), (["--direction", "AtoB"], "G_B")):
        out = tmp_path / f"out_{name}_{len(flags)}"
        code, output = run_cli("translate", run, tmp_path / "in", out, "--precision", "fp32", "--device", "cpu", *flags)
        assert code == 0, output
        got = np.asarray(Image.open(out / "photo.png")).astype(int)
        assert np.abs(got - expected(name)).max() <= 1, (flags, name)
    assert np.abs(expected("G_A") - expected("G_B")).max() > 10  # the two generators differ


# ----------------------------------------------------------------------------- hardening


def _wait_for_step(run: Path, proc: subprocess.Popen, step: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while (not read_metrics(run) or read_metrics(run)[-1]["step"] < step) and time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.05)


def test_sigint_exits_130_after_its_checkpoint(tmp_path):
    from i2i.checkpoint import load_training_state
    from i2i.training import RunFolder

    data = unpaired(tmp_path / "data")
    run = tmp_path / "run"
    proc = start("train", "cyclegan", "--data", data, "--out", run, *TINY, "--log-every", "1",
                 "--max-steps", "100000", "--checkpoint-every", "1000")
    _wait_for_step(run, proc, 2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    stopped = int(stderr.split("SIGINT: stopped at step ")[1].split()[0])
    assert load_training_state(RunFolder(run).checkpoints()[-1])["step"] == stopped


def test_an_impatient_second_ctrl_c_keeps_the_checkpoint(capsys):
    """The step in progress and the final checkpoint can take seconds; a second Ctrl-C then lost
    every step since the last checkpoint. Now it only says so, and the third stops at once."""
    from i2i.training.trainer import _StopSignal

    with _StopSignal() as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.name == "SIGINT"
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            pytest.fail("the second Ctrl-C stopped the run before its checkpoint")
        assert "Ctrl-C once more quits without it" in capsys.readouterr().err
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_one_process_per_run_folder(tmp_path):
    """A second trainer on a folder in use exits 2 naming the folder and the holder's pid; the
    lock dies with its process, so after a kill -9 the run resumes at once."""
    data = unpaired(tmp_path / "data")
    run = tmp_path / "run"
    common = ["train", "cyclegan", "--data", data, "--out", run, *TINY, "--log-every", "1", "--checkpoint-every", "1"]
    first = start(*common, "--max-steps", "100000")
    wait_for_checkpoint(run, first)
    code, output = run_cli(*common, "--max-steps", "3", "--resume")
    assert code == 2 and f"pid {first.pid}" in output and str(run) in output, output
    assert output.count("error:") == 1
    before = len(read_metrics(run))
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    code, output = run_cli(*common, "--resume", "--max-steps", str(before + 2))
    assert code == 0, output


def test_two_fresh_starts_at_once_train_once(tmp_path):
    data = unpaired(tmp_path / "data")
    run = tmp_path / "run"
    args = ["train", "cyclegan", "--data", data, "--out", run, *TINY, "--log-every", "1", "--max-steps", "6"]
    procs = [start(*args) for _ in range(2)]
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    assert [r["step"] for r in metrics(run)] == list(range(1, 7))


def test_stale_temp_files_are_removed_on_resume(tmp_path):
    data = unpaired(tmp_path / "data")
    run = tmp_path / "run"
    common = ["train", "cyclegan", "--data", data, "--out", run, *TINY, "--checkpoint-every", "1"]
    assert run_cli(*common, "--max-steps", "2")[0] == 0
    stale = [run / "checkpoints" / ".step_3.pt.0123456789ab.tmp", run / ".model.safetensors.ba9876543210.tmp",
             run / "samples" / ".step_3.png.00000000000f.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    keep = run / "checkpoints" / "notes.tmp"  # not one of ours
    keep.write_text("mine")
    code, output = run_cli(*common, "--resume", "--max-steps", "3")
    assert code == 0, output
    assert not any(path.exists() for path in stale) and keep.exists()


def test_resume_takes_a_new_lr_and_refuses_fewer_steps(tmp_path):
    data = unpaired(tmp_path / "data")
    run = tmp_path / "run"
    common = ["train", "cyclegan", "--data", data, "--out", run, *TINY, "--log-every", "1", "--lr-policy", "step"]
    assert run_cli(*common, "--max-steps", "3")[0] == 0
    code, output = run_cli(*common, "--resume", "--max-steps", "5", "--lr", "1e-4")
    assert code == 0, output
    assert "lr 0.0002 -> 0.0001" in output
    assert [r["lr"] for r in metrics(run)] == [2e-4] * 3 + [1e-4] * 2
    metrics_file = run / "metrics.jsonl"  # a damaged byte in the log: skipped, not a traceback
    metrics_file.write_bytes(b"\xff\xfe\n" + metrics_file.read_bytes() + b'{"step": 6, "sec_per_step": "slow"}\n')
    from i2i.report import write_index
    write_index(run)
    before = (run / "config.yaml").read_text()
    code, output = run_cli(*common, "--resume", "--max-steps", "4")
    assert code == 2 and "at step 5" in output and output.count("error:") == 1, output
    assert (run / "config.yaml").read_text() == before  # nothing recorded


def test_resume_from_another_folder_with_relative_paths(tmp_path, monkeypatch):
    import yaml

    unpaired(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    assert run_cli("train", "cyclegan", "--data", "data", "--out", "run", *TINY, "--max-steps", "2")[0] == 0
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["data"] == str(tmp_path / "data") and saved["out"] == str(tmp_path / "run")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert run_cli("train", "cyclegan", "--out", tmp_path / "run", "--resume", "--max-steps", "3")[0] == 0
    # a run written before paths were stored absolute: data relative to the run folder's parent
    saved["data"] = "data"
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(saved))
    code, output = run_cli("train", "cyclegan", "--out", tmp_path / "run", "--resume", "--max-steps", "4")
    assert code == 0, output
    # the dataset moved to another disk: taken, and said
    (tmp_path / "data").rename(tmp_path / "moved")
    code, output = run_cli("train", "cyclegan", "--data", tmp_path / "moved", "--out", tmp_path / "run", "--resume",
                           "--max-steps", "5")
    assert code == 0 and f"data '{tmp_path / 'data'}' -> '{tmp_path / 'moved'}'" in output, output


def test_a_wrong_newest_checkpoint_falls_back_to_a_valid_one(tmp_path):
    import torch

    from i2i.checkpoint import load_training_state
    from i2i.training import RunFolder

    data = unpaired(tmp_path / "data")
    run = tmp_path / "run"
    common = ["train", "cyclegan", "--data", data, "--out", run, *TINY, "--checkpoint-every", "1", "--keep-last", "9"]
    assert run_cli(*common, "--max-steps", "2")[0] == 0
    other = tmp_path / "other"
    assert run_cli("train", "cyclegan", "--data", data, "--out", other, *TINY, "--width", "8", "--max-steps", "1")[0] == 0
    torch.save({"step": 999}, run / "checkpoints" / "step_999.pt")
    (other / "checkpoints" / "step_1.pt").rename(run / "checkpoints" / "step_998.pt")  # another architecture
    code, output = run_cli(*common, "--resume", "--max-steps", "3")
    assert code == 0, output
    warnings = [line for line in output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and "step_999.pt" in warnings[0] and "step_998.pt" in warnings[1], output
    assert [r["step"] for r in metrics(run)] == [2, 3]  # log every 50: the last step of each run
    assert load_training_state(run / "checkpoints" / "step_3.pt")["step"] == 3
    for path in RunFolder(run).checkpoints():  # none valid: one line, exit 1
        torch.save({"step": 1}, path)
    code, output = run_cli(*common, "--resume", "--max-steps", "5")
    assert code == 1 and "no usable checkpoint" in output, output


def _check_failed_write(run: Path, proc: subprocess.Popen, reason: str) -> None:
    """Exit 1 with one line naming the file and the OS error; the older checkpoint loads;
    no temp file is left."""
    from i2i.checkpoint import load_training_state
    from i2i.training import RunFolder

    _, stderr = proc.communicate(timeout=120)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1 and "Traceback" not in stderr, stderr
    assert reason in errors[0] and str(run) in errors[0], errors
    assert load_training_state(RunFolder(run).checkpoints()[0])["step"] == 1
    assert not [p for p in run.rglob("*.tmp")]


def test_a_file_size_limit_during_training_is_one_line(tmp_path):
    """Writes that fail (here: RLIMIT_FSIZE, as a quota would) are reported, never a traceback."""
    import resource

    data = unpaired(tmp_path / "data")
    run = tmp_path / "run"
    common = ["train", "cyclegan", "--data", data, "--out", run, *TINY, "--checkpoint-every", "1"]
    assert run_cli(*common, "--max-steps", "1")[0] == 0
    size = (run / "checkpoints" / "step_1.pt").stat().st_size

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, size // 2))

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "i2i", *map(str, common), "--resume", "--max-steps", "2"],
                            env=env, stderr=subprocess.PIPE, text=True, preexec_fn=limit)
    _check_failed_write(run, proc, "File too large")


def test_a_full_disk_during_training_is_one_line(tmp_path):
    data = unpaired(tmp_path / "data")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True).returncode:
        import pytest

        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        run = disk / "run"
        common = ["train", "cyclegan", "--data", data, "--out", run, *TINY, "--checkpoint-every", "1"]
        assert run_cli(*common, "--max-steps", "1")[0] == 0
        size = (run / "checkpoints" / "step_1.pt").stat().st_size
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        (disk / "filler").write_bytes(b"\0" * max(0, free - size // 2))
        _check_failed_write(run, start(*common, "--resume", "--max-steps", "2"), "No space left on device")
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_sigterm_to_the_process_group_with_loader_workers_saves_and_exits_143(tmp_path):
    """Slurm, systemd and `kill -TERM -PGID` signal every process of the group: the DataLoader
    workers too. They leave it to the main process, which checkpoints; before, they died first
    and the run ended on the DataLoader's traceback with nothing saved."""
    from i2i.checkpoint import load_training_state
    from i2i.training import RunFolder

    data = unpaired(tmp_path / "data")
    run = tmp_path / "run"
    flags = [*TINY[:-2], "--num-workers", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "i2i", "train", "cyclegan", "--data", str(data), "--out", str(run),
                             *flags, "--log-every", "1", "--max-steps", "100000", "--checkpoint-every", "1000"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _wait_for_step(run, proc, 2)
        os.killpg(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and "SIGTERM: stopped at step" in stderr, stderr
    stopped = int(stderr.split("SIGTERM: stopped at step ")[1].split()[0])
    assert load_training_state(RunFolder(run).checkpoints()[-1])["step"] == stopped


def test_the_lock_goes_with_the_main_process_not_with_its_forked_workers(tmp_path):
    """A kill -9 of a training whose DataLoader workers outlive it by a moment: a restart at
    once (a supervisor's) finds the folder free, not 'in use by' the dead pid."""
    from i2i.training import RunFolder

    script = (f"import os, time, sys\nfrom i2i.training import RunFolder\nRunFolder({str(tmp_path / 'run')!r}).lock()\n"
              "if os.fork() == 0:\n    time.sleep(60)\n    os._exit(0)\n"
              "print('locked', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        proc.kill()
        proc.wait(timeout=30)
        folder = RunFolder(tmp_path / "run")
        folder.lock()  # the forked child still runs, holding a copy of the descriptor
        folder.unlock()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)


def test_a_new_run_killed_while_writing_its_config_can_be_started_again(tmp_path):
    """A kill -9 inside the first atomic write leaves a temp file beside the empty folders:
    that is no work, and a new run may start there (it was refused with 'not empty', and
    --resume with 'no config.yaml')."""
    data = paired(tmp_path / "data")
    run = tmp_path / "run"
    for folder in (run / "checkpoints", run / "samples"):
        folder.mkdir(parents=True)
    (run / ".lock").write_text("12345")
    (run / ".config.yaml.97dbccb2e31f.tmp").write_text("half a config")
    code, output = run_cli("train", "pix2pix", "--data", data, "--out", run, "--netG", "unet_32", "--width", "4",
                           "--ndf", "4", "--image-size", "32", "--load-size", "36", "--num-workers", "0",
                           "--max-steps", "1")
    assert code == 0, output
    assert (run / "model.safetensors").is_file() and not list(run.glob(".*.tmp"))


STUCK_WORKER = '''
import time
import torch
from torch.utils.data import DataLoader, Dataset
from i2i.training.data_order import _leave_signals_to_main

class Stuck(Dataset):
    def __len__(self):
        return 100

    def __getitem__(self, i):
        if i >= 2:
            time.sleep(600)  # a read that never returns (a dead network mount)
        return torch.zeros(1)

loader = iter(DataLoader(Stuck(), batch_size=1, num_workers=2, worker_init_fn=_leave_signals_to_main))
next(loader), next(loader)
del loader  # torch joins its workers, then terminate()s those stuck
print("exited", flush=True)
'''


def test_a_stuck_loader_worker_is_still_stopped_at_the_end(tmp_path):
    """Workers ignore a SIGTERM sent to the process group, but not the one their main process
    sends to a worker stuck past shutdown: ignoring that one hung the exit for ever."""
    proc = subprocess.Popen([sys.executable, "-c", STUCK_WORKER], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0 and out.strip() == "exited"
