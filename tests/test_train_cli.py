"""`i2i train` from the command line: kill -9 then --resume, SIGTERM, and the one-line
refusals (existing run, wrong layout, changed model on resume, foreign run, bad config)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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

    # 3. SIGTERM: the step in progress finishes, a checkpoint is written, exit status 0
    proc = start(*common, "--resume", "--max-steps", "100000", "--checkpoint-every", "1000")
    deadline = time.time() + 60
    while len(read_metrics(run)) < last + 4 and time.time() < deadline:  # trained a little further
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "SIGTERM: stopped at step" in stderr
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
    # a cyclegan run resumed as pix2pix
    refused("train", "pix2pix", "--data", data, "--out", run, "--resume", match="is a cyclegan run")
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before  # nothing was touched

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
