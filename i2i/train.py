"""The trainer: one training loop for every pipeline.

    config, options = make_settings("cyclegan", {"data": "horse2zebra", "out": "runs/h2z"})
    run = train("cyclegan", config, options)

The loop (`train`) is meant to be read top to bottom: build the pipeline (its networks,
optimisers, one `step`), then repeat: next batch -> learning rate for this step ->
`pipeline.step(batch)` -> check the losses are finite -> EMA -> log / sample / checkpoint.
A pipeline plugs in through the protocol of `i2i.pipelines`.

A run folder holds everything:

    RUN/config.yaml            every setting (TrainConfig + the pipeline's options, flat)
    RUN/model.safetensors      the inference model, rewritten at every checkpoint
    RUN/checkpoints/step_N.pt  full training state (the last `keep_last`)
    RUN/metrics.jsonl          one JSON object per logged step
    RUN/samples/step_N.png     sample grids
    RUN/index.html             sample grids over time and loss curves

Resuming is exact: a checkpoint holds networks, optimisers, schedule, GradScaler, EMA, the
pipeline's own state (image pools) and every RNG, and the data order is a pure function
of (seed, epoch): epoch e is a permutation seeded by (seed, e), and each sample's random
crop / flip / pairing is seeded by (seed, epoch, index). So a resumed run sees the same
batches, and on the CPU computes the same losses, as one that never stopped.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import random
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from i2i.atomic import write_text
from i2i.errors import I2IError, UsageError, one_line

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


# ----------------------------------------------------------------------------- settings


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
        merged.update(load_run_config(resume_from, pipeline))
    if config_file is not None:
        from_file = _read_yaml(Path(config_file))
        if from_file.get("pipeline", pipeline) != pipeline:
            raise UsageError(f"{config_file} holds {from_file['pipeline']} settings, not {pipeline}")
        merged.update(from_file)
    merged.update(values or {})
    merged.pop("pipeline", None)
    source = f" in {config_file}" if config_file else ""
    return _to_dataclass(TrainConfig, merged, source), _to_dataclass(cls.Options, merged, source, TrainConfig)


def _read_yaml(path: Path) -> dict:
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


def load_run_config(run: str | Path, pipeline: str | None = None) -> dict:
    """A run folder's config.yaml as a flat dict (with its `pipeline`); with `pipeline`, a
    run of another pipeline is refused (one line)."""
    path = Path(run) / "config.yaml"
    if not path.is_file():
        raise UsageError(f"{run}/ is not a run folder (no config.yaml): nothing to resume")
    saved = _read_yaml(path)
    if pipeline is not None and saved.get("pipeline") != pipeline:
        raise UsageError(f"{run}/ is a {saved.get('pipeline')} run, not {pipeline}; cannot resume it as {pipeline}")
    return saved


def settings_dict(pipeline: str, config: TrainConfig, options: Any) -> dict:
    """What config.yaml holds: the pipeline name and every setting, flat."""
    return {"pipeline": pipeline, **dataclasses.asdict(config), **dataclasses.asdict(options)}


# ----------------------------------------------------------------------------- schedule


class Schedule:
    """The learning-rate factor of every optimiser, as a function of the step.

    The unit is an epoch (the reference), or one step when `max_steps` is set; then the
    run's length is split between "constant" and "decay" in the ratio n_epochs : n_epochs_decay.

    - linear: the reference's lambda rule, 1 - max(0, u + 1 - n_epochs) / (n_epochs_decay + 1)
      for unit u (0-based): n_epochs units at full rate, then linear decay towards 0.
    - step: lr_gamma ** (u // lr_decay_iters).
    - cosine: half a cosine from 1 to 0 over the whole run (the reference's T_max=n_epochs
      restarts upwards halfway through a default run; this one does not).
    - plateau: x0.2 when the epoch mean of the pipeline's `monitor` loss has not improved
      by 1% for 5 epochs (the reference's settings; its version is never fed a metric).
    """

    def __init__(self, config: TrainConfig, steps_per_epoch: int, total_steps: int) -> None:
        _check_lr_policy(config.lr_policy)
        self.policy = config.lr_policy
        self.gamma = config.lr_gamma
        self.decay_every = max(1, config.lr_decay_iters)
        if config.max_steps > 0:
            self.unit = 1
            epochs = max(1, config.n_epochs + config.n_epochs_decay)
            self.n_constant = round(total_steps * config.n_epochs / epochs)
            self.n_decay = total_steps - self.n_constant
        else:
            self.unit = steps_per_epoch
            self.n_constant, self.n_decay = config.n_epochs, config.n_epochs_decay
        # plateau state, saved in checkpoints
        self.plateau_factor, self.best, self.bad_epochs = 1.0, math.inf, 0
        self.epoch_sum, self.epoch_count = 0.0, 0

    def factor(self, step: int) -> float:
        u = step // self.unit
        if self.policy == "linear":
            return 1.0 - max(0, u + 1 - self.n_constant) / (self.n_decay + 1)
        if self.policy == "step":
            return self.gamma ** (u // self.decay_every)
        if self.policy == "cosine":
            total = max(1, self.n_constant + self.n_decay)
            return 0.5 * (1.0 + math.cos(math.pi * min(u, total) / total))
        return self.plateau_factor

    def apply(self, optimizers: Mapping[str, torch.optim.Optimizer], step: int) -> float:
        """Set every param group's lr to its initial lr times the factor; returns the first lr."""
        factor = self.factor(step)
        lrs = []
        for opt in optimizers.values():
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])
                group["lr"] = group["initial_lr"] * factor
                lrs.append(group["lr"])
        return lrs[0] if lrs else 0.0

    def observe(self, value: float) -> None:
        """The monitored loss of one step (averaged per epoch for `plateau`)."""
        self.epoch_sum += value
        self.epoch_count += 1

    def end_epoch(self) -> None:
        if self.policy == "plateau" and self.epoch_count:
            mean = self.epoch_sum / self.epoch_count
            if mean < self.best * (1 - 0.01):
                self.best, self.bad_epochs = mean, 0
            else:
                self.bad_epochs += 1
                if self.bad_epochs > 5:
                    self.plateau_factor *= 0.2
                    self.bad_epochs = 0
        self.epoch_sum, self.epoch_count = 0.0, 0

    def state_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("plateau_factor", "best", "bad_epochs", "epoch_sum", "epoch_count")}

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)


# ----------------------------------------------------------------------------- EMA


class EMA:
    """Exponential moving average of networks' weights (buffers are copied, not averaged)."""

    def __init__(self, networks: Mapping[str, torch.nn.Module], decay: float) -> None:
        self.decay = decay
        self.networks = {name: copy.deepcopy(net).eval().requires_grad_(False) for name, net in networks.items()}

    @torch.no_grad()
    def update(self, networks: Mapping[str, torch.nn.Module]) -> None:
        for name, net in networks.items():
            shadow = self.networks[name]
            for avg, param in zip(shadow.parameters(), net.parameters()):
                avg.lerp_(param.detach(), 1.0 - self.decay)
            for avg, buf in zip(shadow.buffers(), net.buffers()):
                avg.copy_(buf)

    def state_dict(self) -> dict:
        return {name: net.state_dict() for name, net in self.networks.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, net in self.networks.items():
            net.load_state_dict(state[name])


# ----------------------------------------------------------------------------- data order


def _seed_of(*numbers: int) -> int:
    """A 63-bit seed from integers (different tuples give unrelated streams)."""
    return int(np.random.SeedSequence([n % 2**63 for n in numbers]).generate_state(2, np.uint64)[0] >> 1)


class _Seeded(Dataset):
    """Item (epoch, index): dataset[index] with torch's RNG seeded by (seed, epoch, index).

    The datasets draw their random crops, flips and unpaired partners from torch's
    generator, so this makes every sample a pure function of its key: the same in every
    worker, after a resume, and independent of the main process's RNG (which stays untouched).
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed_of(self.seed, epoch, index))
            return self.dataset[index]


class _RunOrder(Sampler):
    """Batches of (epoch, index) keys for the rest of the run, from (epoch, batch) on.

    Epoch e is a permutation seeded by (seed, e) (in order with serial_batches); batches
    never straddle two epochs (the last one may be smaller, as in the reference).
    """

    def __init__(self, n: int, batch_size: int, seed: int, shuffle: bool, epoch: int, batch: int) -> None:
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.epoch, self.batch = epoch, batch

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, first = self.epoch, self.batch
        while True:
            if self.shuffle:
                generator = torch.Generator().manual_seed(_seed_of(self.seed, epoch, -1))
                order = torch.randperm(self.n, generator=generator).tolist()
            else:
                order = list(range(self.n))
            for start in range(first * self.batch_size, self.n, self.batch_size):
                yield [(epoch, i) for i in order[start:start + self.batch_size]]
            epoch, first = epoch + 1, 0


def _ignore_sigint(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C to the main process, which checkpoints and stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


# ----------------------------------------------------------------------------- RNG, signals


def _rng_state() -> dict:
    """Every RNG, as tensors and plain Python (checkpoints are read with weights_only=True)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


class _StopSignal:
    """SIGINT / SIGTERM set `name`; the loop finishes its step, checkpoints and returns.
    A second Ctrl-C stops at once (files stay consistent: every write is atomic)."""

    def __init__(self) -> None:
        self.name: str | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.name = signal.Signals(signum).name

    def __enter__(self) -> _StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _untouched(networks: Mapping[str, torch.nn.Module], device: torch.device) -> Iterator[None]:
    """Run code on the networks (sampling) without changing the training: train/eval
    modes, buffers (BatchNorm statistics) and every RNG are restored afterwards."""
    modes = [(m, m.training) for net in networks.values() for m in net.modules()]
    buffers = [(b, b.detach().clone()) for net in networks.values() for b in net.buffers()]
    py_state, np_state = random.getstate(), np.random.get_state()
    cuda = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=cuda), torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training
        with torch.no_grad():
            for buf, saved in buffers:
                buf.copy_(saved)
        random.setstate(py_state)
        np.random.set_state(np_state)


# ----------------------------------------------------------------------------- run folder


def _step_of(path: Path) -> int:
    match = re.fullmatch(r"step_(\d+)\.pt", path.name)
    return int(match.group(1)) if match else -1


def checkpoints(run: str | Path) -> list[Path]:
    """A run's checkpoints, oldest first."""
    folder = Path(run) / "checkpoints"
    found = [p for p in folder.glob("step_*.pt") if _step_of(p) >= 0] if folder.is_dir() else []
    return sorted(found, key=_step_of)


def _check_run_folder(run: Path, pipeline: str, resume: bool) -> None:
    """Refuse (one line each) what would overwrite or mix up runs, before anything is written."""
    if not resume:
        if run.exists() and (not run.is_dir() or any(run.iterdir())):
            raise UsageError(f"{run}/ already exists and is not empty; continue it with --resume or choose another --out")
        return
    load_run_config(run, pipeline)


def _check_same_model(run: Path, pipeline: str, config: TrainConfig, options: Any, model_keys: tuple[str, ...]) -> None:
    """On resume, settings that change the networks (or their EMA) must be the saved ones."""
    saved = load_run_config(run)
    now = settings_dict(pipeline, config, options)
    changed = [k for k in (*model_keys, "ema") if k in saved and saved[k] != now.get(k)]
    if changed:
        what = ", ".join(f"{k} {saved[k]!r} -> {now.get(k)!r}" for k in changed)
        raise UsageError(f"cannot resume {run}/ with a different model ({what}); drop these flags or start a new run")


def _write_metrics(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _truncate_metrics(path: Path, step: int) -> None:
    """Keep the lines up to `step` (a killed run may have logged past its last checkpoint)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a kill
    write_text(path, "".join(line + "\n" for line in kept))


def _write_samples(path: Path, columns: list[torch.Tensor]) -> None:
    """One row per image of the batch, one column per entry of `columns`."""
    from torchvision.utils import make_grid

    from i2i.data.io import from_tensor, write_image

    height = max(c.shape[-2] for c in columns)
    width = max(c.shape[-1] for c in columns)
    fixed = []
    for c in columns:
        c = c.detach().float().cpu().clamp(0, 1)
        if c.shape[1] == 1:
            c = c.expand(-1, 3, -1, -1)
        if c.shape[-2:] != (height, width):  # e.g. SR inputs: nearest, to see the pixels
            c = torch.nn.functional.interpolate(c, size=(height, width), mode="nearest")
        fixed.append(c)
    tiles = torch.stack([col[i] for i in range(fixed[0].shape[0]) for col in fixed])
    grid = make_grid(tiles, nrow=len(fixed), padding=2, pad_value=1.0)
    write_image(path, from_tensor(grid))


# ----------------------------------------------------------------------------- train


class TrainingDiverged(I2IError):
    """A loss became NaN or infinite; the run stops, its last good checkpoint stays."""


def train(pipeline: str, config: TrainConfig, options: Any = None, *, resume: bool = False) -> Path:
    """Train `pipeline` as `config` and `options` say; returns the run folder.

    With `resume`, continue the run in `config.out` from its newest checkpoint: same
    step count, schedule, data order and RNG streams. Settings that would change the model
    are refused with one line; see `make_settings(..., resume_from=run)`.
    """
    from i2i.checkpoint import load_training_state, save_model, save_training_state
    from i2i.device import autocast, cpu_has_native_bf16, resolve_device, resolve_precision
    from i2i.pipelines import get_pipeline
    from i2i.report import write_index

    cls = get_pipeline(pipeline)
    config = dataclasses.replace(config)  # our copies: channels and stage defaults get filled in
    options = dataclasses.replace(options) if options is not None else cls.Options()
    if not config.out:
        raise UsageError("no run folder given (--out RUN)")
    if not config.data:
        raise UsageError("no data folder given (--data DIR)")
    run = Path(config.out)
    _check_config(config)
    _check_run_folder(run, pipeline, resume)
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        print("warning: this CPU has no native bf16; bf16 autocast will be slow (use --precision fp32)", file=sys.stderr)

    # Data first: a wrong layout fails before anything is built or written.
    dataset = cls.build_dataset(options, config)
    if len(dataset) == 0:
        raise UsageError(f"{config.data}/ has no training images")
    for side in ("in_channels", "out_channels"):
        if hasattr(options, side) and not getattr(options, side):
            setattr(options, side, getattr(dataset, side))
    if resume:
        _check_same_model(run, pipeline, config, options, cls.model_options)
    steps_per_epoch = math.ceil(len(dataset) / config.batch_size)
    total_steps = config.max_steps or steps_per_epoch * (config.n_epochs + config.n_epochs_decay)

    if config.threads > 0:
        torch.set_num_threads(config.threads)
    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)
    torch.manual_seed(config.seed)
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not config.deterministic
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    pipe = cls(options, config, device, autocast=lambda: autocast(device, precision), scaler=scaler)
    _check_sizes(pipe, config)
    schedule = Schedule(config, steps_per_epoch, total_steps)
    ema = EMA(pipe.inference_networks(), config.ema) if config.ema > 0 else None

    step, epoch, batch_in_epoch = 0, 0, 0
    metrics_path = run / "metrics.jsonl"
    found = checkpoints(run) if resume else []
    if found:
        step, epoch, batch_in_epoch = _restore(_load_newest(found, load_training_state), pipe, schedule, scaler, ema)
        if batch_in_epoch >= steps_per_epoch:  # the dataset shrank since
            epoch, batch_in_epoch = epoch + 1, 0
        _truncate_metrics(metrics_path, step)
    elif resume:
        metrics_path.unlink(missing_ok=True)  # killed before its first checkpoint: start again

    run.mkdir(parents=True, exist_ok=True)
    (run / "checkpoints").mkdir(exist_ok=True)
    (run / "samples").mkdir(exist_ok=True)
    import yaml

    write_text(run / "config.yaml", yaml.safe_dump(settings_dict(pipeline, config, options), sort_keys=False))

    seeded = _Seeded(dataset, config.seed)
    loader = DataLoader(
        seeded,
        batch_sampler=_RunOrder(len(dataset), config.batch_size, config.seed, not config.serial_batches, epoch, batch_in_epoch),
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=_ignore_sigint if config.num_workers > 0 else None,
        persistent_workers=False,
        generator=torch.Generator().manual_seed(config.seed),  # not the global RNG: resume restores that one
    )
    from torch.utils.data import default_collate

    sample_batch = _to_device(default_collate([seeded[(0, i)] for i in range(min(len(dataset), 4))]), device)

    def checkpoint() -> None:
        """Full state to checkpoints/step_N.pt, the model to model.safetensors, both atomic."""
        nets = ema.networks if ema is not None else pipe.inference_networks()
        _check_finite_weights(pipe.networks, step, run)
        save_training_state(run / "checkpoints" / f"step_{step}.pt",
                            _training_state(pipeline, step, epoch, batch_in_epoch, pipe, schedule, scaler, ema))
        save_model(run / "model.safetensors", nets, pipe.model_spec())
        for old in checkpoints(run)[:-max(1, config.keep_last)]:
            old.unlink(missing_ok=True)

    def sample() -> None:
        with _untouched(pipe.networks, device):
            columns = pipe.sample(sample_batch)
        _write_samples(run / "samples" / f"step_{step}.png", columns)
        write_index(run, pipe.sample_columns)

    print(f"{pipeline}: {len(dataset)} images ({steps_per_epoch} steps/epoch), steps {step} -> {total_steps}, "
          f"{device} {precision} -> {run}/", file=sys.stderr)
    from tqdm import tqdm

    # a finished run resumed with nothing left to do has all of these already
    last_logged = last_checkpoint = last_sample = step if found else -1
    timer = {"steps": 0, "seconds": 0.0, "data": 0.0}
    losses: dict[str, float] = {}
    lr = 0.0
    data = iter(loader)
    with _StopSignal() as stop, tqdm(total=total_steps, initial=step, unit="step", dynamic_ncols=True,
                                     mininterval=1.0, file=sys.stderr) as bar:
        while step < total_steps and stop.name is None:
            started = time.perf_counter()
            batch = _to_device(next(data), device)
            loaded = time.perf_counter()
            lr = schedule.apply(pipe.optimizers, step)
            losses = _as_floats(pipe.step(batch))
            scaler.update()
            bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
            if bad:
                _diverged(bad, step + 1, run, write_index)
            step += 1
            epoch_of_step = epoch
            batch_in_epoch += 1
            if ema is not None:
                ema.update(pipe.inference_networks())
            if pipe.monitor in losses:
                schedule.observe(losses[pipe.monitor])
            if batch_in_epoch == steps_per_epoch:
                schedule.end_epoch()
                epoch, batch_in_epoch = epoch + 1, 0
            timer["steps"] += 1
            timer["seconds"] += time.perf_counter() - started
            timer["data"] += loaded - started
            bar.update(1)

            if step % config.log_every == 0 or step == total_steps:
                _log(metrics_path, step, epoch_of_step, losses, lr, timer, config.batch_size, bar)
                last_logged = step
            if step % config.sample_every == 0 or step == total_steps:
                sample()
                last_sample = step
            if step % config.checkpoint_every == 0:
                checkpoint()
                last_checkpoint = step
        # the end of the run, or a signal: always log, checkpoint and report the last step
        if losses and last_logged != step:
            _log(metrics_path, step, epoch_of_step, losses, lr, timer, config.batch_size, bar)
        if last_sample != step:
            sample()
        if last_checkpoint != step:
            checkpoint()
    if stop.name is not None:
        print(f"{stop.name}: stopped at step {step} of {total_steps}; checkpoint saved. "
              f"Continue with --resume (same --out).", file=sys.stderr)
    else:
        print(f"done: {run}/model.safetensors (step {step}); report {run}/index.html", file=sys.stderr)
    return run


def _training_state(pipeline: str, step: int, epoch: int, batch_in_epoch: int, pipe: Any,
                    schedule: Schedule, scaler: Any, ema: EMA | None) -> dict:
    """Everything a resume needs, as tensors and plain Python (read with weights_only=True)."""
    return {
        "pipeline": pipeline,
        "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch,
        "networks": {name: net.state_dict() for name, net in pipe.networks.items()},
        "optimizers": {name: opt.state_dict() for name, opt in pipe.optimizers.items()},
        "schedule": schedule.state_dict(),
        "scaler": scaler.state_dict(),
        "pipeline_state": pipe.state_dict(),
        "ema": ema.state_dict() if ema is not None else None,
        "rng": _rng_state(),
    }


def _restore(state: dict, pipe: Any, schedule: Schedule, scaler: Any, ema: EMA | None) -> tuple[int, int, int]:
    """Load a checkpoint into the live objects; returns (step, epoch, batch_in_epoch)."""
    for name, net in pipe.networks.items():
        net.load_state_dict(state["networks"][name])
    for name, opt in pipe.optimizers.items():
        opt.load_state_dict(state["optimizers"][name])
    schedule.load_state_dict(state["schedule"])
    scaler.load_state_dict(state["scaler"])
    pipe.load_state_dict(state["pipeline_state"])
    if ema is not None:
        ema.load_state_dict(state["ema"])
    _set_rng_state(state["rng"])
    return state["step"], state["epoch"], state["batch_in_epoch"]


def _check_config(config: TrainConfig) -> None:
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
    _check_lr_policy(config.lr_policy)


def _check_lr_policy(policy: str) -> None:
    if policy not in LR_POLICIES:
        raise UsageError(f"unknown lr policy {policy!r}; choose one of {', '.join(LR_POLICIES)}")


def _check_sizes(pipe: Any, config: TrainConfig) -> None:
    """A crop the generators cannot take (a U-Net needs multiples of 2**depth) is one line."""
    for name, net in pipe.inference_networks().items():
        multiple = getattr(net, "size_multiple", 1)
        if config.image_size % multiple:
            arch = getattr(net, "arch", {}).get("name", name)
            raise UsageError(f"{arch} needs image sizes that are multiples of {multiple}; "
                             f"--image-size {config.image_size} is not (use {max(multiple, config.image_size // multiple * multiple)})")


def _load_newest(found: list[Path], load: Any) -> dict:
    """The newest readable checkpoint (a broken newest one is reported and skipped)."""
    for path in reversed(found):
        try:
            return load(path)
        except I2IError as error:
            print(f"warning: {error}; trying an older checkpoint", file=sys.stderr)
    raise I2IError(f"no readable checkpoint in {found[0].parent}/")


def _as_floats(losses: Mapping[str, Any]) -> dict[str, float]:
    """Loss tensors to floats with one device sync."""
    names = list(losses)
    tensors = [torch.as_tensor(losses[k], dtype=torch.float32).detach().reshape(()).cpu() for k in names]
    return dict(zip(names, torch.stack(tensors).tolist())) if names else {}


def _last_good(run: Path) -> str:
    kept = checkpoints(run)
    return f"the last good checkpoint is {kept[-1]}" if kept else "no checkpoint was written"


def _diverged(bad: dict[str, float], step: int, run: Path, write_index: Any) -> None:
    what = ", ".join(f"{k} = {v}" for k, v in bad.items())
    with contextlib.suppress(Exception):
        write_index(run)
    raise TrainingDiverged(f"training diverged at step {step} ({what}); stopped, {_last_good(run)} "
                           "(try a lower --lr, or --precision fp32)")


def _check_finite_weights(networks: Mapping[str, torch.nn.Module], step: int, run: Path) -> None:
    for name, net in networks.items():
        for key, value in net.state_dict().items():
            if value.is_floating_point() and not torch.isfinite(value).all():
                raise TrainingDiverged(f"training diverged at step {step} ({name}.{key} is not finite); "
                                       f"stopped without saving it, {_last_good(run)}")


def _log(path: Path, step: int, epoch: int, losses: dict[str, float], lr: float, timer: dict,
         batch_size: int, bar: Any) -> None:
    steps = max(1, timer["steps"])
    sec = timer["seconds"] / steps
    record = {"step": step, "epoch": epoch + 1, **{k: round(v, 6) for k, v in losses.items()},
              "lr": lr, "sec_per_step": round(sec, 4), "data_sec": round(timer["data"] / steps, 4),
              "images_per_sec": round(batch_size / sec, 3) if sec > 0 else None}
    _write_metrics(path, record)
    bar.set_postfix_str(" ".join(f"{k} {v:.3g}" for k, v in losses.items()), refresh=False)
    timer.update(steps=0, seconds=0.0, data=0.0)
