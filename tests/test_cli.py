"""The `i2i` command line made from the settings: every TrainConfig and Options field has a
flag whose --help shows the pipeline's real default; a flag left out is not passed on;
`i2i --help` imports no torch; `i2i eval --help` shows the model mode; `i2i demo --threads`."""
from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

from i2i.cli import main
from i2i.pipelines import Pipeline
from i2i.options import setting


def run_cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args], prog_name="i2i")
    return result.exit_code, result.output


def option_help(output: str) -> dict[str, str]:
    """--help's option rows: each spelling of a flag ('--dropout', '--no-dropout') -> the
    row's text, whitespace collapsed."""
    rows, current = [], None
    for line in output.splitlines():
        if line.startswith("  -"):
            current = [line]
            rows.append(current)
        elif current is not None and line.startswith("    "):
            current.append(line)
        else:
            current = None
    found = {}
    for row in rows:
        declaration = re.split(r"\s{2,}", row[0].strip())[0]
        for flag in re.findall(r"--[A-Za-z0-9-]+", declaration):
            found[flag] = " ".join(" ".join(row).split())
    return found


def default_of(help_rows: dict[str, str], flag: str) -> str:
    match = re.search(r"\[default: ([^\]]*)\]", help_rows[flag])
    assert match, help_rows[flag]
    return match.group(1)


def train_help(pipeline: str) -> dict[str, str]:
    code, output = run_cli("train", pipeline, "--help")
    assert code == 0, output
    return option_help(output)


def test_srgan_help_shows_srgans_defaults():
    rows = train_help("srgan")
    assert default_of(rows, "--image-size") == "96 psnr, 128 gan"
    assert default_of(rows, "--beta1") == "0.9"
    assert default_of(rows, "--beta2") == "0.99"
    assert default_of(rows, "--lr-policy") == "cosine"
    assert default_of(rows, "--batch-size") == "16"
    assert default_of(rows, "--ema") == "0.999"
    assert default_of(rows, "--lr") == "0.0002 psnr, 0.0001 gan"
    assert default_of(rows, "--num-blocks") == "16 srresnet, 23 rrdbnet"
    assert default_of(rows, "--ndf") == "64"
    assert "--d-width" not in rows  # the old name is a hidden alias


@pytest.mark.parametrize("pipeline,netG,norm,dropout", [("cyclegan", "resnet_9blocks", "instance", "off"),
                                                         ("pix2pix", "unet_256", "batch", "on")])
def test_reference_pipelines_help_shows_the_references_defaults(pipeline, netG, norm, dropout):
    rows = train_help(pipeline)
    assert default_of(rows, "--image-size") == "256"
    assert default_of(rows, "--beta1") == "0.5"
    assert default_of(rows, "--lr-policy") == "linear"
    assert default_of(rows, "--batch-size") == "1"
    assert default_of(rows, "--ema") == "0: off"
    assert default_of(rows, "--netG") == netG
    assert default_of(rows, "--norm") == norm
    assert default_of(rows, "--dropout") == dropout
    assert "[linear|step|cosine|plateau]" in rows["--lr-policy"]


def test_every_setting_has_a_flag_with_todays_spelling():
    from i2i.pipelines import available, get_pipeline
    from i2i.training.settings import TrainConfig

    group = main.commands["train"]
    ctx = main.make_context("i2i", ["train"], resilient_parsing=True)
    assert group.list_commands(ctx) == available() == ["cyclegan", "pix2pix", "srgan"]
    for name in available():
        command = group.get_command(ctx, name)
        options = {p.name: p for p in command.params}
        for field in (*dataclasses.fields(TrainConfig), *dataclasses.fields(get_pipeline(name).Options)):
            assert field.name in options, (name, field.name)
            assert options[field.name].opts[0] == "--" + field.name.replace("_", "-")
            assert options[field.name].default is None  # nothing passed on unless given
            assert field.metadata.get("help"), (name, field.name)
        assert {"config_file", "resume"} <= set(options)
    spelled = {**train_help("cyclegan"), **train_help("pix2pix")}
    for flag in ("--netG", "--netD", "--n-layers-D", "--lambda-A", "--lambda-B", "--lambda-identity", "--lambda-L1",
                 "--dropout", "--no-dropout", "--no-flip", "--max-steps", "--config", "--resume", "--out", "--data",
                 "--beta2", "--lr-gamma", "--in-channels"):
        assert flag in spelled, flag


@pytest.fixture
def captured(monkeypatch):
    """Run `i2i train` up to the settings: what would be trained, not trained."""
    import i2i.training

    seen = {}

    def fake_train(pipeline, config, options, resume=False):
        seen.update(pipeline=pipeline, config=config, options=options, resume=resume)

    monkeypatch.setattr(i2i.training, "train", fake_train)
    return seen


def test_given_flags_reach_the_settings_and_absent_ones_leave_the_config_file(tmp_path, captured):
    config = tmp_path / "run.yaml"
    config.write_text("beta1: 0.7\nbatch_size: 3\nlambda_A: 5\ndropout: true\nlr_policy: step\n")
    code, output = run_cli("train", "cyclegan", "--out", tmp_path / "run", "--config", config,
                           "--batch-size", "5", "--netG", "unet_32", "--n-layers-D", "2", "--lambda-B", "7",
                           "--no-dropout", "--lr-gamma", "0.5")
    assert code == 0, output
    c, o = captured["config"], captured["options"]
    assert (c.batch_size, c.beta1, c.lr_policy, c.lr_gamma, c.image_size) == (5, 0.7, "step", 0.5, 256)
    assert (o.netG, o.n_layers_D, o.lambda_A, o.lambda_B, o.dropout) == ("unet_32", 2, 5.0, 7.0, False)


def test_srgan_runs_with_its_defaults_and_the_old_flag_name(tmp_path, captured):
    code, output = run_cli("train", "srgan", "--out", tmp_path / "run", "--scale", "2", "--stage", "gan", "--d-width", "8")
    assert code == 0, output
    c, o = captured["config"], captured["options"]
    assert (c.batch_size, c.beta1, c.beta2, c.lr_policy, c.ema) == (16, 0.9, 0.99, "cosine", 0.999)
    assert (o.scale, o.ndf, o.channels) == (2, 8, 3)
    code, output = run_cli("train", "srgan", "--out", tmp_path / "run", "--channels", "1", "--stage", "gan", "--ndf", "16")
    assert code == 0, output
    assert (captured["options"].channels, captured["options"].ndf) == (1, 16)
    code, output = run_cli("train", "srgan", "--out", tmp_path / "run", "--scale", "5")
    assert code == 2 and "--scale" in output


@dataclasses.dataclass
class MineOptions:
    depth: int = setting(3, "How deep.")
    mode: str = setting("a", "Which mode.", choices=("a", "b"))
    sharp: bool = setting(True, "Sharpen.")


class Mine(Pipeline):
    """A new pipeline: this class and one registry line, no CLI code."""

    name = "mine"
    cli_help = "A pipeline made in a test."
    Options = MineOptions
    config_defaults = {"batch_size": 7}


def test_a_new_pipeline_gets_its_command_from_its_options(tmp_path, monkeypatch, captured):
    from i2i.pipelines import PIPELINES

    monkeypatch.setitem(PIPELINES, "mine", "test_cli:Mine")
    code, output = run_cli("train", "--help")
    assert code == 0 and "A pipeline made in a test." in output
    rows = train_help("mine")
    assert default_of(rows, "--depth") == "3" and default_of(rows, "--batch-size") == "7"
    assert "[a|b]" in rows["--mode"] and default_of(rows, "--no-sharp") == "on"
    code, output = run_cli("train", "mine", "--out", tmp_path / "run", "--mode", "b", "--no-sharp")
    assert code == 0, output
    assert captured["pipeline"] == "mine" and captured["config"].batch_size == 7
    assert (captured["options"].depth, captured["options"].mode, captured["options"].sharp) == (3, "b", False)


def test_a_broken_pipeline_breaks_only_itself(tmp_path, monkeypatch):
    from i2i.pipelines import PIPELINES

    monkeypatch.setitem(PIPELINES, "broken", "i2i.pipelines.no_such_module:Broken")
    code, output = run_cli("train", "--help")
    assert code == 0 and "cyclegan" in output and "broken" in output and "cannot be loaded" in output
    code, output = run_cli("train", "broken", "--out", tmp_path / "run")
    assert code == 1 and output.startswith("error: pipeline broken cannot be loaded: ModuleNotFoundError")
    assert len(output.splitlines()) == 1
    assert run_cli("train", "srgan", "--help")[0] == 0


def test_old_srgan_configs_still_read(tmp_path):
    """Runs and config files written when srgan's discriminator width was `d_width`."""
    from pathlib import Path

    from i2i.training import make_settings

    shipped = Path(__file__).resolve().parents[1] / "pretrained" / "srresnet-x4.config.yaml"
    _, options = make_settings("srgan", config_file=shipped)  # written with d_width: 64
    assert options.ndf == 64
    old_file = tmp_path / "old.yaml"
    old_file.write_text("pipeline: srgan\nstage: gan\nd_width: 32\n")
    _, options = make_settings("srgan", config_file=old_file)
    assert options.ndf == 32
    run = tmp_path / "old_run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"pipeline": "srgan", "d_width": 8, "scale": 2}))
    _, options = make_settings("srgan", resume_from=run)
    assert (options.ndf, options.scale) == (8, 2)
    _, options = make_settings("srgan", {"stage": "gan", "d_width": 4, "ndf": 16})
    assert options.ndf == 16  # today's name wins
    assert not hasattr(options, "d_width")


def test_top_level_help_imports_no_torch():
    code = ("import sys\n"
            "from i2i.cli import main\n"
            "for args in (['--help'], ['--version'], ['eval', '--help'], ['data', '--help']):\n"
            "    try:\n"
            "        main(args, prog_name='i2i')\n"
            "    except SystemExit as e:\n"
            "        assert e.code == 0, (args, e.code)\n"
            "heavy = sorted(m for m in ('torch', 'torchvision', 'kornia', 'numpy') if m in sys.modules)\n"
            "print('HEAVY', heavy)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    assert "train" in result.stdout and "Usage: i2i eval MODEL DATA" in result.stdout


def test_eval_help_shows_the_model_mode():
    code, output = run_cli("eval", "--help")
    assert code == 0, output
    assert "i2i eval MODEL DATA" in output and "bicubic" in output
    rows = option_help(output)
    for flag in ("--scale", "--json", "--lr", "--device", "--precision", "--tile"):
        assert flag in rows, flag
    code, output = run_cli("eval", "bicubic", "--help")
    assert code == 0 and "--protocol" in output
    code, output = run_cli("eval", "some-model", "data", "--help")
    assert code == 0 and "Usage: i2i eval MODEL DATA" in output and "--tile" in output


def test_eval_model_named_like_the_subcommand(tmp_path):
    """A run folder called `model` is a model, not the hidden subcommand's name."""
    code, output = run_cli("eval", "model", tmp_path / "nothing")
    assert code != 0
    assert "Missing argument" not in output and "'model' is neither a model file" in output


def test_demo_threads_pass_through(tmp_path):
    import torch

    before = torch.get_num_threads()
    out = tmp_path / "demo"
    code, output = run_cli("demo", "--out", out, "--steps", "1", "--device", "cpu", "--threads", "1")
    assert code == 0, output
    assert "[demo] threads: 1" in output.splitlines()
    for task in ("sketch", "colorize"):
        assert yaml.safe_load((out / "runs" / task / "config.yaml").read_text())["threads"] == 1
    assert torch.get_num_threads() == before


def test_precision_choices_are_the_devices():
    """The CLI spells --precision's values without importing torch; they must stay the device's."""
    from i2i.cli import PRECISION_CHOICES
    from i2i.device import PRECISIONS

    assert PRECISION_CHOICES == ("auto", *PRECISIONS)


def test_channels_last_choices_are_the_trainings():
    """Likewise --channels-last's values for `i2i bench train` and `i2i train`."""
    from i2i.cli import CHANNELS_LAST_CHOICES
    from i2i.training.settings import CHANNELS_LAST

    assert CHANNELS_LAST_CHOICES == CHANNELS_LAST
