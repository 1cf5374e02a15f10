"""Pipelines: what one kind of model trains (networks, losses, one step), by name.

The trainer (`i2i.training`) knows a pipeline only through the small protocol below and finds
it through `PIPELINES`, a name -> "module:Class" table imported lazily. A new pipeline is
one new file and one line here; nothing else imports a pipeline by name, so a broken
pipeline cannot break the others (or `i2i --help`). A pipeline of your own, without editing
i2i: `i2i.pipelines.PIPELINES["mine"] = "my_module:Mine"`, then `i2i.train("mine", {...})`
(the `i2i` command, a separate process, lists only the pipelines written here).

The protocol (`Pipeline` is the base class with the shared parts):

    class MyPipeline(Pipeline):
        name = "mine"                  # the registry name, stored in run folders and models
        cli_help = "..."               # what `i2i train mine --help` says first (its first line:
                                       #   the line in `i2i train --help`)
        Options = MyOptions            # dataclass: this pipeline's hyper-parameters, with the
                                       #   reference defaults; flat, no name shared with
                                       #   TrainConfig (config.yaml holds both side by side).
                                       #   Fields are `i2i.options.setting(default,
                                       #   help, choices=...)`: `i2i train mine` gets a flag for
                                       #   each (`--n-layers-D` for n_layers_D), nothing else to write.
                                       #   Image-to-image: `in_channels`/`out_channels` fields (0:
                                       #   from the data) and `channels() -> (in, out)` (3 for 0), as
                                       #   `i2i.pipelines.reference.ReferenceOptions`; SR: `scale` and an
                                       #   int `channels`: the trainer makes its probe batch from them
        model_options = ("netG", ...)  # options that change the networks: --resume refuses
                                       #   to change them
        config_defaults = {}           # TrainConfig defaults this pipeline changes
                                       #   (SRGAN: cosine schedule, 96 px patches, batch 16)
        shown_defaults = {}            # how --help shows defaults that depend on other settings
                                       #   (SRGAN: image_size "96 psnr, 128 gan")
        ignored_settings = {}          # TrainConfig settings it never reads -> why, as the error
                                       #   ends when one is set (SRGAN: load_size, preprocess)
        monitor = "G"                  # the loss the `plateau` schedule watches

        @classmethod
        def unused_settings(cls, options, config) -> dict[str, str]
            # the settings these leave unused -> why: `ignored_settings`, and those of another
            # mode (srgan's discriminator at --stage psnr); `make_settings` refuses one the
            # user set, in one line (the default is `ignored_settings`)
        @classmethod
        def upgrade_saved(cls, saved) -> dict
            # a run's config.yaml written by an older i2i, read as that i2i meant it (srgan:
            # realesrgan runs from before usm_weight trained without sharpening); resume reads it
        @classmethod
        def check_given(cls, options, given) -> None
            # refuses, in one line, a setting the user gave (`given`: name -> " in FILE" or "") that another
            # source overrides (srgan: --scale against a --pretrained model's); `make_settings`
            # calls it (the default refuses nothing)
        @classmethod
        def resolve(cls, options, config, quiet=False) -> None
            # fills, in place, defaults that depend on other settings (srgan: its stage's patch
            # size and rate, a --pretrained model's architecture); the trainer calls it once,
            # before everything below, which may rely on it (the default does nothing)
        @classmethod
        def build_dataset(cls, options, config) -> Dataset
            # items {"A": CHW [0, 1], "B": CHW [0, 1], ...}; the dataset's `in_channels` /
            # `out_channels` fill options.in_channels / out_channels when those are 0.
            # Called before the networks exist, so a wrong layout fails before any work.
        def __init__(self, options, config, device, autocast=..., scaler=..., rank=0)
            # builds self.networks and self.optimizers (use self.adam(...)); `autocast()` is
            # the trainer's autocast context, `scaler` its GradScaler (a pass-through unless
            # fp16): write `self.scaler.scale(loss).backward(); self.scaler.step(opt)`; the
            # trainer calls `scaler.update()` after each step. `rank`: this torchrun
            # process's (0 alone), for random streams of its own.
        networks: dict[str, nn.Module]        # everything trained, saved in checkpoints
        optimizers: dict[str, Optimizer]      # the trainer schedules each one's learning rate
        def augment(self, batch) -> batch
            # random changes on the device, once per step before `step` (and once for the
            # sample grids): e.g. srgan's Real-ESRGAN degradations; the default is none
        def step(self, batch) -> dict[str, Tensor | float]
            # one optimisation step on a batch already on the device (values in [0, 1] as the
            # dataset gives them); returns every loss term (detached scalars)
        def sample(self, batch) -> list[Tensor]
            # columns of a sample grid, each N x C x H x W in [0, 1] (C 1 or 3); run under
            # no_grad with the training state (BN stats, RNG) restored afterwards by the trainer;
            # `sample_columns` names them for the report
        def inference_networks(self) -> dict[str, nn.Module]  # what model.safetensors holds
        def model_spec(self) -> i2i.spec.ModelSpec           # and how to run it
        def state_dict(self) -> dict; def load_state_dict(self, state) -> None
            # extra state for checkpoints (image pools, ...); tensors and plain Python only;
            #   an override merges the base's (`{**super().state_dict(), ...}`: --diffaug's RNG)

Every tensor a discriminator judges goes through `self.d_input(x)` first: `x` itself, or
with `--diffaug` its DiffAugment (`i2i.data.diffaugment`), real and fake, in D's loss and G's.
"""
from __future__ import annotations

import importlib
from itertools import chain
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping

from i2i.errors import UsageError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from i2i.spec import ModelSpec

#: pipeline name -> "module:Class", imported on first use.
PIPELINES: dict[str, str] = {
    "cyclegan": "i2i.pipelines.cyclegan:CycleGAN",
    "pix2pix": "i2i.pipelines.pix2pix:Pix2Pix",
    "srgan": "i2i.pipelines.srgan:SRGAN",
}


def available() -> list[str]:
    """The registered pipeline names."""
    return sorted(PIPELINES)


def get_pipeline(name: str) -> type[Pipeline]:
    """The pipeline class registered as `name` (imported now); one-line error if unknown."""
    if name not in PIPELINES:
        raise UsageError(f"unknown pipeline {name!r}; available: {', '.join(available())}")
    module, cls = PIPELINES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def diffaugment_of_run(policy: str, seed: int, rank: int, value_range: tuple[float, float]) -> Any:
    """The run's DiffAugment (None when `policy` is ""), seeded from (seed, rank): each
    torchrun process draws its own parameters, one process the same at every run."""
    from i2i.data.diffaugment import DiffAugment, parse_policy
    from i2i.seeds import seed_of

    if not parse_policy(policy):
        return None
    return DiffAugment(policy, seed_of(seed, rank, -3), value_range)


def _nullcontext():
    import contextlib

    return contextlib.nullcontext()


class Pipeline:
    """Base class: the protocol's defaults and helpers every pipeline uses."""

    name: ClassVar[str] = ""
    cli_help: ClassVar[str] = ""
    Options: ClassVar[type] = object
    model_options: ClassVar[tuple[str, ...]] = ()
    config_defaults: ClassVar[dict[str, Any]] = {}
    shown_defaults: ClassVar[dict[str, str]] = {}
    ignored_settings: ClassVar[dict[str, str]] = {}
    monitor: ClassVar[str] = "G"
    sample_columns: ClassVar[tuple[str, ...]] = ()
    unpaired: ClassVar[bool] = False  # True: A and B get their random geometry apart
    network_range: ClassVar[tuple[float, float]] = (-1.0, 1.0)  # images as the discriminators see them

    def __init__(self, options: Any, config: Any, device: torch.device,
                 autocast: Callable[[], Any] = _nullcontext, scaler: Any = None, rank: int = 0) -> None:
        import torch

        self.options = options
        self.config = config
        self.device = device
        self.autocast = autocast
        self.scaler = scaler if scaler is not None else torch.amp.GradScaler(device.type, enabled=False)
        self.networks: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        from i2i.data.augment import device_augmentation

        self.augmentation = device_augmentation("none" if config.no_flip else config.augment, self.unpaired)
        self.diffaug = diffaugment_of_run(config.diffaug, config.seed, rank, self.network_range)

    @classmethod
    def unused_settings(cls, options: Any, config: Any) -> dict[str, str]:
        """The settings that this pipeline, set as `options` and `config` say, does not read ->
        why ("only matters with --stage gan"). `make_settings` refuses one the user set to
        something else than its default, in one line, rather than record it in config.yaml and
        train without it."""
        return dict(cls.ignored_settings)

    @classmethod
    def upgrade_saved(cls, saved: dict) -> dict:
        """A run's config.yaml (flat) as today's settings say what that run did, where a new
        setting's default differs from what older runs did (their config.yaml lacks it). Every
        reader of a saved run (resume, its checks) sees the upgraded settings."""
        return saved

    @classmethod
    def check_given(cls, options: Any, given: Mapping[str, str]) -> None:
        """Refuse, in one line, a setting the user gave (`given`: the names set by flags, a
        --config file or a Python mapping -> " in FILE" or "") that another source would override: srgan's
        architecture flags against a --pretrained model's. Only here is an explicit value
        equal to the default told apart from one left unset."""

    @classmethod
    def resolve(cls, options: Any, config: Any, quiet: bool = False) -> None:
        """Fill, in place, the settings whose defaults depend on others (srgan: its stage's
        patch size and rate); the trainer calls it once, before it checks the settings' ranges
        and before `build_dataset` and the constructor, which rely on it."""

    @classmethod
    def build_dataset(cls, options: Any, config: Any):
        raise NotImplementedError

    def augment(self, batch: dict) -> dict:
        """The batch as the step sees it: the run's random geometry (`--augment`), made on the
        device after the DataLoader, the same on both sides of a pair (the trainer calls it
        once per step). A pipeline may add its own (srgan's degradations)."""
        if self.augmentation is None:
            return batch
        a, b = self.augmentation(batch["A"], batch["B"])
        return {**batch, "A": a, "B": b}

    def step(self, batch: dict) -> dict:
        raise NotImplementedError

    def sample(self, batch: dict) -> list:
        raise NotImplementedError

    def inference_networks(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def model_spec(self) -> ModelSpec:
        raise NotImplementedError

    def d_input(self, x: torch.Tensor, groups: tuple[int, ...] | None = None) -> torch.Tensor:
        """What a discriminator sees of `x`: `x` itself, or with --diffaug `x` through
        DiffAugment with new random parameters (`groups`: the channel counts of a
        concatenated conditional input, for colour; the geometry is shared)."""
        return x if self.diffaug is None else self.diffaug(x, groups)

    def state_dict(self) -> dict:
        return {"diffaug": self.diffaug.state_dict()} if self.diffaug is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.diffaug is not None and "diffaug" in state:  # absent: a run that had it off
            self.diffaug.load_state_dict(state["diffaug"])

    # --- helpers -------------------------------------------------------------

    def create(self, name: str, **kwargs: Any) -> nn.Module:
        """`i2i.nn.create`, moved to the device."""
        import i2i.nn

        return i2i.nn.create(name, **kwargs).to(self.device)

    def adam(self, *nets: nn.Module, lr: float | None = None):
        """The reference optimiser: one Adam over the nets' parameters (lr, beta1, beta2 of the config)."""
        import torch

        params = chain.from_iterable(net.parameters() for net in nets)
        return torch.optim.Adam(params, lr=lr or self.config.lr, betas=(self.config.beta1, self.config.beta2))

    @staticmethod
    def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
        """Freeze / unfreeze nets (the reference does this around the G and D updates)."""
        for net in nets:
            net.requires_grad_(flag)

    @staticmethod
    def to_model_range(x: torch.Tensor) -> torch.Tensor:
        """[0, 1] (datasets) -> [-1, 1] (the CycleGAN/pix2pix networks)."""
        from i2i.spec import to_network_range

        return to_network_range(x, (-1.0, 1.0))

    @staticmethod
    def to_image_range(x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] (networks) -> [0, 1] (images), clamped, float32."""
        from i2i.spec import to_image_range

        return to_image_range(x.float(), (-1.0, 1.0))
