"""Reproducibility: what config.yaml records, and re-running a run from its config.yaml.

Tiny pix2pix runs on a few 32 px images, one thread, no DataLoader workers.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

import i2i
from i2i.training import make_settings, train
from conftest import save

TINY = {"task": "sketch", "netG": "unet_32", "width": 4, "ndf": 4, "image_size": 32, "preprocess": "crop",
        "max_steps": 3, "batch_size": 2, "threads": 1, "num_workers": 0, "log_every": 1}


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(4):
        save(tmp_path / "photos" / f"p{i}.png", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    return tmp_path / "photos"


def _weights(run) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def _config(run) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


def test_config_yaml_records_threads_and_versions(photos, tmp_path):
    """The thread count (`threads: 0` is one per core of whichever machine) and the torch and
    i2i versions change a run's numerics: config.yaml writes them down, and a copy of it still
    reads as settings (they are records, not settings)."""
    run = i2i.train("pix2pix", {**TINY, "data": photos, "out": tmp_path / "run"})
    saved = _config(run)
    assert saved["threads_resolved"] == 1
    assert saved["torch_version"] == torch.__version__ and saved["i2i_version"] == i2i.__version__
    config, _ = make_settings("pix2pix", {"out": str(tmp_path / "again")}, config_file=run / "config.yaml")
    assert config.threads == 1


def test_config_rerun_names_what_the_run_resolved_auto_to(photos, tmp_path, capsys):
    """`--config runs/x/config.yaml` reads `auto` for the precision and the layout and resolves
    them again (another machine, a layout timed the other way: other numerics); one line says
    what runs/x chose and the flags that compute as it did, so such a re-run is not silent.
    Given those flags, the re-run reproduces runs/x exactly."""
    run = train("pix2pix", {**TINY, "data": photos, "out": tmp_path / "x", "channels_last": "on"})
    saved = _config(run)
    assert saved["channels_last_resolved"] is True
    # as an `auto` run that chose channels_last and bf16 (a machine with native bf16) records it
    copy = tmp_path / "x.yaml"
    copy.write_text(yaml.safe_dump({**saved, "channels_last": "auto", "precision_resolved": "bf16"}, sort_keys=False))
    capsys.readouterr()
    config, _ = make_settings("pix2pix", {"out": str(tmp_path / "y")}, config_file=copy)
    assert (config.channels_last, config.precision) == ("auto", "auto")  # records are not settings
    assert "--precision bf16 --channels-last on computes as it did" in capsys.readouterr().err
    make_settings("pix2pix", {"out": str(tmp_path / "y"), "precision": "bf16", "channels-last": "on"},
                  config_file=copy)
    assert "note" not in capsys.readouterr().err  # the flags said it
    config, options = make_settings("pix2pix", {"out": str(tmp_path / "y"), "channels_last": "on"},
                                    config_file=run / "config.yaml")
    again = train("pix2pix", config, options)
    first, second = _weights(run), _weights(again)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_a_resume_keeps_how_the_run_started_and_says_what_changed(photos, tmp_path, capsys):
    """Each resume rewrote the records: a run started under another torch lost that record
    without a word. They stay as the run started; another torch is named on resume."""
    run = train("pix2pix", {**TINY, "data": photos, "out": tmp_path / "run"})
    saved = _config(run)
    (run / "config.yaml").write_text(yaml.safe_dump({**saved, "torch_version": "2.0.0", "threads_resolved": 16},
                                                    sort_keys=False))
    capsys.readouterr()
    train("pix2pix", {"out": tmp_path / "run", "max_steps": 4}, resume=True)
    assert "torch_version '2.0.0' -> " in capsys.readouterr().err
    again = _config(run)
    assert (again["torch_version"], again["threads_resolved"], again["max_steps"]) == ("2.0.0", 16, 4)


def test_the_rerun_note_names_the_threads_and_is_quiet_on_resume(photos, tmp_path, capsys):
    """threads 0 is one per core of whichever machine: the note names the run's count. A resumed
    run keeps what it chose, so a --config given with --resume gets no note."""
    run = train("pix2pix", {**TINY, "data": photos, "out": tmp_path / "x"})
    copy = tmp_path / "x.yaml"
    copy.write_text(yaml.safe_dump({**_config(run), "threads": 0, "threads_resolved": 16}, sort_keys=False))
    capsys.readouterr()
    make_settings("pix2pix", {"out": str(tmp_path / "y")}, config_file=copy)
    assert "--threads 16" in capsys.readouterr().err
    make_settings("pix2pix", {}, config_file=copy, resume_from=run)
    assert "note" not in capsys.readouterr().err
