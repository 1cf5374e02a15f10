"""The trainer: one training loop for every pipeline.

    config, options = make_settings("cyclegan", {"data": "horse2zebra", "out": "runs/h2z"})
    run = train("cyclegan", config, options)

`Trainer.run` is meant to be read top to bottom: next batch -> `Stepper` (learning rate for
this step -> `pipeline.step(batch)` -> EMA) -> log / sample / checkpoint. A pipeline plugs in
through the protocol of `i2i.pipelines`; the files go through `RunFolder`; under torchrun
the processes meet through `i2i.training.distributed` (rank 0 writes the files).

The step never waits for the device: losses stay tensors until a log line, an epoch's end or
a checkpoint needs them (`_flush`: one sync, and under torchrun one all-reduce, for all the
steps since), where they are checked for NaN and infinity, step by step.

Resuming is exact: a checkpoint holds networks, optimisers, schedule, GradScaler, EMA, the
pipeline's own state (image pools) and every RNG, and the data order is a pure function of
(seed, epoch, index) (`i2i.training.data_order`). So a resumed run sees the same batches,
and on the CPU computes the same losses, as one that never stopped. What a checkpoint holds,
which one a resume loads and how it is restored: `i2i.training.resume`.
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from i2i.errors import I2IError, UsageError, one_line
from i2i.progress import watched
from i2i.training import distributed
from i2i.training.data_order import make_loader, steps_per_epoch, to_device
from i2i.training.distributed import print_main, unwrap
from i2i.training.ema import EMA
from i2i.training.resume import (capture_state, check_changes, kept_precision, report_changes, restore_newest,
                                 restore_state)
from i2i.training.rng import untouched
from i2i.training.run_folder import RunFolder
from i2i.training.schedule import Schedule
from i2i.training.settings import TrainConfig, check_config, make_settings, renamed_settings, settings_dict


class TrainingDiverged(I2IError):
    """A loss became NaN or infinite; the run stops, its last good checkpoint stays."""

    same_on_every_rank = True  # under torchrun, rank 0 alone prints it


class Interrupted(I2IError):
    """SIGINT or SIGTERM stopped the run after its checkpoint; the exit status is the shells'
    128 + signal number (130, 143), so `train && translate` and job schedulers stop too."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


def train(pipeline: str, config: TrainConfig | Mapping[str, Any], options: Any = None, *,
          resume: bool = False) -> Path:
    """Train `pipeline` as `config` and `options` say; returns the run folder.

    `config` may also be a plain mapping of settings, named as the CLI's flags (`max_steps`,
    `data`, `task`, ...), read as `i2i train` reads them (`make_settings`). With `resume`,
    continue the run in `config.out` from its newest checkpoint: same step count, schedule,
    data order and RNG streams; settings that would change the run are refused with one line.
    Like the reference's train.py it seeds the global random generators (torch, numpy,
    random); torch's thread count, deterministic mode and cuDNN autotuning are given back. Ctrl-C
    ends it with `Interrupted` (an I2IError, after a checkpoint), not KeyboardInterrupt.
    """
    if isinstance(config, Mapping):
        if options is not None:
            raise UsageError("give the pipeline's options in the settings mapping, not as `options`")
        out = config.get("out")
        config, options = make_settings(pipeline, config, resume_from=out if resume and out else None)
    with out_of_memory_as_error("--batch-size or --image-size"), _torch_settings_kept():
        return Trainer(pipeline, config, options, resume=resume).run()


@contextlib.contextmanager
def _torch_settings_kept() -> Iterator[None]:
    """torch's thread count, deterministic mode and cuDNN autotuning as the caller had them,
    after training set its own (`threads`, `deterministic`): a notebook goes on as it was."""
    from i2i.device import torch_threads

    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only, benchmark = torch.is_deterministic_algorithms_warn_only_enabled(), torch.backends.cudnn.benchmark
    try:
        with torch_threads():
            yield
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.benchmark = benchmark


class OutOfMemory(I2IError):
    """Training ran out of (CPU or GPU) memory: settings too large for the machine."""


@contextlib.contextmanager
def out_of_memory_as_error(advice: str) -> Iterator[None]:
    """Running out of memory (numpy's MemoryError, torch's allocator errors) becomes a one-line
    OutOfMemory naming what to shrink (`advice`), not a traceback (training, `i2i bench`)."""
    try:
        yield
    except (MemoryError, RuntimeError) as error:
        if not _out_of_memory(error):
            raise
        raise OutOfMemory(f"out of memory ({one_line(error, 120, typed=True)}); try a smaller {advice}") from None


def _out_of_memory(error: Exception) -> bool:
    """Python's MemoryError and torch's: CUDA's OutOfMemoryError, the CPU allocator's RuntimeError."""
    text = str(error).lower()
    return isinstance(error, (MemoryError, torch.OutOfMemoryError)) or "can't allocate memory" in text \
        or "out of memory" in text


class Stepper:
    """A pipeline's training step with what the trainer wraps around it: the learning rate,
    the GradScaler, fused Adam, the memory layout (`i2i.training.layout`), EMA, and the losses
    kept on the device. Nothing about files, data loading or other processes: the Trainer
    drives it, and so does `i2i bench train` on random batches (so the benchmark times the
    trainer's own step).
    """

    def __init__(self, name: str, config: TrainConfig, options: Any, device: torch.device, precision: str,
                 steps_per_epoch: int, total_steps: int, channels_last: bool | None = None) -> None:
        """`channels_last`: the layout a resumed run chose; None resolves `config.channels_last`."""
        from i2i.device import autocast
        from i2i.pipelines import get_pipeline
        from i2i.training.layout import choose_channels_last, example_batch

        self.device, self.precision = device, precision
        if config.threads > 0:
            torch.set_num_threads(config.threads)
        seed_everything(config.seed)
        if config.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = not config.deterministic
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        self.pipe = get_pipeline(name)(options, config, device, scaler=self.scaler,
                                       autocast=lambda: autocast(device, precision),
                                       rank=distributed.from_environment().rank)
        self.pipe.optimizers = {key: fused_adam(opt, device) for key, opt in self.pipe.optimizers.items()}
        _check_sizes(self.pipe.networks, config.image_size)
        asked = config.channels_last if channels_last is None else ("on" if channels_last else "off")
        generator = next(iter(self.pipe.inference_networks().values()))
        self.channels_last = choose_channels_last(asked, self.pipe.networks, generator,
                                                  example_batch(options, config, device)["A"], device, precision)
        self.schedule = Schedule(config, steps_per_epoch, total_steps)
        self.ema = EMA(self.pipe.inference_networks(), config.ema) if config.ema > 0 else None

    def __call__(self, batch: dict, step: int) -> tuple[dict[str, torch.Tensor], float]:
        """Step number `step` (0-based) on a batch already on the device: the losses as
        detached scalar tensors (no device sync) and the learning rate."""
        lr = self.schedule.apply(self.pipe.optimizers, step)
        losses = self.pipe.step(batch)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(unwrap(self.pipe.inference_networks()))
        return losses, lr


class Trainer:
    """One run: its pipeline (through a Stepper), schedule, EMA and counters (step, epoch,
    batch in epoch).

    Construction checks everything and builds everything (data first, so a wrong layout
    fails before any work), restores the newest checkpoint when resuming, and writes
    config.yaml; `run()` trains.
    """

    def __init__(self, pipeline: str, config: TrainConfig, options: Any = None, *, resume: bool = False) -> None:
        from i2i.device import resolve_device
        from i2i.pipelines import get_pipeline

        self.name, self.cls = pipeline, get_pipeline(pipeline)
        self.config = dataclasses.replace(config)  # our copies: channels and stage defaults get filled in
        if options is not None and not isinstance(options, self.cls.Options):
            raise UsageError(f"{pipeline} takes {self.cls.Options.__name__}, not {type(options).__name__}")
        self.options = dataclasses.replace(options) if options is not None else self.cls.Options()
        if not self.config.out:
            raise UsageError("no run folder given (--out RUN)")
        if not self.config.data:
            raise UsageError("no data folder given (--data DIR)")
        self.cls.resolve(self.options, self.config)
        check_config(self.config, self.options)
        _absolute_paths(self.config, self.options)
        self.world, self.resume = distributed.from_environment(), resume
        self.run_folder = RunFolder(self.config.out)
        if self.world.main:  # the others would see the folder rank 0 is filling
            self.run_folder.check_usable(pipeline, resume)
        self.device = distributed.start(self.world, resolve_device(self.config.device))
        try:
            self.precision = _choose_precision(self.config.precision, self.device, self.world,
                                               self.run_folder, resume)
            self.dataset = _build_dataset(self.cls, self.options, self.config, resume)  # a wrong layout fails first
            for note in getattr(self.dataset, "notes", ()):
                print_main(self.world, note)
            if resume:
                check_changes(self.run_folder, self._settings(), self.cls.model_options,
                              renamed_settings(TrainConfig, self.cls.Options))
            if self.world.main:
                self.run_folder.lock()
        except BaseException:
            distributed.finish(self.world)
            raise
        try:
            if self.world.main:
                self.run_folder.check_usable(pipeline, resume)  # again, under the lock
            distributed.barrier(self.world)  # the other ranks start once rank 0 holds the folder
            self._prepare(resume)
        except BaseException:
            self.run_folder.unlock(remove_if_empty=not resume)
            distributed.finish(self.world)
            raise

    def _prepare(self, resume: bool) -> None:
        config, world = self.config, self.world
        self.steps_per_epoch = steps_per_epoch(len(self.dataset), config.batch_size, world.size)
        self.total_steps = config.max_steps or self.steps_per_epoch * (config.n_epochs + config.n_epochs_decay)
        threads = distributed.default_threads(world)
        if config.threads <= 0 and threads:
            torch.set_num_threads(threads)
        self.stepper = Stepper(self.name, config, self.options, self.device, self.precision,
                               self.steps_per_epoch, self.total_steps,
                               _kept_channels_last(config, self.device, world, self.run_folder, resume))
        self.pipe, self.scaler = self.stepper.pipe, self.stepper.scaler
        self.schedule, self.ema = self.stepper.schedule, self.stepper.ema
        _tell_dataset_the_sizes(self.dataset, self.pipe)
        if world.rank:  # the same weights everywhere, then each rank its own random streams
            seed_everything(distributed.seed_of_rank(config.seed, world.rank))
        self.step = self.epoch = self.batch_in_epoch = 0
        self.pending: list[tuple[int, int, tuple[str, ...], torch.Tensor]] = []
        self.losses: dict[str, float] = {}
        self.resumed = resume and restore_newest(self)
        if self.resumed and world.main:
            report_changes(self.run_folder.saved_settings(), self._settings())
        distributed.wrap(self.pipe, world, self.device, config.sync_bn)
        if world.main:
            self.run_folder.create(self._settings())

    def _settings(self) -> dict:
        settings = {**settings_dict(self.name, self.config, self.options), "precision_resolved": self.precision}
        if hasattr(self, "stepper"):  # known once the networks are built (and the threads set)
            settings["channels_last_resolved"] = self.stepper.channels_last
            settings["threads_resolved"] = torch.get_num_threads()
        return {**settings, **_versions()}

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict | None:
        """Everything a resume needs (`resume.capture_state`); under torchrun every rank calls
        it, rank 0 gets the state, the others None."""
        return capture_state(self)

    def load_state_dict(self, state: dict) -> None:
        """Restore a checkpoint (`resume.restore_state`); this run's learning rates stay."""
        restore_state(self, state)

    def save(self) -> None:
        """Full state to checkpoints/step_N.pt, the model to model.safetensors, both atomic
        (under torchrun every rank calls it; rank 0 writes)."""
        _check_finite_weights(self.pipe.networks, self.step, self.run_folder)
        state = self.state_dict()
        if state is None:
            return
        self.run_folder.save_checkpoint(self.step, state, self.config.keep_last)
        self._save_model()

    def _save_model(self) -> None:
        """model.safetensors: the inference networks (the EMA copies when there are some)."""
        nets = self.ema.networks if self.ema is not None else unwrap(self.pipe.inference_networks())
        self.run_folder.save_model(nets, self.pipe.model_spec())

    def sample(self) -> None:
        """Sample grids (every rank computes them, so collectives such as SyncBatchNorm's stay
        in step; rank 0 writes them)."""
        with untouched(self.pipe.networks, self.device):
            columns = self.pipe.sample(self.sample_batch)
        if self.world.main:
            self.run_folder.write_samples(self.step, columns)
            self.run_folder.write_page(self.pipe.sample_columns)

    # ------------------------------------------------------------------ the loop

    def run(self) -> Path:
        """Train to the last step (or a signal); the run folder's lock is released however it
        ends. Under torchrun, a collective broken by another process's end is one line.

        The signal handlers stay until the process group is left: torchrun sends SIGTERM to
        the other ranks when one dies, and a rank that met the broken collective first must
        still print its one line, not die of the signal while tearing gloo down."""
        with _StopSignal() as stop:
            try:
                folder = self._run(stop)
                distributed.barrier(self.world)  # no rank leaves the group while a peer still talks to it
                return folder
            except RuntimeError as error:
                lost = distributed.peer_lost(error, self.world, self.step, self.run_folder.last_good())
                if lost is None:
                    raise
                raise lost from None
            finally:
                self.run_folder.unlock(remove_if_empty=not self.resume)
                distributed.finish(self.world)

    def _run(self, stop: _StopSignal) -> Path:
        from torch.utils.data import default_collate
        from tqdm import tqdm

        config, folder, world = self.config, self.run_folder, self.world
        loader = make_loader(self.dataset, config, self.device, self.epoch, self.batch_in_epoch,
                             world.rank, world.size)
        keys = [(0, i) for i in range(min(len(self.dataset), 4))]
        with torch.random.fork_rng(devices=[]):  # the same sample batch at every (re)start
            torch.manual_seed(config.seed)
            items = [loader.dataset[key] for key in keys]
            items = [item for item in items if _sizes(item) == _sizes(items[0])]  # --preprocess none: any size
            self.sample_batch = self.pipe.augment(to_device(default_collate(items), self.device))
        print_main(world, _start_line(self))
        if self.resumed and world.main:  # a kill between a checkpoint and its model left an older model
            self._save_model()
        # a finished run resumed with nothing left to do has all of these already
        last_logged = last_checkpoint = last_sample = self.step if self.resumed else -1
        self.log = _Log(folder, config.batch_size * world.size)
        epoch_of_step = self.epoch
        data = iter(loader)
        with tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True, mininterval=1.0,
                  file=sys.stderr, disable=not world.main or not watched()) as self.log.bar:  # a log: lines
            stopped = False
            while self.step < self.total_steps:
                stopped = distributed.any_rank(stop.name is not None, world)
                if stopped:
                    break
                epoch_of_step = self._train_one_step(data)
                self.log.bar.update(1)
                if self.step % config.log_every == 0 or self.step == self.total_steps:
                    self._log_line(epoch_of_step)
                    last_logged = self.step
                if self.step % config.sample_every == 0 or self.step == self.total_steps:
                    self.sample()
                    last_sample = self.step
                if self.step % config.checkpoint_every == 0:
                    self._flush()  # never checkpoint after a NaN
                    self.save()
                    last_checkpoint = self.step
            # the end of the run, or a signal: always log, checkpoint and report the last step
            if last_logged != self.step and (self.pending or self.losses):
                self._log_line(epoch_of_step)
            if last_sample != self.step:
                self.sample()
            if last_checkpoint != self.step:
                self._flush()
                self.save()
        if stopped:
            name = stop.name or "a signal to another process"
            raise Interrupted(f"{name}: stopped at step {self.step} of {self.total_steps}; checkpoint saved. "
                              f"Continue with --resume (same --out).", stop.signum or signal.SIGTERM)
        print_main(world, f"done: {folder.model_path} (step {self.step}); report {folder}/index.html")
        return folder.path

    def _train_one_step(self, data: Any) -> int:
        """Next batch, the Stepper, counters; returns the (0-based) epoch the step belonged to.
        The losses wait on the device (`pending`) until `_flush`."""
        started = time.perf_counter()
        batch = self.pipe.augment(to_device(_next_batch(data, self.config), self.device))
        loaded = time.perf_counter()
        losses, lr = self.stepper(batch, self.step)
        self.step += 1
        epoch_of_step = self.epoch
        self.batch_in_epoch += 1
        names = tuple(losses)
        values = torch.stack([torch.as_tensor(v, dtype=torch.float32, device=self.device).detach().reshape(())
                              for v in losses.values()]) if names else torch.zeros(0, device=self.device)
        self.pending.append((self.step, epoch_of_step, names, values))
        self.log.add(time.perf_counter() - started, loaded - started, lr)
        if self.batch_in_epoch == self.steps_per_epoch:
            if self.schedule.policy == "plateau":
                self._flush()  # the epoch's losses, observed before its end
            self.schedule.end_epoch()
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        return epoch_of_step

    def _flush(self) -> dict[str, float]:
        """The pending steps' losses as floats (averaged over the ranks under torchrun), with
        one device sync for all of them: each step's checked for NaN and infinity in order,
        the monitored one observed by the schedule. Returns the last step's."""
        if not self.pending:
            return self.losses
        started = time.perf_counter()
        pending, self.pending = self.pending, []
        if all(names == pending[0][2] for _, _, names, _ in pending):
            rows = distributed.mean_over_ranks(torch.stack([v for *_, v in pending]), self.world).tolist()
        else:  # a pipeline whose loss names change from step to step
            rows = [distributed.mean_over_ranks(v, self.world).tolist() for *_, v in pending]
        for (step, _, names, _), row in zip(pending, rows):
            losses = dict(zip(names, row))
            bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
            if bad:
                _diverged(bad, step, self.run_folder, self.world)
            if self.pipe.monitor in losses:
                self.schedule.observe(losses[self.pipe.monitor])
            self.losses = losses
        self.log.add_wait(time.perf_counter() - started)
        return self.losses

    def _log_line(self, epoch_of_step: int) -> None:
        losses = self._flush()
        if self.world.main:
            self.log.write(self.step, epoch_of_step, losses)
        else:
            self.log.reset()


class _Log:
    """metrics.jsonl lines with the mean step time since the last line, and the progress bar."""

    def __init__(self, folder: RunFolder, batch_size: int) -> None:
        self.folder, self.batch_size, self.bar = folder, batch_size, None
        self.steps, self.seconds, self.data, self.lr = 0, 0.0, 0.0, 0.0

    def add(self, seconds: float, data_seconds: float, lr: float) -> None:
        self.steps, self.seconds, self.data, self.lr = self.steps + 1, self.seconds + seconds, \
            self.data + data_seconds, lr

    def add_wait(self, seconds: float) -> None:
        """Time spent waiting for the device at a flush: the queued steps' compute."""
        self.seconds += seconds

    def reset(self) -> None:
        self.steps, self.seconds, self.data = 0, 0.0, 0.0

    def write(self, step: int, epoch: int, losses: dict[str, float]) -> None:
        steps = max(1, self.steps)
        sec = self.seconds / steps
        self.folder.append_metrics({
            "step": step, "epoch": epoch + 1, **{k: round(v, 6) for k, v in losses.items()},
            "lr": self.lr, "sec_per_step": round(sec, 4), "data_sec": round(self.data / steps, 4),
            "images_per_sec": round(self.batch_size / sec, 3) if sec > 0 else None})
        shown = " ".join(f"{k} {v:.3g}" for k, v in losses.items())
        if self.bar is not None and not self.bar.disable:
            self.bar.set_postfix_str(shown, refresh=False)
        elif self.bar is not None:  # stderr is a log or a pipe (SLURM, nohup): a whole line per log step
            sys.stderr.write(f"step {step}/{self.bar.total} {shown} ({sec:.3g} s/step)\n")
            sys.stderr.flush()
        self.reset()


def _versions() -> dict[str, str]:
    """What config.yaml records of the software: another torch (its kernels) or i2i (its
    defaults) can change a run's numerics."""
    from i2i import __version__

    return {"torch_version": str(torch.__version__), "i2i_version": __version__}


def seed_everything(seed: int) -> None:
    """Python's, numpy's and torch's generators from one seed."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fused_adam(optimizer: torch.optim.Optimizer, device: torch.device) -> torch.optim.Optimizer:
    """The same Adam with its fused kernel (one pass over all parameters instead of a Python
    loop over tensors: 4x faster on the CPU, benchmarks/README.md); other optimisers and
    devices as they are. Called before any step, so there is no state to carry over."""
    if type(optimizer) is not torch.optim.Adam or device.type not in ("cpu", "cuda") or optimizer.state:
        return optimizer
    if optimizer.defaults.get("differentiable") or optimizer.defaults.get("fused"):
        return optimizer
    settings = {k: v for k, v in optimizer.defaults.items() if k not in ("foreach", "fused")}
    groups = [{k: v for k, v in group.items() if k not in ("foreach", "fused")} for group in optimizer.param_groups]
    return torch.optim.Adam(groups, **settings, fused=True)


def _choose_precision(requested: str, device: torch.device, world: distributed.World, folder: RunFolder,
                      resume: bool) -> str:
    """The precision of this run: `auto` resolved for this hardware (`i2i.device`), except
    that a resumed `auto` run keeps what it chose when it started (`resume.kept_precision`)."""
    from i2i.device import cpu_has_native_bf16, resolve_precision

    precision = resolve_precision(requested, device)
    if resume and requested == "auto":
        precision = kept_precision(precision, folder.saved_settings(), device, world)
    if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        print_main(world, "warning: this CPU has no native bf16; bf16 autocast will be slow "
                          "(use --precision fp32)")
    return precision


def _sizes(item: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in item.items() if isinstance(value, torch.Tensor)}


def _next_batch(data: Any, config: TrainConfig) -> Any:
    """The loader's next batch; images of different sizes in one batch (`--preprocess none` or
    `scale_width` keep each image's size) are one line, not the collate's traceback."""
    try:
        return next(data)
    except RuntimeError as error:
        if "stack expects each tensor to be equal size" not in str(error):
            raise
        raise UsageError(f"--preprocess {config.preprocess} keeps each image's size, and one batch of "
                         f"{config.batch_size} got images of different sizes; use --batch-size 1 (as the "
                         "reference does with it) or a cropping --preprocess") from None


def _start_line(trainer: Trainer) -> str:
    """What a run says when it starts: data, steps, and how it computes."""
    config, world = trainer.config, trainer.world
    processes = f", {world.size} processes" if world.distributed else ""
    repeat = getattr(trainer.dataset, "repeat", 1)  # srgan: a small folder visited several times an epoch
    images = (f"{len(trainer.dataset) // repeat} images x {repeat} per epoch" if repeat > 1
              else f"{len(trainer.dataset)} images")
    return (f"{trainer.name}: {images} ({trainer.steps_per_epoch} steps/epoch), steps "
            f"{trainer.step} -> {trainer.total_steps}, {trainer.device} {trainer.precision}"
            f"{' (precision auto)' if config.precision == 'auto' else ''}"
            f"{', channels_last' if trainer.stepper.channels_last else ''}, "
            f"{torch.get_num_threads()} threads{processes} -> {trainer.run_folder}/")


def _kept_channels_last(config: TrainConfig, device: torch.device, world: distributed.World, folder: RunFolder,
                        resume: bool) -> bool | None:
    """The layout `auto` stands for without measuring: what a resumed run chose when it started;
    contiguous for several CPU processes (each would measure, and might choose, on its own).
    None: let the Stepper resolve `config.channels_last`."""
    if config.channels_last != "auto":
        return None
    if resume:  # runs from before this setting trained contiguous
        chosen = folder.saved_settings().get("channels_last_resolved", False)
        if isinstance(chosen, bool):
            return chosen
    if world.distributed and device.type == "cpu":
        return False
    return None


def _build_dataset(cls: Any, options: Any, config: TrainConfig, resume: bool) -> Any:
    """The pipeline's dataset; the settings are final after this (channels from the data). A new
    run folder where the dataset lists images is refused before anything is written."""
    from i2i.data.datasets import lists_path

    dataset = cls.build_dataset(options, config)
    if len(dataset) == 0:
        raise UsageError(f"{config.data}/ has no training images")
    if not resume and (folder := lists_path(getattr(dataset, "roots", []), config.out)):
        raise UsageError(f"{config.out}/ is inside {folder}/, which training reads images from: its sample "
                         "grids would be read as training images; choose an --out outside it")
    for side in ("in_channels", "out_channels"):
        if hasattr(options, side) and not getattr(options, side):
            setattr(options, side, getattr(dataset, side))
    return dataset


def _diverged(bad: dict[str, float], step: int, folder: RunFolder, world: distributed.World) -> None:
    what = ", ".join(f"{k} = {v}" for k, v in bad.items())
    if world.main:
        with contextlib.suppress(Exception):
            folder.write_page()
    raise TrainingDiverged(f"training diverged at step {step} ({what}); stopped, {folder.last_good()} "
                           "(try a lower --lr, or --precision fp32)")


def _check_sizes(networks: Mapping[str, torch.nn.Module], size: int) -> None:
    """A crop a network cannot take (a U-Net needs multiples of 2**depth, a PatchGAN of n
    layers at least 3 * 2**n pixels) is one line."""
    for name, net in networks.items():
        multiple, smallest = getattr(net, "size_multiple", 1), getattr(net, "min_size", 1)
        arch = getattr(net, "arch", {}).get("name", name)
        if size % multiple:
            raise UsageError(f"{arch} needs image sizes that are multiples of {multiple}; --image-size {size} "
                             f"is not (use {max(multiple, size // multiple * multiple)})")
        if size < smallest:
            raise UsageError(f"{arch} ({name}) needs crops of at least {smallest} pixels; --image-size {size} "
                             f"is smaller (use {smallest} or more)")


def _tell_dataset_the_sizes(dataset: Any, pipe: Any) -> None:
    """What the networks need of an image: the generators' size multiple (a U-Net's 2**depth)
    and the discriminators' smallest side (a PatchGAN's); the dataset skips, with one line,
    an image that `--preprocess none` or `scale_width` passes through at a size they cannot take."""
    generators = pipe.inference_networks().values()
    dataset.size_multiple = max(getattr(net, "size_multiple", 1) for net in generators)
    dataset.min_size = max(getattr(net, "min_size", 1) for net in pipe.networks.values())


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


class _StopSignal:
    """SIGINT / SIGTERM set `name`; the loop finishes its step, checkpoints and returns.
    An impatient second Ctrl-C (the step and the checkpoint can take seconds) only says so: the
    third stops at once, without that checkpoint (files stay consistent: every write is atomic)."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.signum = 0
        self.more_ctrl_c = 0
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.name is not None and signum == signal.SIGINT:
            self.more_ctrl_c += 1
            if self.more_ctrl_c > 1:
                raise KeyboardInterrupt
            print("\nstopping: finishing this step and writing its checkpoint; Ctrl-C once more quits "
                  "without it", file=sys.stderr, flush=True)
            return
        self.name, self.signum = signal.Signals(signum).name, signum

    def __enter__(self) -> _StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
            if getattr(self._old[signal.SIGINT], "seen", False):  # the CLI's handler saw a Ctrl-C that
                self.name, self.signum = "SIGINT", signal.SIGINT  # an import caught: stop all the same
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
