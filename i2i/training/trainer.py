"""The trainer: one training loop for every pipeline.

    config, options = make_settings("cyclegan", {"data": "horse2zebra", "out": "runs/h2z"})
    run = train("cyclegan", config, options)

`Trainer.run` is meant to be read top to bottom: next batch -> learning rate for this step
-> `pipeline.step(batch)` -> check the losses are finite -> EMA -> log / sample /
checkpoint. A pipeline plugs in through the protocol of `i2i.pipelines`; the files go
through `RunFolder`.

Resuming is exact: a checkpoint holds networks, optimisers, schedule, GradScaler, EMA, the
pipeline's own state (image pools) and every RNG, and the data order is a pure function of
(seed, epoch, index) (`i2i.training.data_order`). So a resumed run sees the same batches,
and on the CPU computes the same losses, as one that never stopped.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from i2i.errors import I2IError, UsageError, one_line
from i2i.training.data_order import make_loader, to_device
from i2i.training.ema import EMA
from i2i.training.rng import rng_state, set_rng_state, untouched
from i2i.training.run_folder import RunFolder
from i2i.training.schedule import Schedule
from i2i.training.settings import TrainConfig, check_config, renamed_settings, settings_dict


class TrainingDiverged(I2IError):
    """A loss became NaN or infinite; the run stops, its last good checkpoint stays."""


class Interrupted(I2IError):
    """SIGINT or SIGTERM stopped the run after its checkpoint; the exit status is the shells'
    128 + signal number (130, 143), so `train && translate` and job schedulers stop too."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


#: settings a resumed run may change; they take effect and are reported
RESUMABLE = ("lr", "max_steps", "n_epochs", "n_epochs_decay", "lr_decay_iters", "lr_gamma", "log_every",
             "checkpoint_every", "sample_every", "keep_last", "num_workers", "threads", "device", "precision")


def train(pipeline: str, config: TrainConfig, options: Any = None, *, resume: bool = False) -> Path:
    """Train `pipeline` as `config` and `options` say; returns the run folder.

    With `resume`, continue the run in `config.out` from its newest checkpoint: same
    step count, schedule, data order and RNG streams. Settings that would change the model
    are refused with one line; see `make_settings(..., resume_from=run)`.
    """
    return Trainer(pipeline, config, options, resume=resume).run()


class Trainer:
    """One run: its pipeline, schedule, EMA and counters (step, epoch, batch in epoch).

    Construction checks everything and builds everything (data first, so a wrong layout
    fails before any work), restores the newest checkpoint when resuming, and writes
    config.yaml; `run()` trains.
    """

    def __init__(self, pipeline: str, config: TrainConfig, options: Any = None, *, resume: bool = False) -> None:
        from i2i.pipelines import get_pipeline

        self.name, self.cls = pipeline, get_pipeline(pipeline)
        self.config = dataclasses.replace(config)  # our copies: channels and stage defaults get filled in
        self.options = dataclasses.replace(options) if options is not None else self.cls.Options()
        if not self.config.out:
            raise UsageError("no run folder given (--out RUN)")
        if not self.config.data:
            raise UsageError("no data folder given (--data DIR)")
        check_config(self.config)
        _absolute_paths(self.config, self.options)
        self.run_folder = RunFolder(self.config.out)
        self.run_folder.check_usable(pipeline, resume)
        self.device, self.precision = _device_and_precision(self.config)
        self.dataset = self._build_dataset()  # a wrong layout fails before anything is written
        if resume:
            self.run_folder.check_same_model(self._settings(), self.cls.model_options,
                                             renamed_settings(TrainConfig, self.cls.Options))
        self.run_folder.lock()
        try:
            self.run_folder.check_usable(pipeline, resume)  # again, under the lock
            self._prepare(resume)
        except BaseException:
            self.run_folder.unlock(remove_if_empty=not resume)
            raise

    def _prepare(self, resume: bool) -> None:
        self.steps_per_epoch = math.ceil(len(self.dataset) / self.config.batch_size)
        self.total_steps = self.config.max_steps or self.steps_per_epoch * (self.config.n_epochs +
                                                                            self.config.n_epochs_decay)
        self._build_pipeline()
        self.step = self.epoch = self.batch_in_epoch = 0
        self.resumed = resume and self._restore_newest()
        if self.resumed:
            self._report_changes(self.run_folder.saved_settings())
        self.run_folder.create(self._settings())

    # ------------------------------------------------------------------ building

    def _build_dataset(self) -> Any:
        """The pipeline's dataset; the settings are final after this (channels from the data)."""
        dataset = self.cls.build_dataset(self.options, self.config)
        if len(dataset) == 0:
            raise UsageError(f"{self.config.data}/ has no training images")
        for side in ("in_channels", "out_channels"):
            if hasattr(self.options, side) and not getattr(self.options, side):
                setattr(self.options, side, getattr(dataset, side))
        return dataset

    def _build_pipeline(self) -> None:
        from i2i.device import autocast

        config = self.config
        if config.threads > 0:
            torch.set_num_threads(config.threads)
        random.seed(config.seed)
        np.random.seed(config.seed % 2**32)
        torch.manual_seed(config.seed)
        if config.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = not config.deterministic
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.pipe = self.cls(self.options, config, self.device, scaler=self.scaler,
                             autocast=lambda: autocast(self.device, self.precision))
        _check_sizes(self.pipe.inference_networks(), config.image_size)
        self.schedule = Schedule(config, self.steps_per_epoch, self.total_steps)
        self.ema = EMA(self.pipe.inference_networks(), config.ema) if config.ema > 0 else None

    def _settings(self) -> dict:
        return settings_dict(self.name, self.config, self.options)

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict:
        """Everything a resume needs, as tensors and plain Python (read with weights_only=True)."""
        return {
            "pipeline": self.name,
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "networks": {name: net.state_dict() for name, net in self.pipe.networks.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.pipe.optimizers.items()},
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "pipeline_state": self.pipe.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a checkpoint. Learning rates are this run's (a resume may change --lr):
        the optimiser states keep their moments, the schedule scales the new rate."""
        if state.get("pipeline") != self.name:
            raise ValueError(f"a checkpoint of {state.get('pipeline')!r}, not {self.name}")
        for name, net in self.pipe.networks.items():
            net.load_state_dict(state["networks"][name])
        for name, opt in self.pipe.optimizers.items():
            rates = [group["lr"] for group in opt.param_groups]
            opt.load_state_dict(state["optimizers"][name])
            for group, rate in zip(opt.param_groups, rates):
                group["initial_lr"] = rate
        self.schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])
        self.pipe.load_state_dict(state["pipeline_state"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        set_rng_state(state["rng"])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]

    def _restore_newest(self) -> bool:
        """Resume from the newest checkpoint valid for this run (False: none yet); a truncated,
        foreign or malformed newer one is reported on one line and skipped."""
        from i2i.checkpoint import load_training_state

        found = self.run_folder.checkpoints()
        if not found:  # killed before its first checkpoint: start again
            self.run_folder.metrics_path.unlink(missing_ok=True)
            return False
        for path in reversed(found):
            try:
                self.load_state_dict(load_training_state(path))
                break
            except I2IError as error:
                print(f"warning: {error}; trying an older checkpoint", file=sys.stderr)
            except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
                print(f"warning: {path}: not a checkpoint of this run ({one_line(error, 200, typed=True)}); "
                      "trying an older checkpoint", file=sys.stderr)
        else:
            raise I2IError(f"no usable checkpoint in {self.run_folder.checkpoint_dir}/ for this run")
        if self.config.max_steps and self.config.max_steps < self.step:
            raise UsageError(f"{self.run_folder}/ is at step {self.step} already; --max-steps "
                             f"{self.config.max_steps} would undo nothing (give more steps, or none)")
        if self.batch_in_epoch >= self.steps_per_epoch:  # the dataset shrank since
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        self.run_folder.truncate_metrics(self.step)
        return True

    def _report_changes(self, saved: dict) -> None:
        """One line naming the settings this resume changes (they take effect)."""
        now = self._settings()
        changed = [f"{key} {saved[key]!r} -> {now[key]!r}" for key in RESUMABLE
                   if key in saved and key in now and saved[key] != now[key]]
        if changed:
            print(f"resuming with {', '.join(changed)}", file=sys.stderr)

    def save(self) -> None:
        """Full state to checkpoints/step_N.pt, the model to model.safetensors, both atomic."""
        nets = self.ema.networks if self.ema is not None else self.pipe.inference_networks()
        _check_finite_weights(self.pipe.networks, self.step, self.run_folder)
        self.run_folder.save_checkpoint(self.step, self.state_dict(), self.config.keep_last)
        self.run_folder.save_model(nets, self.pipe.model_spec())

    def sample(self) -> None:
        with untouched(self.pipe.networks, self.device):
            columns = self.pipe.sample(self.sample_batch)
        self.run_folder.write_samples(self.step, columns)
        self.run_folder.write_page(self.pipe.sample_columns)

    # ------------------------------------------------------------------ the loop

    def run(self) -> Path:
        """Train to the last step (or a signal); the run folder's lock is released however it ends."""
        try:
            return self._run()
        finally:
            self.run_folder.unlock()

    def _run(self) -> Path:
        from torch.utils.data import default_collate
        from tqdm import tqdm

        config, folder = self.config, self.run_folder
        loader = make_loader(self.dataset, config, self.device, self.epoch, self.batch_in_epoch)
        keys = [(0, i) for i in range(min(len(self.dataset), 4))]
        with torch.random.fork_rng(devices=[]):  # the same sample batch at every (re)start
            torch.manual_seed(config.seed)
            self.sample_batch = self.pipe.augment(
                to_device(default_collate([loader.dataset[key] for key in keys]), self.device))
        print(f"{self.name}: {len(self.dataset)} images ({self.steps_per_epoch} steps/epoch), steps {self.step} -> "
              f"{self.total_steps}, {self.device} {self.precision} -> {folder}/", file=sys.stderr)
        # a finished run resumed with nothing left to do has all of these already
        last_logged = last_checkpoint = last_sample = self.step if self.resumed else -1
        self.log = _Log(folder, config.batch_size)
        losses: dict[str, float] = {}
        data = iter(loader)
        with _StopSignal() as stop, tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True,
                                         mininterval=1.0, file=sys.stderr) as self.log.bar:
            while self.step < self.total_steps and stop.name is None:
                losses, epoch_of_step = self._train_one_step(data)
                if self.step % config.log_every == 0 or self.step == self.total_steps:
                    self.log.write(self.step, epoch_of_step, losses)
                    last_logged = self.step
                if self.step % config.sample_every == 0 or self.step == self.total_steps:
                    self.sample()
                    last_sample = self.step
                if self.step % config.checkpoint_every == 0:
                    self.save()
                    last_checkpoint = self.step
            # the end of the run, or a signal: always log, checkpoint and report the last step
            if losses and last_logged != self.step:
                self.log.write(self.step, epoch_of_step, losses)
            if last_sample != self.step:
                self.sample()
            if last_checkpoint != self.step:
                self.save()
        if stop.name is not None:
            raise Interrupted(f"{stop.name}: stopped at step {self.step} of {self.total_steps}; checkpoint saved. "
                              f"Continue with --resume (same --out).", stop.signum)
        print(f"done: {folder.model_path} (step {self.step}); report {folder}/index.html", file=sys.stderr)
        return folder.path

    def _train_one_step(self, data: Any) -> tuple[dict[str, float], int]:
        """Next batch, learning rate, `pipeline.step`, finiteness, EMA, counters; returns the
        losses and the (0-based) epoch the step belonged to."""
        started = time.perf_counter()
        batch = self.pipe.augment(to_device(next(data), self.device))
        loaded = time.perf_counter()
        lr = self.schedule.apply(self.pipe.optimizers, self.step)
        losses = _as_floats(self.pipe.step(batch))
        self.scaler.update()
        bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
        if bad:
            self._diverged(bad, self.step + 1)
        self.step += 1
        epoch_of_step = self.epoch
        self.batch_in_epoch += 1
        if self.ema is not None:
            self.ema.update(self.pipe.inference_networks())
        if self.pipe.monitor in losses:
            self.schedule.observe(losses[self.pipe.monitor])
        if self.batch_in_epoch == self.steps_per_epoch:
            self.schedule.end_epoch()
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        self.log.add(time.perf_counter() - started, loaded - started, lr)
        return losses, epoch_of_step

    def _diverged(self, bad: dict[str, float], step: int) -> None:
        what = ", ".join(f"{k} = {v}" for k, v in bad.items())
        with contextlib.suppress(Exception):
            self.run_folder.write_page()
        raise TrainingDiverged(f"training diverged at step {step} ({what}); stopped, {self.run_folder.last_good()} "
                               "(try a lower --lr, or --precision fp32)")


class _Log:
    """metrics.jsonl lines with the mean step time since the last line, and the progress bar."""

    def __init__(self, folder: RunFolder, batch_size: int) -> None:
        self.folder, self.batch_size, self.bar = folder, batch_size, None
        self.steps, self.seconds, self.data, self.lr = 0, 0.0, 0.0, 0.0

    def add(self, seconds: float, data_seconds: float, lr: float) -> None:
        self.steps, self.seconds, self.data, self.lr = self.steps + 1, self.seconds + seconds, \
            self.data + data_seconds, lr

    def write(self, step: int, epoch: int, losses: dict[str, float]) -> None:
        steps = max(1, self.steps)
        sec = self.seconds / steps
        self.folder.append_metrics({
            "step": step, "epoch": epoch + 1, **{k: round(v, 6) for k, v in losses.items()},
            "lr": self.lr, "sec_per_step": round(sec, 4), "data_sec": round(self.data / steps, 4),
            "images_per_sec": round(self.batch_size / sec, 3) if sec > 0 else None})
        if self.bar is not None:
            self.bar.set_postfix_str(" ".join(f"{k} {v:.3g}" for k, v in losses.items()), refresh=False)
        self.steps, self.seconds, self.data = 0, 0.0, 0.0


def _device_and_precision(config: TrainConfig) -> tuple[torch.device, str]:
    from i2i.device import cpu_has_native_bf16, resolve_device, resolve_precision

    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        print("warning: this CPU has no native bf16; bf16 autocast will be slow (use --precision fp32)",
              file=sys.stderr)
    return device, precision


def _check_sizes(networks: Mapping[str, torch.nn.Module], size: int) -> None:
    """A crop the generators cannot take (a U-Net needs multiples of 2**depth) is one line."""
    for name, net in networks.items():
        multiple = getattr(net, "size_multiple", 1)
        if size % multiple:
            arch = getattr(net, "arch", {}).get("name", name)
            raise UsageError(f"{arch} needs image sizes that are multiples of {multiple}; --image-size {size} "
                             f"is not (use {max(multiple, size // multiple * multiple)})")


def _check_finite_weights(networks: Mapping[str, torch.nn.Module], step: int, folder: RunFolder) -> None:
    """Never checkpoint weights that are NaN or infinite."""
    for name, net in networks.items():
        for key, value in net.state_dict().items():
            if value.is_floating_point() and not torch.isfinite(value).all():
                raise TrainingDiverged(f"training diverged at step {step} ({name}.{key} is not finite); "
                                       f"stopped without saving it, {folder.last_good()}")


def _absolute_paths(config: TrainConfig, options: Any) -> None:
    """Store paths absolute, so config.yaml works for --resume from any folder (a zoo name
    given as --pretrained is not a path and stays as it is)."""
    config.data, config.out = str(Path(config.data).absolute()), str(Path(config.out).absolute())
    for name in ("lr_data", "pretrained", "vgg_weights"):
        value = getattr(options, name, "")
        if value and Path(value).exists():
            setattr(options, name, str(Path(value).absolute()))


def _as_floats(losses: Mapping[str, Any]) -> dict[str, float]:
    """Loss tensors to floats with one device sync."""
    names = list(losses)
    tensors = [torch.as_tensor(losses[k], dtype=torch.float32).detach().reshape(()).cpu() for k in names]
    return dict(zip(names, torch.stack(tensors).tolist())) if names else {}


class _StopSignal:
    """SIGINT / SIGTERM set `name`; the loop finishes its step, checkpoints and returns.
    A second Ctrl-C stops at once (files stay consistent: every write is atomic)."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.signum = 0
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.name, self.signum = signal.Signals(signum).name, signum

    def __enter__(self) -> _StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
