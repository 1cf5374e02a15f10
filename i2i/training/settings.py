"""Training settings: TrainConfig (common to every pipeline) beside each pipeline's Options.

Settings are flat: config.yaml holds TrainConfig's fields and the pipeline's side by side.
Sources merge in one order (see `make_settings`) and are checked once (`check_config`).
"""
from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from i2i.errors import UsageError, one_line

LR_POLICIES = ("linear", "step", "cosine", "plateau")


@dataclass
class TrainConfig:
    """Settings common to every pipeline (the pipeline's own are in its `Options`)."""

    data: str = ""                      # dataset folder
    out: str = ""                       # run folder
    # length: epochs like the reference, or a number of steps (schedules then span it)
    n_epochs: int = 100                 # epochs at the initial learning rate
    n_epochs_decay: int = 100           # epochs of linear decay to zero
    max_steps: int = 0                  # > 0: train this many steps instead of epochs
    # data
    batch_size: int = 1
    image_size: int = 256               # the crop fed to the networks
    load_size: int = 0                  # resize before cropping; 0: image_size * 286 / 256
    preprocess: str = "resize_and_crop"  # resize_and_crop, crop, scale_width, scale_width_and_crop, none
    no_flip: bool = False
    serial_batches: bool = False        # data in order (unpaired: B paired by index)
    num_workers: int = 2
    # optimisation
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_policy: str = "linear"           # linear, step, cosine, plateau
    lr_decay_iters: int = 50            # `step`: multiply by lr_gamma every this many epochs (steps with max_steps)
    lr_gamma: float = 0.1
    ema: float = 0.0                    # EMA decay of the inference networks' weights; 0: off
    # machine
    device: str = "auto"                # auto, cpu, cuda, cuda:N, mps
    precision: str = "fp32"             # fp32, bf16, fp16 (autocast; GradScaler for fp16)
    seed: int = 0
    deterministic: bool = False         # torch.use_deterministic_algorithms
    threads: int = 0                    # CPU threads for torch; 0: torch's default (one per core)
    # bookkeeping (every N steps)
    checkpoint_every: int = 500
    keep_last: int = 3
    log_every: int = 50
    sample_every: int = 500

    def resolved_load_size(self) -> int:
        return self.load_size or self.image_size * 286 // 256


def make_settings(pipeline: str, values: Mapping[str, Any] | None = None, *,
                  config_file: str | Path | None = None,
                  resume_from: str | Path | None = None) -> tuple[TrainConfig, Any]:
    """The TrainConfig and pipeline Options of a run, from flat settings.

    Later sources win: defaults < the pipeline's `config_defaults` < `resume_from`'s
    config.yaml (a run folder) < `config_file` (YAML) < `values` (e.g. CLI flags). Keys
    must be fields of TrainConfig or of the pipeline's Options; an unknown key is a
    one-line error naming it.
    """
    from i2i.pipelines import get_pipeline

    cls = get_pipeline(pipeline)
    merged: dict[str, Any] = dict(cls.config_defaults)
    if resume_from is not None:
        from i2i.training.run_folder import RunFolder

        merged.update(RunFolder(resume_from).saved_settings(pipeline))
    if config_file is not None:
        from_file = read_yaml(Path(config_file))
        if from_file.get("pipeline", pipeline) != pipeline:
            raise UsageError(f"{config_file} holds {from_file['pipeline']} settings, not {pipeline}")
        merged.update(from_file)
    merged.update(values or {})
    merged.pop("pipeline", None)
    source = f" in {config_file}" if config_file else ""
    return _to_dataclass(TrainConfig, merged, source), _to_dataclass(cls.Options, merged, source, TrainConfig)


def read_yaml(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"{path}: cannot read config file ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise UsageError(f"{path}: not valid YAML ({one_line(error, 200)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a config file must be a mapping of setting: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _to_dataclass(cls: type, merged: dict, source: str, other: type | None = None):
    """Fill dataclass `cls` from `merged`, checking names and types; unknown keys are errors."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    if other is not None:  # the Options pass reports keys that belong to neither
        known = set(names) | {f.name for f in dataclasses.fields(other)}
        unknown = sorted(k for k in merged if k not in known)
        if unknown:
            raise UsageError(f"unknown setting{'s' if len(unknown) > 1 else ''}{source}: {', '.join(unknown)}")
    kwargs = {}
    for key, value in merged.items():
        if key not in names:
            continue
        default = names[key].default
        kwargs[key] = _coerce(key, value, default, source)
    return cls(**kwargs)


def _coerce(key: str, value: Any, default: Any, source: str) -> Any:
    if value is None or default is None:
        return value
    kind = type(default)
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif kind is str and isinstance(value, str):
        return value
    elif kind is float and isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)  # YAML reads "2e-4" as a string
    raise UsageError(f"setting {key}{source} must be a {kind.__name__}, got {value!r}")


def settings_dict(pipeline: str, config: TrainConfig, options: Any) -> dict:
    """What config.yaml holds: the pipeline name and every setting, flat."""
    return {"pipeline": pipeline, **dataclasses.asdict(config), **dataclasses.asdict(options)}


def check_config(config: TrainConfig) -> None:
    if config.batch_size < 1:
        raise UsageError(f"batch size must be >= 1, got {config.batch_size}")
    if config.max_steps < 0:
        raise UsageError(f"max steps must be >= 0, got {config.max_steps}")
    if config.max_steps == 0 and config.n_epochs + config.n_epochs_decay < 1:
        raise UsageError("nothing to train: n_epochs + n_epochs_decay is 0 and no max_steps")
    for name in ("checkpoint_every", "log_every", "sample_every", "keep_last"):
        if getattr(config, name) < 1:
            raise UsageError(f"{name} must be >= 1, got {getattr(config, name)}")
    if not 0 <= config.ema < 1:
        raise UsageError(f"ema must be a decay in [0, 1) (0: off), got {config.ema}")
    check_lr_policy(config.lr_policy)


def check_lr_policy(policy: str) -> None:
    if policy not in LR_POLICIES:
        raise UsageError(f"unknown lr policy {policy!r}; choose one of {', '.join(LR_POLICIES)}")
