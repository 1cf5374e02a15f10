"""Resuming a run: what a checkpoint holds, which one to load, and how to restore it.

`Trainer` (i2i.training.trainer) calls these when it starts with `--resume` and at every
checkpoint. They live here, as plain functions of the Trainer, so that the trainer reads as
the training loop, and so that what a checkpoint holds is written down in one place:
`capture_state` and `restore_state` mirror each other.

Resuming is exact: networks, optimisers, schedule, GradScaler, EMA, the pipeline's own
state (image pools) and every RNG are restored, and the data order is a pure function of
(seed, epoch, index), so the run goes on as if it had never stopped; for that the data may
move (`--data` elsewhere) but not change: a checkpoint records the dataset's length, and a
resume on data of another length is refused. A checkpoint that does not load (truncated by a
kill, from another run) is skipped with one line, for an older one.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import torch

from i2i.errors import I2IError, UsageError, one_line
from i2i.training import distributed
from i2i.training.distributed import World, print_main
from i2i.training.rng import rng_state, set_rng_state

if TYPE_CHECKING:
    from i2i.training.run_folder import RunFolder
    from i2i.training.trainer import Trainer

#: settings a resumed run may change; they take effect and are reported
RESUMABLE = ("lr", "max_steps", "n_epochs", "n_epochs_decay", "lr_decay_iters", "lr_gamma", "log_every",
             "checkpoint_every", "sample_every", "keep_last", "num_workers", "threads", "device", "precision",
             "channels_last", "deterministic")
#: files and folders a resumed run may find elsewhere (a dataset moved to another disk); reported
MOVABLE = ("out", "data", "lr_data", "pretrained", "vgg_weights")


class OtherData(UsageError):
    """A resume on data of another length than the run's: refused, whichever checkpoint
    (an older one was trained on the same data)."""

    same_on_every_rank = True  # under torchrun, rank 0 alone prints it


def check_changes(folder: RunFolder, settings: Mapping, model_keys: tuple[str, ...],
                  renamed: Mapping[str, str]) -> None:
    """On resume, only RESUMABLE and MOVABLE settings may differ from config.yaml's: a changed
    network (or EMA) would not load, and a changed batch, crop, seed, augmentation or loss would
    silently make the rest of the run another experiment (`renamed`: old setting name -> today's,
    for runs saved before a rename). One line naming each change and its values."""
    from i2i.training.settings import RECORDS

    saved = {renamed.get(key, key): value for key, value in folder.saved_settings().items()}
    changed = [key for key in settings if key in saved and key not in RECORDS and saved[key] != settings[key]]
    model = [key for key in changed if key in (*model_keys, "ema")]
    other = [key for key in changed if key not in (*model, *RESUMABLE, *MOVABLE)]
    for kind, keys in (("a different model", model), ("changed training settings", other)):
        if keys:
            what = ", ".join(f"{key} {saved[key]!r} -> {settings[key]!r}" for key in keys)
            raise UsageError(f"cannot resume {folder.path}/ with {kind} ({what}); a resumed run goes on as it "
                             "started: drop these flags, or start a new run with another --out")


def kept_precision(precision: str, saved: Mapping, device: torch.device, world: World) -> str:
    """For a resumed `auto` run: the precision it chose when it started (config.yaml's
    precision_resolved) rather than what `auto` means here, so a resume on another machine
    does not change the numerics; `precision` where this device cannot run that one."""
    from i2i.device import resolve_precision

    chosen = saved.get("precision_resolved")
    if chosen and chosen != precision:
        try:
            precision = resolve_precision(str(chosen), device)
        except UsageError:
            print_main(world, f"note: this run chose {chosen}, which {device} cannot run; "
                              f"continuing in {precision}")
    return precision


def capture_state(trainer: Trainer) -> dict | None:
    """Everything a resume needs, as tensors and plain Python (read with weights_only=True).
    Under torchrun every rank calls it (each one's image pools and random streams are
    gathered); rank 0 gets the state, the others None."""
    own = {"pipeline_state": trainer.pipe.state_dict(), "rng": rng_state()}
    ranks = distributed.gather_to_main(own, trainer.world)
    if ranks is None:
        return None
    return {
        "pipeline": trainer.name,
        "step": trainer.step, "epoch": trainer.epoch, "batch_in_epoch": trainer.batch_in_epoch,
        "networks": {name: net.state_dict() for name, net in trainer.pipe.networks.items()},
        "optimizers": {name: opt.state_dict() for name, opt in trainer.pipe.optimizers.items()},
        "schedule": trainer.schedule.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "pipeline_state": ranks[0]["pipeline_state"],
        "ema": trainer.ema.state_dict() if trainer.ema is not None else None,
        "rng": ranks[0]["rng"],
        "world_size": trainer.world.size,
        "other_ranks": ranks[1:],
        "dataset_length": len(trainer.dataset),  # what the data order is built on (`check_same_data`)
    }


def restore_state(trainer: Trainer, state: dict) -> None:
    """Restore a checkpoint into `trainer`. Learning rates are this run's (a resume may change
    --lr): the optimiser states keep their moments, the schedule scales the new rate. Under
    torchrun each rank takes its own pools and random streams; a rank the checkpoint did not
    have (more processes than before) starts them afresh."""
    if state.get("pipeline") != trainer.name:
        raise ValueError(f"a checkpoint of {state.get('pipeline')!r}, not {trainer.name}")
    check_same_data(trainer, state)
    for name, net in trainer.pipe.networks.items():
        net.load_state_dict(state["networks"][name])
    for name, opt in trainer.pipe.optimizers.items():
        rates = [group["lr"] for group in opt.param_groups]
        opt.load_state_dict(state["optimizers"][name])
        for group, rate in zip(opt.param_groups, rates):
            group["initial_lr"] = rate
    trainer.schedule.load_state_dict(state["schedule"])
    trainer.scaler.load_state_dict(state["scaler"])
    if trainer.ema is not None:
        trainer.ema.load_state_dict(state["ema"])
    world = trainer.world
    ranks = [{"pipeline_state": state["pipeline_state"], "rng": state["rng"]}, *state.get("other_ranks", [])]
    if world.rank < len(ranks):
        trainer.pipe.load_state_dict(ranks[world.rank]["pipeline_state"])
        set_rng_state(ranks[world.rank]["rng"])
    trainer.step, trainer.epoch, trainer.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
    saved_world = state.get("world_size", 1)
    if saved_world != world.size:  # the same samples seen, in steps of another size
        seen = trainer.batch_in_epoch * trainer.config.batch_size * saved_world
        trainer.batch_in_epoch = -(-seen // (trainer.config.batch_size * world.size))
        print_main(world, f"note: the run had {saved_world} process(es), this one {world.size}: "
                          "the global batch and the data order change from here")


def check_same_data(trainer: Trainer, state: Mapping) -> None:
    """The data a resume trains on has the length the checkpoint's run had, so the data order,
    built on that length, goes on as it was: a `--data` folder that moved is taken (the README
    promises no more), another dataset, or images added or removed, is one line. Checkpoints
    from before the length was recorded hold none, and resume as they did."""
    saved, now = state.get("dataset_length"), len(trainer.dataset)
    if saved is None or saved == now:
        return
    folder = trainer.run_folder
    before = folder.saved_settings().get("data")
    raise OtherData(f"cannot resume {folder.path}/ on {trainer.config.data}: it gives {now} samples per epoch, "
                    f"the run's data{f' ({before})' if before else ''} gave {saved}; a resumed run keeps its data "
                    "and data order, so give the run's data (moved is fine), or start a new run with another --out")


def restore_newest(trainer: Trainer) -> bool:
    """Resume from the newest checkpoint valid for this run (False: none yet); a truncated,
    foreign or malformed newer one is reported on one line and skipped. Under torchrun,
    rank 0 chooses and every rank loads the same one."""
    from i2i.checkpoint import load_training_state

    world, config = trainer.world, trainer.config
    if not world.main:
        chosen = distributed.broadcast_from_main(None, world)
        if chosen is not None:
            trainer.load_state_dict(load_training_state(Path(chosen)))
    else:
        chosen = _choose_checkpoint(trainer)
        distributed.broadcast_from_main(None if chosen is None else str(chosen), world)
    if chosen is None:
        return False
    if config.max_steps and config.max_steps < trainer.step:
        raise UsageError(f"{trainer.run_folder}/ is at step {trainer.step} already; --max-steps "
                         f"{config.max_steps} is behind it (give more steps, or none to train to the end)")
    if trainer.batch_in_epoch >= trainer.steps_per_epoch:  # shrank since (a checkpoint without its length)
        trainer.epoch, trainer.batch_in_epoch = trainer.epoch + 1, 0
    if world.main:
        trainer.run_folder.truncate_metrics(trainer.step)
    return True


def _choose_checkpoint(trainer: Trainer) -> Path | None:
    """Load the newest checkpoint that loads (rank 0); None when there is none yet."""
    from i2i.checkpoint import load_training_state

    folder = trainer.run_folder
    found = folder.checkpoints()
    if not found:  # killed before its first checkpoint: start again, unless a model would be lost
        if folder.model_path.exists():
            raise UsageError(f"{folder.checkpoint_dir}/ holds no checkpoint to resume from, and starting again "
                             f"at step 0 would overwrite {folder.model_path}; train into another --out")
        print(f"note: {folder.path}/ has no checkpoint yet: training starts at step 0", file=sys.stderr)
        folder.metrics_path.unlink(missing_ok=True)
        return None
    for path in reversed(found):
        try:
            trainer.load_state_dict(load_training_state(path))
            return path
        except OtherData:  # an older checkpoint was trained on the same data
            raise
        except I2IError as error:
            print(f"warning: {error}; trying an older checkpoint", file=sys.stderr)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
            print(f"warning: {path}: not a checkpoint of this run ({one_line(error, 200, typed=True)}); "
                  "trying an older checkpoint", file=sys.stderr)
    raise I2IError(f"no usable checkpoint in {folder.checkpoint_dir}/ for this run")


def report_changes(saved: Mapping, now: Mapping) -> None:
    """One line naming the settings this resume changes (`saved`: config.yaml, `now`: this
    run's), so that a changed --lr or --max-steps, a moved dataset, or another torch (its
    kernels: other numerics) is visible."""
    changed = [f"{key} {saved[key]!r} -> {now[key]!r}" for key in (*RESUMABLE, *MOVABLE, "torch_version", "i2i_version")
               if key in saved and key in now and saved[key] != now[key]]
    if changed:
        print(f"resuming with {', '.join(changed)}", file=sys.stderr)
