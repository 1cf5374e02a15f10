"""Training settings and run folders a user gets wrong: each is one line (no traceback) and
loses nothing. Found by trying to break the CLI: NaN or negative rates, pools and sizes, a
PatchGAN deeper than the crop, --pretrained against explicit architecture flags, a new run
that failed before its first step, --resume of a run with a model but no checkpoint."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from test_distributed import _flags
from test_srgan import _tiny_model
from test_train import TINY_CYCLEGAN, TINY_PIX2PIX, one_thread, paired, unpaired  # noqa: F401

from i2i.cli import main
from i2i.errors import UsageError
from i2i.training import make_settings, train


def _one_line_error(args: list[str]) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def train_one_step(data: dict[str, Path], run: Path) -> Path:
    """A finished one-step pix2pix run in `run`."""
    config, options = make_settings("pix2pix", {"data": str(data["pix2pix"]), "out": str(run), **TINY_PIX2PIX,
                                                "max_steps": 1})
    return train("pix2pix", config, options)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("guards")
    return {"pix2pix": paired(root / "paired"), "cyclegan": unpaired(root / "unpaired")}


@pytest.mark.parametrize("pipeline, flag, value", [
    ("pix2pix", "lr", "nan"), ("pix2pix", "lr", "-1"), ("pix2pix", "beta1", "2"), ("pix2pix", "image_size", "0"),
    ("pix2pix", "num_workers", "-1"), ("pix2pix", "init_gain", "nan"), ("pix2pix", "lr_gamma", "-1"),
    ("pix2pix", "lr_decay_iters", "0"), ("pix2pix", "threads", "-2"), ("pix2pix", "n_epochs", "-1"),
    ("pix2pix", "lambda_L1", "-1"), ("cyclegan", "pool_size", "-1"), ("cyclegan", "lambda_identity", "-5"),
])
def test_a_setting_out_of_its_range_is_one_line_naming_the_flag(data, tmp_path, pipeline, flag, value):
    tiny = TINY_PIX2PIX if pipeline == "pix2pix" else TINY_CYCLEGAN
    run = tmp_path / "run"
    line = _one_line_error(["train", pipeline, "--data", data[pipeline], "--out", run, "--max-steps", "2",
                            *_flags({**tiny, flag: value})])
    assert f"--{flag.replace('_', '-')} must be" in line and value in line
    assert not run.exists()


def test_a_config_file_with_null_nan_or_binary_is_one_line(data, tmp_path):
    base = ["train", "pix2pix", "--data", data["pix2pix"], "--max-steps", "1", *_flags(TINY_PIX2PIX)]
    for name, text in [("null.yaml", b"lr: null\n"), ("nan.yaml", b"lr: .nan\n"), ("binary.yaml", b"\xff\xfe\x00")]:
        (tmp_path / name).write_bytes(text)
        line = _one_line_error([*base, "--out", tmp_path / name.replace(".yaml", ""), "--config", tmp_path / name])
        assert ("lr" in line) or (name in line), line


def test_a_patchgan_deeper_than_the_crop_is_refused_before_training(data, tmp_path):
    line = _one_line_error(["train", "pix2pix", "--data", data["pix2pix"], "--out", tmp_path / "run",
                            "--max-steps", "1", "--n-layers-D", "4", *_flags(TINY_PIX2PIX)])
    assert "at least 48 pixels" in line and "--image-size 32" in line
    # the largest depth a 32-pixel crop takes trains
    config, options = make_settings("pix2pix", {"data": str(data["pix2pix"]), "out": str(tmp_path / "ok"),
                                                **TINY_PIX2PIX, "n_layers_D": 3, "max_steps": 1})
    train("pix2pix", config, options)


def test_pretrained_refuses_architecture_flags_it_would_override(tmp_path):
    from i2i.pipelines.srgan import SRGAN

    model = _tiny_model(tmp_path / "x4.safetensors", scale=4)

    def resolve(**given):
        config, options = make_settings("srgan", {"data": "unused", "out": "unused", "pretrained": str(model), **given})
        SRGAN.resolve(options, config, quiet=True)
        return options

    with pytest.raises(UsageError, match=r"--scale 2: --pretrained .* is srresnet x4, width 4, 1 blocks"):
        resolve(scale=2)
    with pytest.raises(UsageError, match="--width 8"):
        resolve(width=8)
    adopted = resolve(width=4, num_blocks=1)  # the model's own values, or none: its architecture
    assert (adopted.scale, adopted.width, adopted.num_blocks) == (4, 4, 1)
    assert resolve().width == 4


def test_pretrained_refuses_an_architecture_flag_given_at_its_default(tmp_path):
    """`--scale 4 --arch srresnet` asks for an x4 SRResNet: with an x2 RRDBNet as --pretrained
    that is refused as `--scale 2` would be, not trained as the x2 RRDBNet it names."""
    import i2i.nn
    from i2i.checkpoint import save_model
    from i2i.spec import spec_for_network

    net = i2i.nn.create("rrdbnet", width=4, num_blocks=1, growth=4, scale=2)
    model = tmp_path / "x2.safetensors"
    save_model(model, {"G": net}, spec_for_network(net, "srgan", input_range=(0, 1), output_range=(0, 1)))
    base = {"data": "unused", "out": "unused", "pretrained": str(model)}
    with pytest.raises(UsageError, match=r"--scale 4: --pretrained .* is rrdbnet x2"):
        make_settings("srgan", {**base, "scale": 4})
    with pytest.raises(UsageError, match=r"--arch srresnet"):
        make_settings("srgan", {**base, "arch": "srresnet"})
    (tmp_path / "x4.yaml").write_text("scale: 4\n")
    with pytest.raises(UsageError, match=r"--scale 4 in .*x4.yaml"):
        make_settings("srgan", base, config_file=tmp_path / "x4.yaml")
    (tmp_path / "copied.yaml").write_text("arch: rrdbnet\nscale: 2\nwidth: 4\nnum_blocks: 0\n")  # as config.yaml has it
    make_settings("srgan", base, config_file=tmp_path / "copied.yaml")  # 0 blocks: the architecture's own
    config, options = make_settings("srgan", {**base, "scale": 2, "arch": "rrdbnet"})  # its own: fine
    from i2i.pipelines.srgan import SRGAN

    SRGAN.resolve(options, config, quiet=True)
    assert (options.arch, options.scale, options.width) == ("rrdbnet", 2, 4)


def test_pretrained_with_a_generator_srgan_cannot_train_names_it(tmp_path):
    import i2i.nn
    from i2i.checkpoint import save_model
    from i2i.spec import spec_for_network

    net = i2i.nn.create("srvggnet_compact", width=4, num_blocks=1)
    model = tmp_path / "srvgg.safetensors"
    save_model(model, {"G": net}, spec_for_network(net, "srgan", input_range=(0, 1), output_range=(0, 1)))
    line = _one_line_error(["train", "srgan", "--data", tmp_path, "--out", tmp_path / "run", "--pretrained", model])
    assert "srvggnet_compact generator, which i2i runs but does not train" in line, line


def test_a_new_run_that_fails_before_its_first_step_leaves_no_folder(data, tmp_path, monkeypatch):
    """A first step that fails (a batch the networks cannot take, say) fails after config.yaml
    was written; the folder goes, so the corrected command runs, and a folder left by such a
    run (killed) is taken as new."""
    from i2i.training.trainer import Stepper

    def first_step_fails(self, batch, step):
        raise RuntimeError("the first batch does not fit the network")

    run = tmp_path / "run"
    config, options = make_settings("pix2pix", {"data": str(data["pix2pix"]), "out": str(run), **TINY_PIX2PIX,
                                                "max_steps": 1})
    with monkeypatch.context() as patch:
        patch.setattr(Stepper, "__call__", first_step_fails)
        with pytest.raises(RuntimeError, match="does not fit"):
            train("pix2pix", config, options)
    assert not run.exists()
    run.mkdir()
    (run / "config.yaml").write_text("pipeline: pix2pix\n")
    (run / "checkpoints").mkdir()
    (run / "samples").mkdir()
    train_one_step(data, run)
    assert (run / "checkpoints" / "step_1.pt").is_file()


def test_resume_without_a_checkpoint_never_overwrites_the_model(data, tmp_path):
    run = tmp_path / "run"
    train_one_step(data, run)
    model = (run / "model.safetensors").read_bytes()
    for checkpoint in (run / "checkpoints").iterdir():
        checkpoint.unlink()
    config, options = make_settings("pix2pix", {"max_steps": 2}, resume_from=run)
    with pytest.raises(UsageError, match="no checkpoint to resume from.*would overwrite"):
        train("pix2pix", config, options, resume=True)
    assert (run / "model.safetensors").read_bytes() == model


def test_out_of_memory_is_one_line_with_what_to_change(data, tmp_path, monkeypatch):
    from i2i.training.trainer import OutOfMemory, Stepper

    def allocator_fails(self, batch, step):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 68719476736 bytes. Error code 12 (Cannot allocate memory)")

    monkeypatch.setattr(Stepper, "__call__", allocator_fails)
    config, options = make_settings("pix2pix", {"data": str(data["pix2pix"]), "out": str(tmp_path / "run"),
                                                **TINY_PIX2PIX, "max_steps": 1})
    with pytest.raises(OutOfMemory, match="out of memory .* smaller --batch-size or --image-size") as caught:
        train("pix2pix", config, options)
    assert "\n" not in str(caught.value)


def test_preprocess_none_skips_an_image_the_unet_cannot_take(tmp_path, capfd):
    """--preprocess none passes sizes through: a 48x40 photo (not a multiple of unet_32's
    32) is skipped with one line naming it, and the run trains on the rest."""
    from conftest import noise, save

    photos = tmp_path / "photos"
    save(photos / "odd.png", noise(40, 48))
    save(photos / "fits.png", noise(64, 64))
    config, options = make_settings("pix2pix", {"data": str(photos), "out": str(tmp_path / "run"), **TINY_PIX2PIX,
                                                "task": "colorize", "preprocess": "none", "max_steps": 2})
    train("pix2pix", config, options)
    warnings = [line for line in capfd.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings and all("odd.png" in line and "multiple of 32" in line for line in warnings)


def test_a_missing_data_folder_exits_1_as_a_missing_input_does_everywhere(data, tmp_path):
    """A path that is not there is bad input (exit 1: translate, eval, data inspect); a wrong
    option or layout is a usage error (exit 2)."""
    missing = tmp_path / "nope"
    for args in (["train", "pix2pix", "--data", missing, "--out", tmp_path / "run", *_flags(TINY_PIX2PIX)],
                 ["train", "srgan", "--data", data["pix2pix"] / "B", "--lr-data", missing, "--scale", "2",
                  "--out", tmp_path / "sr"],
                 ["data", "derive", "sr", missing, tmp_path / "derived"]):
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == 1, (args, result.output)
        assert result.output == f"error: {missing}/ does not exist or is not a folder" + (
            " (LR folder)" if "--lr-data" in args else "") + "\n"


def test_resume_on_data_of_another_length_is_refused_and_moved_data_is_taken(data, tmp_path):
    """--resume --data OTHER: the data order is built on the dataset's length, so data of
    another length is one line naming both counts; the same images moved elsewhere resume."""
    import shutil


    run = tmp_path / "run"
    train_one_step(data, run)
    other = paired(tmp_path / "other", n=4)
    line = _one_line_error(["train", "pix2pix", "--out", run, "--resume", "--data", other, "--max-steps", "2"])
    assert "gives 4 samples per epoch" in line and "gave 3" in line and str(data["pix2pix"]) in line, line
    assert not (run / "checkpoints" / "step_2.pt").exists()
    moved = tmp_path / "moved"
    shutil.copytree(data["pix2pix"], moved)
    result = CliRunner().invoke(main, [str(a) for a in ("train", "pix2pix", "--out", run, "--resume", "--data", moved,
                                                         "--max-steps", "2")])
    assert result.exit_code == 0 and "data '" in result.output, result.output
    assert (run / "checkpoints" / "step_2.pt").is_file()


def test_a_checkpoint_without_its_data_length_still_resumes(data, tmp_path):
    """Runs saved before checkpoints recorded the dataset's length resume as they did."""
    import torch

    run = tmp_path / "run"
    train_one_step(data, run)
    checkpoint = run / "checkpoints" / "step_1.pt"
    state = torch.load(checkpoint, weights_only=True)
    assert state.pop("dataset_length") == 3
    torch.save(state, checkpoint)
    config, options = make_settings("pix2pix", {"max_steps": 2, "data": str(paired(tmp_path / "other", n=4))},
                                    resume_from=run)
    train("pix2pix", config, options, resume=True)
    assert (run / "checkpoints" / "step_2.pt").is_file()
