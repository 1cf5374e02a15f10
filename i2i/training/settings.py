"""Training settings: TrainConfig (common to every pipeline) beside each pipeline's Options.

Settings are flat: config.yaml holds TrainConfig's fields and the pipeline's side by side.
Sources merge in one order (see `make_settings`) and are checked once (`check_config`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from i2i.data.augment import AUGMENT, PREPROCESS
from i2i.device import PRECISIONS
from i2i.errors import UsageError, did_you_mean
from i2i.options import check_ranges, setting
from i2i.settings_file import read_yaml, underscored
from i2i.training import distributed
from i2i.training.run_folder import RunFolder

LR_POLICIES = ("linear", "step", "cosine", "plateau")
CHANNELS_LAST = ("auto", "on", "off")  # i2i.training.layout
#: keys config.yaml holds beside the settings: records of the run, ignored when settings are read
#: (the thread count and the versions change a run's numerics too: written down, not settings)
RECORDS = ("pipeline", "precision_resolved", "channels_last_resolved", "threads_resolved", "torch_version",
           "i2i_version")


@dataclass
class TrainConfig:
    """Settings common to every pipeline (the pipeline's own are in its `Options`)."""

    data: str = setting("", "Dataset folder (the layouts are in the README).", path="dir")
    out: str = setting("", "Run folder (must be new or empty unless --resume).", path="dir", required=True)
    # length: epochs like the reference, or a number of steps (schedules then span it)
    n_epochs: int = setting(100, "Epochs at the initial learning rate (--lr-policy linear); the run is "
                            "--n-epochs + --n-epochs-decay long.", at_least=0)
    n_epochs_decay: int = setting(100, "Epochs after --n-epochs: linear decays the rate to zero over them; cosine "
                                  "decays it over the whole run.", at_least=0)
    max_steps: int = setting(0, "Train this many steps instead of epochs; schedules span them.", shown="0: epochs",
                             at_least=0)
    # data
    batch_size: int = setting(1, "Images per step.", at_least=1)
    image_size: int = setting(256, "Crop size fed to the networks.", at_least=1)
    load_size: int = setting(0, "Resize before cropping.", shown="image size * 286/256", at_least=0)
    preprocess: str = setting("resize_and_crop", "How images become crops (the reference's modes).",
                              choices=PREPROCESS)
    no_flip: bool = setting(False, "No random flips or rotations (the same as --augment none).")
    augment: str = setting("flip", "Random geometry on the device, per sample: flip (horizontal, the reference's), "
                           "dihedral (all 8 flips and rotations), none.", choices=tuple(AUGMENT))
    diffaug: str = setting("", "DiffAugment (Zhao et al. 2020) on everything the discriminators see, real and fake: "
                           "a comma list of color, translation, cutout (the paper's: color,translation,cutout).",
                           shown="off")
    serial_batches: bool = setting(False, "Images in order, not shuffled (unpaired: B paired by index).")
    num_workers: int = setting(2, "Data loading processes.", at_least=0)
    # optimisation
    lr: float = setting(2e-4, "Adam learning rate.", above=0)
    beta1: float = setting(0.5, "Adam beta1.", at_least=0, below=1)
    beta2: float = setting(0.999, "Adam beta2.", at_least=0, below=1)
    lr_policy: str = setting("linear", "Learning-rate schedule (linear: constant, then decay to zero).",
                             choices=LR_POLICIES)
    lr_decay_iters: int = setting(50, "step policy: multiply by --lr-gamma every N epochs (steps with --max-steps).",
                                 at_least=1)
    lr_gamma: float = setting(0.1, "step policy: the factor.", above=0)
    ema: float = setting(0.0, "EMA decay of the generator weights for the model file, e.g. 0.999.", shown="0: off",
                         at_least=0, below=1)
    # machine
    device: str = setting("auto", "auto, cpu, cuda, cuda:N or mps.")
    precision: str = setting("auto", "Autocast precision. auto: bf16 on CPUs with native bf16 (AVX-512 BF16, AMX) "
                             "and on GPUs that have it, fp16 on other GPUs, else fp32; a run keeps what it chose "
                             "(config.yaml: precision_resolved).", choices=("auto", *PRECISIONS))
    channels_last: str = setting("auto", "Memory layout of the networks' weights. auto: channels_last on GPUs "
                                 "in half precision; on a CPU the faster of the two for the generator, timed "
                                 "before training; a run keeps what it chose (config.yaml: channels_last_resolved).",
                                 choices=CHANNELS_LAST)
    sync_bn: bool = setting(False, "Under torchrun: BatchNorm statistics over every process's batch (GPUs only).")
    seed: int = setting(0, "Seed of weights, data order and augmentation.")
    deterministic: bool = setting(False, "Deterministic algorithms (slower).")
    threads: int = setting(0, "CPU threads for torch; 1 can be much faster on a busy machine.",
                           shown="0: one per core", at_least=0)
    # bookkeeping (every N steps)
    checkpoint_every: int = setting(500, "Checkpoint and model file every N steps.", at_least=1)
    keep_last: int = setting(3, "Checkpoints kept.", at_least=1)
    log_every: int = setting(50, "metrics.jsonl line every N steps.", at_least=1)
    sample_every: int = setting(500, "Sample grid every N steps.", at_least=1)

    def resolved_load_size(self) -> int:
        return self.load_size or self.image_size * 286 // 256


def make_settings(pipeline: str, values: Mapping[str, Any] | None = None, *,
                  config_file: str | Path | None = None,
                  resume_from: str | Path | None = None) -> tuple[TrainConfig, Any]:
    """The TrainConfig and pipeline Options of a run, from flat settings.

    Later sources win: defaults < the pipeline's `config_defaults` < `resume_from`'s
    config.yaml (a run folder) < `config_file` (YAML) < `values` (e.g. CLI flags). Keys
    must be fields of TrainConfig or of the pipeline's Options, `max_steps` or `max-steps` (as
    the flag is spelt, in a file and a mapping alike: `underscored`); an unknown key is a
    one-line error naming it and the setting it may mean. A setting the pipeline, as set, does
    not use (srgan's --load-size, or --gan at --stage psnr) is one line too, when this call's
    file or values set it to something else than its default (`_refuse_unused`); a resumed
    run's config.yaml, which lists every setting, never is. A setting's old name (its field's
    `old_names`: srgan's `d_width`, now `ndf`) is read as today's, so old runs still resume;
    today's name wins in one source.
    """
    from i2i.pipelines import get_pipeline

    cls = get_pipeline(pipeline)
    renamed = renamed_settings(TrainConfig, cls.Options)
    merged: dict[str, Any] = dict(cls.config_defaults)
    source: dict[str, str] = {}  # where a value came from, for the error that names it
    given: set[str] = set()  # set by this call's file or values, not by defaults or the resumed run

    def take(values: Mapping[str, Any], where: str, by_user: bool = True) -> None:
        values = _current_names(underscored(values), renamed)  # files: read_yaml did it, naming the file
        merged.update(values)
        source.update(dict.fromkeys(values, where))
        given.update(values if by_user else ())

    if resume_from is not None:
        folder = RunFolder(resume_from)
        take(folder.saved_settings(pipeline), f" in {folder.config_path}", by_user=False)
    if config_file is not None:
        from_file = read_yaml(Path(config_file))
        if from_file.get("pipeline", pipeline) != pipeline:
            raise UsageError(f"{config_file} holds {from_file['pipeline']} settings, not {pipeline}")
        take(from_file, f" in {config_file}")
        if not resume_from:  # a resumed run keeps what it chose
            _note_recorded_choices(config_file, from_file, _current_names(underscored(values or {}), renamed))
    take(values or {}, "")
    for record in RECORDS:  # what a run wrote down about itself, not a setting
        merged.pop(record, None)
    if {"no_flip", "augment"} <= given and merged["no_flip"] and merged["augment"] != "none":
        raise UsageError(f"--no-flip turns augmentation off, but --augment {merged['augment']} asks for it; give one")
    _refuse_foreign_names(pipeline, merged, source, renamed)
    config = _to_dataclass(TrainConfig, merged, source)
    options = _to_dataclass(cls.Options, merged, source, TrainConfig)
    _refuse_unused(cls, config, options, given, source)
    cls.check_given(options, {name: source.get(name, "") for name in given})
    return config, options


def _refuse_foreign_names(pipeline: str, merged: Mapping[str, Any], source: Mapping[str, str],
                          renamed: Mapping[str, str]) -> None:
    """A BasicSR options key in srgan's settings (gt_size, total_iter, a nested datasets: block
    from a BasicSR YAML) is one line naming i2i's setting, not Click's look-alikes of it
    (gt_size: batch_size?, use_hflip: no_flip?, the opposite)."""
    from i2i.pipelines import get_pipeline
    from i2i.reference_options import basicsr_setting_hint

    known = {f.name for cls in (TrainConfig, get_pipeline(pipeline).Options) for f in dataclasses.fields(cls)}
    same: dict[str, list[str]] = {}  # what the hint says -> the keys it says it of (a file's blocks: once)
    for key in (str(key) for key in merged if key not in known and key not in renamed):
        if hint := basicsr_setting_hint(key, f"train {pipeline}"):
            same.setdefault(hint.removeprefix(f"BasicSR's {key} "), []).append(key)
    if same:
        where = source.get(next(iter(same.values()))[0], "")
        hints = [f"BasicSR's {', '.join(keys)} {_plural(says) if len(keys) > 1 else says}" for says, keys in same.items()]
        count = sum(len(keys) for keys in same.values())
        raise UsageError(f"unknown setting{'s' if count > 1 else ''}{where}: {'; '.join(hints)}")


def _plural(says: str) -> str:
    """A hint's verb for several keys: "has no equivalent" -> "have ...", "is image_size" -> "are ..."."""
    for one, many in (("has ", "have "), ("is ", "are ")):
        if says.startswith(one):
            return many + says[len(one):]
    return says


def _note_recorded_choices(path: str | Path, saved: Mapping[str, Any], flags: Mapping[str, Any]) -> None:
    """A copied config.yaml (`--config runs/x/config.yaml`) says `auto` for the precision and the
    layout (and 0, one per core, for the threads), which this run resolves again (another
    machine, a layout timing that comes out the other way: other numerics); one line names what
    runs/x resolved, so a re-run that differs is not silent, and the flags that compute as it did."""
    chosen = {}
    if saved.get("precision") == "auto" and "precision" not in flags and saved.get("precision_resolved"):
        chosen["precision"] = saved["precision_resolved"]
    layout = saved.get("channels_last_resolved")
    if saved.get("channels_last") == "auto" and "channels_last" not in flags and isinstance(layout, bool):
        chosen["channels-last"] = "on" if layout else "off"
    if not saved.get("threads") and "threads" not in flags and saved.get("threads_resolved"):  # 0: one per core
        chosen["threads"] = saved["threads_resolved"]
    if chosen and distributed.from_environment().main:  # once, not once per torchrun process
        print(f"note: {path} records what its run's auto resolved to; this run resolves auto again, which may "
              f"differ: {' '.join(f'--{key} {value}' for key, value in chosen.items())} computes as it did",
              file=sys.stderr)


def _refuse_unused(cls: type, config: TrainConfig, options: Any, given: set[str], source: Mapping[str, str]) -> None:
    """One line for a setting the user gave (`given`: flags, --config, a Python mapping) that
    the pipeline, as set, does not use (`Pipeline.unused_settings`), rather than a value that
    config.yaml records and training ignores. A value equal to the default asks for nothing,
    so a copied config.yaml, which lists every setting, still reads."""
    defaults = {f.name: f.default for f in (*dataclasses.fields(TrainConfig), *dataclasses.fields(cls.Options))}
    defaults.update(cls.config_defaults)
    for name, why in cls.unused_settings(options, config).items():
        value = getattr(options, name) if hasattr(options, name) else getattr(config, name)
        if name in given and value != defaults[name]:
            raise UsageError(f"--{name.replace('_', '-')} {value}{source.get(name, '')} {why}")


def renamed_settings(*classes: type) -> dict[str, str]:
    """Old setting name -> today's, from the fields' `old_names`."""
    return {old: f.name for cls in classes for f in dataclasses.fields(cls) for old in f.metadata.get("old_names", ())}


def _current_names(source: Mapping[str, Any], renamed: Mapping[str, str]) -> dict[str, Any]:
    out = dict(source)
    for old in [key for key in out if key in renamed]:
        out.setdefault(renamed[old], out.pop(old))
    return out


def _to_dataclass(cls: type, merged: dict, source: Mapping[str, str], other: type | None = None):
    """Fill dataclass `cls` from `merged`, checking names and types; unknown keys are errors
    (`source`: key -> " in FILE" where it came from a file)."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    if other is not None:  # the Options pass reports keys that belong to neither
        known = set(names) | {f.name for f in dataclasses.fields(other)}
        unknown = sorted(k for k in merged if k not in known)
        if unknown:
            raise UsageError(f"unknown setting{'s' if len(unknown) > 1 else ''}{source.get(unknown[0], '')}: "
                             f"{', '.join(_with_suggestion(key, known) for key in unknown)}")
    kwargs = {}
    for key, value in merged.items():
        if key not in names:
            continue
        default = names[key].default
        kwargs[key] = _coerce(key, value, default, source.get(key, ""))
    return cls(**kwargs)


def _with_suggestion(key: str, known: set[str]) -> str:
    """`key`, and the settings it may be a typo of: "max_step (did you mean max_steps?)"."""
    hint = did_you_mean(key, sorted(known))
    return f"{key} ({hint})" if hint else key


def _coerce(key: str, value: Any, default: Any, source: str) -> Any:
    if default is None:
        return value
    kind = type(default)
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif kind is str and isinstance(value, (str, os.PathLike)):
        return os.fspath(value)  # a pathlib.Path for `data` or `out`, from Python
    elif kind is float and isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)  # YAML reads "2e-4" as a string
    raise UsageError(f"setting {key}{source} must be a {kind.__name__}, got {value!r}")


def settings_dict(pipeline: str, config: TrainConfig, options: Any) -> dict:
    """What config.yaml holds: the pipeline name and every setting, flat."""
    return {"pipeline": pipeline, **dataclasses.asdict(config), **dataclasses.asdict(options)}


def check_config(config: TrainConfig, options: Any = None) -> None:
    """One line for a setting no run can use: out of its range, or nothing to train."""
    check_ranges(config)
    if options is not None:
        check_ranges(options)
    if config.max_steps == 0 and config.n_epochs + config.n_epochs_decay < 1:
        raise UsageError("nothing to train: --n-epochs + --n-epochs-decay is 0 and no --max-steps")
    from i2i.data.diffaugment import parse_policy

    parse_policy(config.diffaug)
    if 0 < config.load_size < config.image_size and config.preprocess in ("resize_and_crop", "scale_width_and_crop"):
        raise UsageError(f"--load-size {config.load_size} is smaller than --image-size {config.image_size}: every "
                         "crop would be padded with a mirror image; give a --load-size of at least the image size")
    if config.lr_policy not in LR_POLICIES:
        raise UsageError(f"unknown lr policy {config.lr_policy!r}; choose one of {', '.join(LR_POLICIES)}")
