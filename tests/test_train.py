"""The trainer through its Python API: schedules, image pool, settings, a tiny end-to-end
run, exact resume, divergence. Tiny networks (width 4), 32 px crops, a few steps."""
from __future__ import annotations

import json
import math
import sys
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.errors import I2IError, UsageError
from i2i.training import RunFolder, TrainConfig, make_settings, train
from i2i.training.settings import check_config
from i2i.training.schedule import Schedule



@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks gain nothing from threads, and on a shared 2-core machine OpenMP's
    spinning barriers make them up to 50x slower when another process holds a core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- data helpers


def write_images(folder: Path, n: int, size: int = 40, seed: int = 0, mode: str = "RGB") -> None:
    """`n` small random PNGs (smooth enough to be image-like) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        low = rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)
        image = Image.fromarray(low).resize((size, size), Image.BILINEAR)
        image.convert(mode).save(folder / f"img_{i}.png")


def unpaired(root: Path, n: int = 3) -> Path:
    write_images(root / "trainA", n, seed=1)
    write_images(root / "trainB", n, seed=2)
    return root


def paired(root: Path, n: int = 3) -> Path:
    write_images(root / "A", n, seed=3)
    write_images(root / "B", n, seed=4)
    return root


TINY_CYCLEGAN = {"netG": "resnet_6blocks", "width": 4, "ndf": 4, "image_size": 32, "load_size": 36,
                 "num_workers": 0, "log_every": 1}
TINY_PIX2PIX = {"netG": "unet_32", "width": 4, "ndf": 4, "image_size": 32, "load_size": 36,
                "num_workers": 0, "log_every": 1}


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------- schedule


def test_linear_schedule_is_the_reference_lambda_rule():
    config = TrainConfig(n_epochs=3, n_epochs_decay=4)
    schedule = Schedule(config, steps_per_epoch=10, total_steps=70)
    per_epoch = [schedule.factor(epoch * 10 + 5) for epoch in range(7)]
    # reference: 1 - max(0, epoch + epoch_count - n_epochs) / (n_epochs_decay + 1), epoch_count 1
    assert per_epoch == pytest.approx([1 - max(0, e + 1 - 3) / 5 for e in range(7)])
    assert schedule.factor(29) == 1.0 and schedule.factor(30) < 1.0


def test_max_steps_schedules_span_the_run():
    config = TrainConfig(max_steps=100, n_epochs=1, n_epochs_decay=1, lr_policy="linear")
    linear = Schedule(config, steps_per_epoch=7, total_steps=100)
    assert linear.factor(49) == 1.0 and linear.factor(99) == pytest.approx(1 / 51)
    cosine = Schedule(TrainConfig(max_steps=100, lr_policy="cosine"), 7, 100)
    assert cosine.factor(0) == 1.0 and cosine.factor(50) == pytest.approx(0.5) and cosine.factor(100) == pytest.approx(0)
    step = Schedule(TrainConfig(max_steps=100, lr_policy="step", lr_decay_iters=30), 7, 100)
    assert [step.factor(s) for s in (29, 30, 60)] == pytest.approx([1, 0.1, 0.01])


def test_plateau_schedule_reacts_to_the_monitored_loss():
    schedule = Schedule(TrainConfig(lr_policy="plateau"), steps_per_epoch=2, total_steps=100)
    for _ in range(7):  # an improving epoch, then six flat ones: patience 5 is exceeded once
        schedule.observe(1.0)
        schedule.end_epoch()
    assert schedule.factor(0) == pytest.approx(0.2)
    state = schedule.state_dict()
    other = Schedule(TrainConfig(lr_policy="plateau"), 2, 100)
    other.load_state_dict(state)
    assert other.factor(0) == pytest.approx(0.2)
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    assert other.apply({"G": opt}, 0) == pytest.approx(4e-5)


# ----------------------------------------------------------------------------- image pool


def test_image_pool_reference_semantics():
    from i2i.pipelines.cyclegan import ImagePool

    pool = ImagePool(3)
    images = [torch.full((1, 1, 2, 2), float(i)) for i in range(10)]
    for i in range(3):  # filling: each image comes straight back
        assert torch.equal(pool.query(images[i]), images[i])
    random.seed(0)
    out = [pool.query(images[i])[0, 0, 0, 0].item() for i in range(3, 10)]
    assert set(out) - set(range(10)) == set() and any(v < 3 for v in out)  # some old ones came back
    restored = ImagePool(3)
    restored.load_state_dict(pool.state_dict(), torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(restored.images, pool.images))


# ----------------------------------------------------------------------------- settings


def test_settings_precedence_and_unknown_keys(tmp_path):
    config_file = tmp_path / "c.yaml"
    config_file.write_text("lr: 1e-3\nnetG: unet_64\nbatch_size: 4\n")
    config, options = make_settings("pix2pix", {"batch_size": 2}, config_file=config_file)
    assert (config.lr, config.batch_size, options.netG, options.lambda_L1) == (1e-3, 2, "unet_64", 100.0)
    config_file.write_text("lr: 1e-3\nlamda_L1: 10\nfoo: 1\n")
    with pytest.raises(UsageError, match="unknown settings in .*: foo, lamda_L1"):
        make_settings("pix2pix", {}, config_file=config_file)
    config_file.write_text("lr: 1e-4\nbatch_size: 2\nlr: 2e-4\n")  # the last one won, silently
    with pytest.raises(UsageError, match="c.yaml: not valid YAML \\('lr' is given twice"):
        make_settings("pix2pix", {}, config_file=config_file)
    config_file.write_text("batch_size: many\n")
    with pytest.raises(UsageError, match="batch_size .* must be a int"):
        make_settings("pix2pix", {}, config_file=config_file)
    with pytest.raises(UsageError, match="unknown pipeline"):
        make_settings("nope", {})
    # --no-flip with an --augment that asks for augmentation: refused (was silently none); with
    # srgan's own default (dihedral) it is the reference's switch-off, as for the others
    with pytest.raises(UsageError, match="--no-flip turns augmentation off, but --augment dihedral asks for it"):
        make_settings("pix2pix", {"no_flip": True, "augment": "dihedral"})
    assert make_settings("srgan", {"no_flip": True})[0].no_flip
    # a load size below the crop trained on mirror-padded crops without a word
    with pytest.raises(UsageError, match="--load-size 20 is smaller than --image-size 32"):
        check_config(make_settings("pix2pix", {"load_size": 20, "image_size": 32})[0])
    check_config(make_settings("pix2pix", {"load_size": 20, "image_size": 32, "preprocess": "crop"})[0])


def test_wrong_layout_is_one_line_and_writes_nothing(tmp_path):
    data = paired(tmp_path / "data")  # A/ B/: not an unpaired layout
    config, options = make_settings("cyclegan", {"data": str(data), "out": str(tmp_path / "run"), **TINY_CYCLEGAN})
    with pytest.raises(UsageError) as error:
        train("cyclegan", config, options)
    assert "\n" not in str(error.value) and "trainA" in str(error.value)
    assert not (tmp_path / "run").exists()


def test_unet_crop_size_checked(tmp_path):
    data = paired(tmp_path / "data")
    config, options = make_settings("pix2pix", {"data": str(data), "out": str(tmp_path / "run"),
                                                **TINY_PIX2PIX, "netG": "unet_64"})
    with pytest.raises(UsageError, match="multiples of 64"):
        train("pix2pix", config, options)


# ----------------------------------------------------------------------------- end to end


def test_tiny_pix2pix_run_makes_a_loadable_model(tmp_path):
    from i2i.checkpoint import load_model, load_training_state

    data = paired(tmp_path / "data", n=4)
    run = tmp_path / "run"
    config, options = make_settings("pix2pix", {
        "data": str(data), "out": str(run), **TINY_PIX2PIX, "max_steps": 5, "batch_size": 2,
        "checkpoint_every": 2, "keep_last": 2, "sample_every": 2, "ema": 0.9})
    assert train("pix2pix", config, options) == run

    records = metrics(run)
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5]
    assert all(isinstance(r["step"], int) and {"G_GAN", "G_L1", "D_real", "D_fake", "D", "G", "lr", "epoch",
                                               "sec_per_step", "data_sec", "images_per_sec"} <= set(r) for r in records)
    assert [r["epoch"] for r in records] == [1, 1, 2, 2, 3]  # 4 images, batch 2
    assert [p.name for p in RunFolder(run).checkpoints()] == ["step_4.pt", "step_5.pt"]  # keep_last 2, final step
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_2.png", "step_4.png", "step_5.png"]
    page = (run / "index.html").read_text()
    assert "<polyline" in page and "samples/step_5.png" in page

    model = load_model(run / "model.safetensors")
    assert model.pipeline == "pix2pix" and list(model.networks) == ["G"]
    assert model.spec.directions == {"AtoB": "G"} and model.spec.in_channels == 3 and model.spec.test_mode == "train"
    with torch.no_grad():
        out = model.networks["G"](torch.zeros(1, 3, 32, 32))
    assert out.shape == (1, 3, 32, 32)
    state = load_training_state(run / "checkpoints" / "step_5.pt")
    assert state["step"] == 5 and set(state["networks"]) == {"G", "D"} and set(state["ema"]) == {"G"}
    # the model file holds the EMA weights, not the raw ones
    raw = state["networks"]["G"]["model.model.0.weight"]
    assert torch.equal(model.networks["G"].state_dict()["model.model.0.weight"], state["ema"]["G"]["model.model.0.weight"])
    assert not torch.equal(raw, state["ema"]["G"]["model.model.0.weight"])


def test_colorize_lab_task_on_a_photo_folder(tmp_path):
    from i2i.checkpoint import read_header

    data = tmp_path / "photos"
    write_images(data, 2)
    config, options = make_settings("pix2pix", {"data": str(data), "out": str(tmp_path / "run"), **TINY_PIX2PIX,
                                                "task": "colorize_lab", "max_steps": 2})
    run = train("pix2pix", config, options)
    header = read_header(run / "model.safetensors")
    assert header.spec.color_space == "lab" and header.archs["G"]["in_channels"] == 1
    assert (header.spec.in_channels, header.spec.out_channels) == (1, 2)
    assert (run / "samples" / "step_2.png").is_file()


@pytest.mark.skipif(not __import__("i2i.device").device.cpu_has_native_bf16(), reason="bf16 is emulated (slow) here")
def test_bf16_autocast_run(tmp_path):
    data = unpaired(tmp_path / "data", n=2)
    config, options = make_settings("cyclegan", {"data": str(data), "out": str(tmp_path / "run"), **TINY_CYCLEGAN,
                                                 "precision": "bf16", "max_steps": 2})
    run = train("cyclegan", config, options)
    assert all(math.isfinite(r["G"]) for r in metrics(run))


def test_grad_scaler_path(tmp_path):
    """The fp16 recipe (scale, step per optimiser, one update) on the CPU: a GradScaler that
    is enabled must leave the same result as none when nothing overflows (scale 2**16)."""
    from i2i.pipelines.pix2pix import Pix2Pix, Pix2PixOptions

    options = Pix2PixOptions(netG="unet_32", width=4, ndf=4, in_channels=3, out_channels=3, dropout=False)
    batch = {"A": torch.rand(1, 3, 32, 32), "B": torch.rand(1, 3, 32, 32)}
    results = []
    for enabled in (False, True):
        torch.manual_seed(0)
        scaler = torch.amp.GradScaler("cpu", enabled=enabled)
        pipe = Pix2Pix(options, TrainConfig(), torch.device("cpu"), scaler=scaler)
        for _ in range(2):
            losses = pipe.step(batch)
            scaler.update()
        results.append(losses)
    assert results[0]["G"].item() == pytest.approx(results[1]["G"].item(), rel=1e-5)


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    """A run resumed from its step-4 checkpoint computes steps 5-7 exactly as the run that
    never stopped: data order and augmentation (mid-epoch), dropout RNG, image pool swaps
    (Python random), Adam state and the learning-rate schedule all come back."""
    data = unpaired(tmp_path / "data")
    settings = {"data": str(data), **TINY_CYCLEGAN, "max_steps": 7, "checkpoint_every": 4, "pool_size": 2,
                "dropout": True, "keep_last": 5}
    full = tmp_path / "full"
    config, options = make_settings("cyclegan", {**settings, "out": str(full)})
    train("cyclegan", config, options)
    assert [p.name for p in RunFolder(full).checkpoints()] == ["step_4.pt", "step_7.pt"]

    resumed = tmp_path / "resumed"
    shutil.copytree(full, resumed)
    (resumed / "checkpoints" / "step_7.pt").unlink()  # as if it had stopped after step 4
    config, options = make_settings("cyclegan", {"out": str(resumed)}, resume_from=resumed)
    train("cyclegan", config, options, resume=True)

    def losses(run):
        return [{k: v for k, v in r.items() if k not in ("sec_per_step", "data_sec", "images_per_sec")} for r in metrics(run)]

    assert [r["step"] for r in metrics(resumed)] == list(range(1, 8))
    assert losses(resumed) == losses(full)


@pytest.mark.parametrize("damage", ["missing", "stale", "empty"])
def test_resume_writes_the_model_of_the_checkpoint_it_resumes(tmp_path, damage):
    """A kill between a checkpoint and its model.safetensors (the model is written second)
    left the model of an older step, or none; a resume, even one with no steps left, writes
    the model of the checkpoint it continues from."""
    from safetensors.torch import load_file

    settings = {"data": str(paired(tmp_path / "data")), **TINY_PIX2PIX, "max_steps": 4, "checkpoint_every": 2,
                "keep_last": 5, "out": str(tmp_path / "run")}
    config, options = make_settings("pix2pix", settings)
    run = train("pix2pix", config, options)
    model = run / "model.safetensors"
    final = {k: v.clone() for k, v in load_file(model).items()}  # not a view of the file's pages
    if damage == "missing":
        model.unlink()
    elif damage == "empty":
        model.write_bytes(b"")
    else:  # an older model beside the checkpoint of step 4
        config, options = make_settings("pix2pix", {**settings, "max_steps": 2, "out": str(tmp_path / "short")})
        shutil.copy(train("pix2pix", config, options) / "model.safetensors", model)
        assert any(not torch.equal(final[k], v) for k, v in load_file(model).items())
    config, options = make_settings("pix2pix", {"out": str(run)}, resume_from=run)
    train("pix2pix", config, options, resume=True)
    restored = load_file(model)
    assert restored.keys() == final.keys() and all(torch.equal(final[k], restored[k]) for k in final)


def test_the_progress_bar_counts_the_steps(tmp_path, capsys, monkeypatch):
    """On a terminal, the bar on stderr moves with each step (it stayed at 0/N after the trainer
    moved to its own module: only its loss text was updated)."""
    config, options = make_settings("pix2pix", {"data": str(paired(tmp_path / "data")), **TINY_PIX2PIX,
                                                "max_steps": 3, "out": str(tmp_path / "run")})
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    train("pix2pix", config, options)
    bar = capsys.readouterr().err.split("\r")[-1]
    assert "3/3 [" in bar and "100%" in bar, bar


def test_a_log_gets_a_line_per_logged_step_not_a_bar(tmp_path, capsys):
    """Under SLURM or nohup (stderr a file) the bar's carriage returns made the whole run one
    line of a log, its losses only in the bar: each logged step is a whole line instead."""
    config, options = make_settings("pix2pix", {"data": str(paired(tmp_path / "data")), **TINY_PIX2PIX,
                                                "max_steps": 3, "log_every": 1, "out": str(tmp_path / "run")})
    train("pix2pix", config, options)
    err = capsys.readouterr().err
    assert "\r" not in err
    steps = [line for line in err.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in steps] == ["1/3", "2/3", "3/3"] and "G_L1" in steps[-1], err


def test_nan_loss_stops_with_the_last_good_checkpoint(tmp_path, monkeypatch):
    from i2i.checkpoint import load_model
    from i2i.pipelines.pix2pix import Pix2Pix

    original = Pix2Pix.step

    def step(self, batch):  # weights blow up after the 3rd step: the 4th loss is NaN
        losses = original(self, batch)
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 3:
            with torch.no_grad():
                next(self.G.parameters()).fill_(math.nan)
        return losses

    monkeypatch.setattr(Pix2Pix, "step", step)
    data = paired(tmp_path / "data")
    run = tmp_path / "run"
    config, options = make_settings("pix2pix", {"data": str(data), "out": str(run), **TINY_PIX2PIX,
                                                "max_steps": 10, "checkpoint_every": 2, "norm": "instance"})
    with pytest.raises(I2IError) as error:
        train("pix2pix", config, options)
    message = str(error.value)
    assert "\n" not in message and "diverged at step 4" in message and "step_2.pt" in message
    assert [p.name for p in RunFolder(run).checkpoints()] == ["step_2.pt"]
    model = load_model(run / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in model.networks["G"].state_dict().values())
    assert max(r["step"] for r in metrics(run)) == 3


# ----------------------------------------------------------------------------- EMA


def test_ema_arithmetic():
    """shadow <- decay * shadow + (1 - decay) * param; buffers are copied, not averaged."""
    from i2i.training.ema import EMA

    net = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False), torch.nn.BatchNorm1d(1))
    with torch.no_grad():
        net[0].weight.zero_()
    ema = EMA({"G": net}, decay=0.9)
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[1].running_mean.fill_(3.0)
    ema.update({"G": net})
    shadow = ema.networks["G"]
    assert shadow[0].weight.item() == pytest.approx(0.1)
    assert shadow[1].running_mean.item() == 3.0
    ema.update({"G": net})
    assert shadow[0].weight.item() == pytest.approx(0.19)
    assert net[0].weight.item() == 1.0  # the trained weights are untouched


def test_model_file_of_an_ema_run_holds_the_averaged_weights(tmp_path):
    """Between two consecutive checkpoints, ema_k+1 = 0.8 ema_k + 0.2 raw_k+1; the model file
    written with the last one holds ema, not the raw weights."""
    from i2i.checkpoint import load_model, load_training_state

    data = paired(tmp_path / "data")
    run = tmp_path / "run"
    config, options = make_settings("pix2pix", {"data": str(data), "out": str(run), **TINY_PIX2PIX, "max_steps": 3,
                                                "checkpoint_every": 1, "keep_last": 5, "ema": 0.8})
    train("pix2pix", config, options)
    states = [load_training_state(run / "checkpoints" / f"step_{k}.pt") for k in (2, 3)]
    shipped = load_model(run / "model.safetensors").networks["G"].state_dict()
    weights = [k for k, v in states[1]["networks"]["G"].items() if "running" not in k and v.is_floating_point()]
    assert weights
    for key in weights:
        before, raw, after = states[0]["ema"]["G"][key], states[1]["networks"]["G"][key], states[1]["ema"]["G"][key]
        torch.testing.assert_close(after, 0.8 * before + 0.2 * raw, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(shipped[key], after, rtol=0, atol=0)
    assert any(not torch.equal(shipped[k], states[1]["networks"]["G"][k]) for k in weights)


def test_sample_grids_leave_training_untouched(tmp_path):
    """Drawing samples (generator in train mode: BatchNorm statistics, dropout RNG) every step
    gives bit-identical checkpoints to drawing none."""
    from i2i.checkpoint import load_training_state

    data = paired(tmp_path / "data")
    runs = {}
    for every in (1, 1000):
        runs[every] = tmp_path / f"every_{every}"
        config, options = make_settings("pix2pix", {"data": str(data), "out": str(runs[every]), **TINY_PIX2PIX,
                                                    "max_steps": 3, "checkpoint_every": 1, "keep_last": 5,
                                                    "sample_every": every, "dropout": True, "norm": "batch"})
        train("pix2pix", config, options)
    assert len(list((runs[1] / "samples").iterdir())) == 3

    def flat(value, prefix=""):
        if isinstance(value, dict):
            for k, v in value.items():
                yield from flat(v, f"{prefix}.{k}")
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                yield from flat(v, f"{prefix}[{i}]")
        else:
            yield prefix, value

    for step in (1, 2):
        a, b = (dict(flat(load_training_state(runs[e] / "checkpoints" / f"step_{step}.pt"))) for e in (1, 1000))
        assert a.keys() == b.keys()
        assert any("running_mean" in k for k in a)
        for key in a:
            same = torch.equal(a[key], b[key]) if isinstance(a[key], torch.Tensor) else a[key] == b[key]
            assert same, f"step {step}: {key} differs"


def test_resume_compares_renamed_settings_under_their_new_name(tmp_path):
    """A run saved with srgan's old `d_width` is a different model when resumed with another --ndf."""
    import yaml

    from i2i.pipelines.srgan import SRGAN
    from i2i.training.resume import check_changes
    from i2i.training.settings import renamed_settings

    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.config_path.write_text(yaml.safe_dump({"pipeline": "srgan", "d_width": 64}))
    renamed = renamed_settings(TrainConfig, SRGAN.Options)
    assert renamed["d_width"] == "ndf"
    check_changes(folder, {"ndf": 64}, SRGAN.model_options, renamed)
    with pytest.raises(UsageError, match="a different model \\(ndf 64 -> 32\\)"):
        check_changes(folder, {"ndf": 32}, SRGAN.model_options, renamed)


def test_run_folder_checkpoints_are_ordered_by_step_and_skip_other_files(tmp_path):
    """--resume continues from the newest checkpoint: step_10 is newer than step_9, and a
    write cut short (its temp file) or a stray file is never taken for one."""
    folder = RunFolder(tmp_path)
    folder.checkpoint_dir.mkdir()
    for name in ("step_9.pt", "step_10.pt", "step_2.pt", ".step_11.pt.0123456789ab.tmp", "step_x.pt", "notes.txt"):
        (folder.checkpoint_dir / name).write_bytes(b"")
    assert [p.name for p in folder.checkpoints()] == ["step_2.pt", "step_9.pt", "step_10.pt"]


def test_training_from_python_with_a_plain_mapping(tmp_path):
    """The README's Python training: settings named as the CLI's flags, paths as pathlib.Path,
    then a resume; the options of another pipeline are one line, not an AttributeError."""
    import i2i
    from i2i.pipelines.pix2pix import Pix2PixOptions

    settings = {"data": paired(tmp_path / "data"), "out": tmp_path / "run", "max_steps": 2, **TINY_PIX2PIX}
    run = i2i.train("pix2pix", settings)
    assert run == tmp_path / "run" and [m["step"] for m in metrics(run)] == [1, 2]
    i2i.train("pix2pix", {"out": tmp_path / "run", "max_steps": 3}, resume=True)
    assert [m["step"] for m in metrics(run)] == [1, 2, 3]
    with pytest.raises(UsageError, match="cyclegan takes CycleGANOptions, not Pix2PixOptions"):
        i2i.train("cyclegan", TrainConfig(data=str(tmp_path / "data"), out=str(tmp_path / "r2")), Pix2PixOptions())


def test_training_from_python_gives_torch_settings_back(tmp_path):
    """A notebook goes on as it was after i2i.train: torch's thread count and deterministic mode
    are the caller's again (training set threads: 2 and deterministic: true for itself)."""
    import i2i

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        settings = {"data": paired(tmp_path / "data"), "out": tmp_path / "run", "max_steps": 1,
                    "threads": 2, "deterministic": True, **TINY_PIX2PIX}
        i2i.train("pix2pix", settings)
        assert torch.get_num_threads() == 1 and not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(threads)


def test_preprocess_none_trains_on_images_of_different_sizes(tmp_path):
    """--preprocess none keeps each image's size: batch 1 trains (the sample batch collated four
    sizes into one tensor: a traceback), a larger batch is one line saying why."""
    rng = np.random.default_rng(0)
    for name, (h, w) in {"wide": (32, 64), "tall": (64, 32), "square": (32, 32)}.items():
        (tmp_path / "photos").mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / "photos" / f"{name}.png")
    settings = {**TINY_PIX2PIX, "data": tmp_path / "photos", "task": "sketch", "preprocess": "none", "max_steps": 2}
    assert (train("pix2pix", {**settings, "out": tmp_path / "run"}) / "model.safetensors").is_file()
    with pytest.raises(UsageError, match="--preprocess none keeps each image's size, and one batch of 3 got"):
        train("pix2pix", {**settings, "out": tmp_path / "run3", "batch_size": 3})
    assert not (tmp_path / "run3").exists()
