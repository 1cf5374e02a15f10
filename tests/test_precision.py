"""`precision="auto"`, the training default: what it chooses on each kind of hardware, that a
run records and keeps its choice, and that the auto precision's losses and outputs stay
within a stated tolerance of fp32's from the same seed (a tiny version of
benchmarks/precision_drift.py). Fused Adam, which the trainer uses, gives Adam's update."""
from __future__ import annotations

import math

import pytest
import torch
import yaml

from i2i.device import auto_precision, cpu_has_native_bf16, resolve_precision
from i2i.training import Trainer, make_settings, train
from test_train import TINY_CYCLEGAN, TINY_PIX2PIX, one_thread, paired, unpaired, write_images  # noqa: F401

CPU = torch.device("cpu")


def test_auto_is_fast_where_the_hardware_is_and_fp32_elsewhere():
    assert auto_precision("cpu", native_cpu_bf16=True) == "bf16"       # AVX-512 BF16 or AMX
    assert auto_precision("cpu", native_cpu_bf16=False) == "fp32"      # AVX2 only: bf16 is emulated, ~100x slower
    assert auto_precision("cuda", cuda_bf16=True) == "bf16"            # Ampere and later
    assert auto_precision("cuda", cuda_bf16=False) == "fp16"           # older GPUs: fp16 + GradScaler
    assert auto_precision("mps") == "fp32"
    assert resolve_precision("auto", CPU) == ("bf16" if cpu_has_native_bf16() else "fp32")
    assert resolve_precision("fp32", CPU) == "fp32"


def test_training_defaults_to_auto_and_records_what_it_chose(tmp_path):
    config, _ = make_settings("pix2pix", {})
    assert config.precision == "auto"
    data = paired(tmp_path / "data")
    run = tmp_path / "run"
    config, options = make_settings("pix2pix", {"data": str(data), "out": str(run), **TINY_PIX2PIX, "max_steps": 2})
    train("pix2pix", config, options)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["precision"] == "auto" and saved["precision_resolved"] == resolve_precision("auto", CPU)
    # config.yaml stays a valid --config file: the record is not a setting
    again, _ = make_settings("pix2pix", {}, config_file=run / "config.yaml")
    assert again.precision == "auto"


def test_a_resumed_auto_run_keeps_the_precision_it_started_with(tmp_path):
    data = paired(tmp_path / "data")
    run = tmp_path / "run"
    config, options = make_settings("pix2pix", {"data": str(data), "out": str(run), **TINY_PIX2PIX, "max_steps": 2})
    train("pix2pix", config, options)
    other = "fp32" if resolve_precision("auto", CPU) == "bf16" else "bf16"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**saved, "precision_resolved": other}, sort_keys=False))
    config, options = make_settings("pix2pix", {"max_steps": 3}, resume_from=run)
    trainer = Trainer("pix2pix", config, options, resume=True)
    try:
        assert trainer.precision == other  # what the run chose, not what auto means here
    finally:
        trainer.run_folder.unlock()
    trainer.run()
    assert yaml.safe_load((run / "config.yaml").read_text())["precision_resolved"] == other
    # an explicit precision on resume takes effect
    config, options = make_settings("pix2pix", {"max_steps": 4, "precision": "fp32"}, resume_from=run)
    trainer = Trainer("pix2pix", config, options, resume=True)
    trainer.run_folder.unlock()
    assert trainer.precision == "fp32"


# ----------------------------------------------------------------------------- drift

#: the stated tolerance of the tiny drift check (4 steps, width-4 networks, 32 px, the same
#: seed): the total losses (G, D) of every step within 2% of fp32's, every other loss term
#: within 10% (adversarial terms of a random 4-channel discriminator swing most), or 2e-3
#: absolute near zero; the final generator's outputs within 0.02 mean / 0.1 largest absolute
#: difference in [0, 1]. Measured on an AMD EPYC (AVX512-BF16): totals within 0.6%, terms
#: within 5.4% (CycleGAN's G_A at step 3), outputs 0.007 mean / 0.042 largest (CycleGAN);
#: pix2pix 0.6% / 0.0007 / 0.0055; SRGAN (x2, 2 blocks) below 1e-4 (its residual starts small).
TOTAL_RTOL, TERM_RTOL, LOSS_ATOL, OUT_MEAN, OUT_MAX = 0.02, 0.10, 2e-3, 0.02, 0.1

TINY_SRGAN = {"scale": 2, "width": 8, "num_blocks": 2, "image_size": 32, "batch_size": 2, "ema": 0.0,
              "num_workers": 0, "log_every": 1}


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="auto is fp32 on this CPU: nothing drifts")
@pytest.mark.parametrize("pipeline", ["cyclegan", "pix2pix", "srgan"])
def test_auto_precision_drifts_from_fp32_within_tolerance(tmp_path, pipeline):
    from i2i.bench import compare_runs, train_run

    if pipeline == "cyclegan":
        data, settings = unpaired(tmp_path / "data"), TINY_CYCLEGAN
    elif pipeline == "pix2pix":
        data, settings = paired(tmp_path / "data"), TINY_PIX2PIX
    else:
        data, settings = tmp_path / "hr", TINY_SRGAN
        write_images(data, 3, size=48)
    runs = {p: train_run(pipeline, data, tmp_path / p, {**settings, "max_steps": 4, "precision": p})
            for p in ("fp32", "auto")}
    assert runs["auto"]["precision"] == "bf16"
    fp32, auto = runs["fp32"]["curves"], runs["auto"]["curves"]
    for name in fp32:
        rtol = TOTAL_RTOL if name in ("G", "D") else TERM_RTOL
        for step, (a, b) in enumerate(zip(fp32[name], auto[name]), 1):
            assert math.isfinite(b) and abs(a - b) <= max(rtol * abs(a), LOSS_ATOL), \
                f"{pipeline} {name} at step {step}: fp32 {a:.5f}, auto {b:.5f}"
    inputs = torch.rand(2, 3, 32 // (2 if pipeline == "srgan" else 1), 32 // (2 if pipeline == "srgan" else 1),
                        generator=torch.Generator().manual_seed(0))
    drift = compare_runs(runs["fp32"], runs["auto"], inputs, window=1)
    assert drift["output_mean_abs"] <= OUT_MEAN and drift["output_max_abs"] <= OUT_MAX, drift


def test_fused_adam_gives_adams_update():
    """The trainer swaps each pipeline's Adam for the fused kernel (faster); same update."""
    from i2i.training.trainer import fused_adam

    torch.manual_seed(0)
    start = [torch.randn(64, 32), torch.randn(7)]
    params = {kind: [torch.nn.Parameter(p.clone()) for p in start] for kind in ("plain", "fused")}
    plain = torch.optim.Adam(params["plain"], lr=2e-4, betas=(0.5, 0.999))
    fused = fused_adam(torch.optim.Adam(params["fused"], lr=2e-4, betas=(0.5, 0.999)), CPU)
    assert fused.param_groups[0]["fused"] and fused.param_groups[0]["betas"] == (0.5, 0.999)
    for _ in range(5):
        grads = [torch.randn_like(p) for p in start]
        for opt, ps in ((plain, params["plain"]), (fused, params["fused"])):
            for p, g in zip(ps, grads):
                p.grad = g.clone()
            opt.step()
    for a, b in zip(params["plain"], params["fused"]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
