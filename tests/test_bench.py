"""`i2i bench train` and `i2i bench translate`: one JSON line each, with the figures and the
machine they were measured on. Tiny sizes: this checks the machinery, not the speed."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from i2i.cli import main
from i2i.device import SPEED_FLAGS, cpu_flags, resolve_precision
from test_train import one_thread  # noqa: F401

MACHINE_KEYS = {"cpu", "cpu_flags", "cores", "threads", "torch", "gpu", "precision", "device", "peak_rss_mb",
                "images_per_sec"}


def _json_line(output: str) -> dict:
    lines = [line for line in output.splitlines() if line.startswith("{")]
    assert len(lines) == 1, output
    return json.loads(lines[0])


def test_bench_train_prints_one_json_line():
    result = CliRunner().invoke(main, ["bench", "train", "cyclegan", "--image-size", "32", "--steps", "2",
                                       "--warmup", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    figures = _json_line(result.output)
    assert MACHINE_KEYS | {"sec_per_step", "sec_per_step_min", "sec_per_step_max", "steps"} <= set(figures)
    assert figures["pipeline"] == "cyclegan" and figures["image_size"] == 32 and figures["batch_size"] == 1
    assert figures["steps"] == 2 and figures["sec_per_step_min"] <= figures["sec_per_step"] <= figures["sec_per_step_max"]
    assert figures["images_per_sec"] > 0 and figures["peak_rss_mb"] > 100
    assert figures["precision_asked"] == "auto" and figures["precision"] == resolve_precision("auto", _cpu())
    assert figures["threads"] == 1 and figures["gpu"] is None
    assert set(figures["cpu_flags"]) <= set(SPEED_FLAGS) and set(figures["cpu_flags"]) <= cpu_flags()


def test_bench_train_uses_the_pipelines_defaults_and_refuses_unknown_ones():
    from i2i.bench import time_train_steps

    figures = time_train_steps("srgan", image_size=16, batch_size=2, steps=1, warmup=0, device="cpu",
                               precision="fp32", scale=2, num_blocks=1, width=4)
    assert (figures["image_size"], figures["batch_size"], figures["precision"]) == (16, 2, "fp32")
    result = CliRunner().invoke(main, ["bench", "train", "nope"])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "unknown pipeline 'nope'" in result.output


def test_bench_train_reads_a_settings_file_and_times_the_augmentation_apart(tmp_path):
    """--config as `i2i train` reads it (here srgan's Real-ESRGAN degradations): the step and
    the augmentation that made its batch are timed apart, and their ratio is reported."""
    settings = tmp_path / "realworld.yaml"
    settings.write_text("degradation: realesrgan\nbatch_size: 3\nscale: 2\nwidth: 4\nnum_blocks: 1\n")
    result = CliRunner().invoke(main, ["bench", "train", "srgan", "--config", str(settings), "--image-size", "32",
                                       "--steps", "2", "--warmup", "1", "--device", "cpu", "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    figures = _json_line(result.output)
    assert figures["batch_size"] == 3 and figures["image_size"] == 32
    assert figures["augment_sec"] > 0
    assert figures["augment_share_of_step"] == pytest.approx(figures["augment_sec"] / figures["sec_per_step"], rel=0.05)
    settings.write_text("degradation: nope\n")
    result = CliRunner().invoke(main, ["bench", "train", "srgan", "--config", str(settings), "--device", "cpu"])
    assert result.exit_code != 0 and result.output.count("\n") == 1 and "nope" in result.output


def test_bench_translate_runs_i2i_translate_in_a_fresh_process():
    result = CliRunner().invoke(main, ["bench", "translate", "--image-size", "32", "--images", "3", "--model", "tiny",
                                       "--device", "cpu", "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    figures = _json_line(result.output)
    assert MACHINE_KEYS | {"sec_per_image", "seconds", "images"} <= set(figures)
    assert figures["images"] == 3 and figures["precision"] == "fp32"
    assert abs(figures["sec_per_image"] * 3 - figures["seconds"]) < 0.01
    assert figures["peak_rss_mb"] > 100  # the child's (it imported torch), not this process's


def _cpu():
    import torch

    return torch.device("cpu")


def _torch_out_of_memory(*args, **kwargs):
    raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                       "you tried to allocate 120000000000 bytes. Error code 12 (Cannot allocate memory)")


def _numpy_out_of_memory(*args, **kwargs):
    raise MemoryError("Unable to allocate 149. GiB for an array with shape (2, 100000, 100000) and data type int64")


def test_bench_out_of_memory_is_one_line_naming_what_to_shrink(monkeypatch):
    """Sizes too large for the machine end as the trainer's one-line OutOfMemory (exit 1),
    not a traceback. The allocations are faked: a real one might be granted (overcommit)."""
    import i2i.training.layout

    monkeypatch.setattr(i2i.training.layout, "example_batch", _torch_out_of_memory)
    result = CliRunner().invoke(main, ["bench", "train", "cyclegan", "--image-size", "32", "--steps", "1",
                                       "--warmup", "0", "--device", "cpu", "--precision", "fp32"])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert result.output.startswith("error: out of memory (RuntimeError: ") and "can't allocate memory" in result.output
    assert result.output.rstrip().endswith("try a smaller --batch-size or --image-size")

    monkeypatch.setattr("i2i.bench.picture", _numpy_out_of_memory)
    result = CliRunner().invoke(main, ["bench", "translate", "--image-size", "32", "--images", "1", "--model", "tiny",
                                       "--device", "cpu", "--precision", "fp32"])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert result.output.startswith("error: out of memory (MemoryError: Unable to allocate 149. GiB")
    assert result.output.rstrip().endswith("try a smaller --image-size")

    def broken(*args, **kwargs):
        raise RuntimeError("a bug, not the machine's memory")

    monkeypatch.setattr(i2i.training.layout, "example_batch", broken)  # other errors are not blamed on memory
    result = CliRunner().invoke(main, ["bench", "train", "cyclegan", "--image-size", "32", "--steps", "1",
                                       "--warmup", "0", "--device", "cpu", "--precision", "fp32"])
    assert isinstance(result.exception, RuntimeError) and "a bug" in str(result.exception)


def test_bench_refuses_fp16_on_a_cpu_before_any_work(monkeypatch):
    """As --device cuda without CUDA: exit 2 up front, before writing pictures or starting
    `i2i translate` in a child process."""
    import i2i.bench

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the precision was checked")

    monkeypatch.setattr(i2i.bench, "write_pictures", no_work)
    monkeypatch.setattr(i2i.bench, "run_measured", no_work)
    for command in (["bench", "translate", "--images", "1", "--model", "tiny"], ["bench", "train", "cyclegan"]):
        result = CliRunner().invoke(main, [*command, "--device", "cpu", "--precision", "fp16"])
        assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
        assert "fp16 autocast needs a GPU" in result.output


def test_bench_train_refuses_a_zero_size_instead_of_taking_the_default(monkeypatch):
    """0 is not a size: refused as `i2i train` refuses it; leaving the flag out takes the default."""
    def no_work(*args, **kwargs):
        raise AssertionError("a zero size was taken for the pipeline's default")

    monkeypatch.setattr("i2i.bench.time_train_steps", no_work)
    for flag in ("--image-size", "--batch-size"):
        result = CliRunner().invoke(main, ["bench", "train", "cyclegan", flag, "0", "--device", "cpu"])
        assert result.exit_code == 2 and f"Invalid value for '{flag}': 0 is not in the range x>=1" in result.output
    help_text = CliRunner().invoke(main, ["bench", "train", "--help"]).output
    assert help_text.count("[default: the pipeline's]") == 2 and "x>=0" not in help_text.split("--steps")[0]
