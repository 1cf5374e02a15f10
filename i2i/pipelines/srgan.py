"""SRGAN / ESRGAN super-resolution: a PSNR-oriented stage, then a GAN stage from it.

Two stages, as SRGAN (Ledig et al. 2017) and ESRGAN (Wang et al. 2018) train:

* `psnr` (default): SRResNet (BasicSR's MSRResNet; `arch="rrdbnet"` for ESRGAN's RRDBNet)
  trained with an L1 (or MSE / Charbonnier) pixel loss.
* `gan`: starts from a `psnr` model (`pretrained`: a run folder or its model file) and adds
  VGG19 conv5_4 perceptual loss (L1, weights from a local file) and an adversarial loss
  with the VGG-style discriminator `vgg128` (128x128 HR patches, or 256x256).
  Weights are BasicSR's SRGAN recipe -- pixel L1 1e-2, perceptual 1 -- with the SRGAN
  paper's adversarial weight 1e-3 (BasicSR/mmagic use 5e-3; `gan_weight` sets it).
  `gan="relativistic"` (with `arch="rrdbnet"`: the ESRGAN recipe) uses the relativistic
  average GAN with weight 5e-3. The G and D steps follow BasicSR's `SRGANModel` /
  `ESRGANModel` (G first, then D on the same output; D losses not halved, except the
  relativistic halves).

Optimiser: Adam with betas (0.9, 0.99), as BasicSR trains every SR model (the reference's
(0.5, 0.999) are CycleGAN's GAN betas); lr 2e-4 for `psnr`, 1e-4 for `gan` (BasicSR);
cosine schedule; EMA 0.999 of the generator (the model file gets the EMA weights).

Data: HR patches of `image_size` pixels (96 for `psnr`, 128 for `gan` by default) cut at
scale-aligned positions; the LR is made per patch by the MATLAB-exact bicubic on the
uint8 patch (`i2i.data.datasets.SRDataset`), with random flips and 90-degree rotations.
Layouts: a plain folder of HR images (also `task="sr"`), `DATA/HR` + `DATA/LR` (BasicSR;
`LR/X4` taken when it exists), `DATA/B` (HR) + `DATA/A` (LR) as `i2i data derive sr`
writes, or `lr_data` naming the LR folder. Images stay in [0, 1] inside the SR networks.

Nothing here imports kornia or albumentations: `i2i train srgan` runs without them.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch

import i2i.nn
from i2i.errors import I2IError, UsageError
from i2i.losses import PixelLoss
from i2i.pipelines import Pipeline
from i2i.spec import ModelSpec, SizeRequirements
from i2i.options import setting

STAGES = ("psnr", "gan")
ARCHS = ("srresnet", "rrdbnet")
# the generator settings a --pretrained model brings (srgan trains on from it as it is)
ARCHITECTURE_SETTINGS = ("arch", "scale", "width", "num_blocks", "growth", "channels")
SCALES = (2, 3, 4)
GANS = ("vanilla", "lsgan", "hinge", "wgangp", "relativistic")
DEFAULT_PATCH = {"psnr": 96, "gan": 128}   # HR pixels; vgg128 takes 128 (or 256)
DEFAULT_LR = {"psnr": 2e-4, "gan": 1e-4}   # BasicSR's MSRResNet / MSRGAN
DEFAULT_PIXEL_WEIGHT = {"psnr": 1.0, "gan": 1e-2}
DEFAULT_GAN_WEIGHT = {"relativistic": 5e-3, "others": 1e-3}  # ESRGAN; SRGAN's for the other losses
MIN_BATCHES_PER_EPOCH = 100                # small folders are repeated up to this
SR_TASKS = ("", "sr")                      # "sr": a plain photo folder, the same as ""
DEGRADATIONS = ("bicubic", "realesrgan")
#: settings only stage gan reads: its discriminator (and what the discriminator sees), its losses
GAN_STAGE_ONLY = ("gan", "gan_weight", "ndf", "perceptual_weight", "vgg_weights", "diffaug")
#: why srgan never reads the reference's resize-and-crop settings
OWN_PATCHES = "is not used by srgan, which cuts HR patches of --image-size from the images itself"


def _shown(values: dict) -> str:
    """A default that depends on another setting, as --help shows it: "96 psnr, 128 gan"."""
    return ", ".join(f"{value:g} {key}" for key, value in values.items())


@dataclass
class SRGANOptions:
    stage: str = setting("psnr", "psnr: pixel loss only; gan: from --pretrained, with perceptual and adversarial "
                         "losses.", choices=STAGES)
    scale: int = setting(4, "SR factor.", choices=SCALES)
    arch: str = setting("srresnet", "Generator: srresnet (SRGAN) or rrdbnet (ESRGAN).", choices=ARCHS)
    width: int = setting(64, "Generator features.", at_least=1)
    num_blocks: int = setting(0, "Residual blocks.", shown=_shown({a: i2i.nn.defaults(a)["num_blocks"] for a in ARCHS}),
                              at_least=0)
    growth: int = setting(32, "rrdbnet's dense growth channels.", at_least=1)
    channels: int = setting(3, "3 (RGB) or 1 (gray).", choices=(1, 3))
    pixel_loss: str = setting("l1", "Pixel loss.", choices=PixelLoss.KINDS)
    pixel_weight: float | None = setting(None, "Pixel loss weight.", value_type=float,
                                         shown=_shown(DEFAULT_PIXEL_WEIGHT), at_least=0)
    perceptual_weight: float = setting(1.0, "Stage gan: VGG19 conv5_4 L1 weight.", at_least=0)
    gan: str = setting("vanilla", "Stage gan: adversarial loss: vanilla (SRGAN), relativistic (ESRGAN).",
                       choices=GANS)
    gan_weight: float | None = setting(None, "Stage gan: adversarial loss weight.", value_type=float,
                                       shown=_shown(DEFAULT_GAN_WEIGHT), at_least=0)
    ndf: int = setting(64, "Stage gan: vgg128 discriminator features.", old_names=("d_width",), at_least=1)
    pretrained: str = setting("", "Start from this generator (a run folder, a model file or a model name); "
                              "stage gan needs a psnr one.")
    degradation: str = setting("bicubic", "How LR patches are made from HR: bicubic (MATLAB-exact, clean) or "
                               "realesrgan (Real-ESRGAN's blur, resize, noise and JPEG, twice, on the device).",
                               choices=DEGRADATIONS)
    degradation_settings: dict | None = setting(
        None, "realesrgan's ranges and probabilities changed from the published recipe: a YAML file or an "
        "inline YAML mapping, e.g. '{clean_prob: 0.2, round2: {jpeg_range: [50, 95]}}' (names: "
        "i2i.data.degradations.RealESRGANSettings); config.yaml records the mapping.", value_type=str,
        shown="the published recipe")
    vgg_weights: str = setting("", "Stage gan: VGG19 weights file (torchvision's vgg19-dcbb9e9d.pth).", path="file",
                               shown="$I2I_VGG19_WEIGHTS or ~/.cache/i2i/vgg19-dcbb9e9d.pth")
    lr_data: str = setting("", "LR images matching --data's HR ones by name.", path="dir",
                           shown="made by MATLAB bicubic")
    task: str = setting("", "sr: a plain photo folder as HR images (the default for a plain folder).",
                        choices=SR_TASKS)
    repeat: int = setting(0, "Visits of each image per epoch.", shown="0: at least 100 batches per epoch", at_least=0)


class SRGAN(Pipeline):
    name = "srgan"
    cli_help = """Super-resolution: DATA holds HR images (or DATA/HR + DATA/LR, or DATA/B + DATA/A).

    --image-size is the HR patch; LR patches are made from it by MATLAB bicubic. The defaults
    are BasicSR's (Adam betas (0.9, 0.99), cosine, EMA). Stage gan: --pretrained RUN
    --vgg-weights FILE; --arch rrdbnet --gan relativistic is ESRGAN.
    """
    Options = SRGANOptions
    model_options = ("stage", "scale", "arch", "width", "num_blocks", "growth", "channels", "ndf")
    config_defaults = {
        "image_size": 0,            # 0: DEFAULT_PATCH of the stage (HR pixels)
        "lr": 0.0,                  # 0: DEFAULT_LR of the stage
        "beta1": 0.9,
        "beta2": 0.99,
        "lr_policy": "cosine",
        "batch_size": 16,
        "ema": 0.999,
        "augment": "dihedral",      # BasicSR's use_hflip + use_rot
    }
    shown_defaults = {"image_size": _shown(DEFAULT_PATCH), "lr": _shown(DEFAULT_LR)}
    ignored_settings = dict.fromkeys(("load_size", "preprocess"), OWN_PATCHES)
    monitor = "G"
    sample_columns = ("LR", "SR", "HR")
    network_range = (0.0, 1.0)  # SR networks work on [0, 1] images (--diffaug's fill and brightness)

    # ------------------------------------------------------------------ settings and data

    @classmethod
    def unused_settings(cls, options: SRGANOptions, config) -> dict[str, str]:
        """Besides --load-size and --preprocess: at --stage psnr, everything about the
        discriminator and the perceptual loss (there are none); --growth but for rrdbnet (a
        --pretrained model brings its own architecture, growth included)."""
        unused = super().unused_settings(options, config)
        if options.stage not in STAGES or options.arch not in ARCHS:
            return unused  # a mistyped stage or arch is the error to report (`resolve`)
        if options.stage != "gan":
            unused.update(dict.fromkeys(GAN_STAGE_ONLY, "only matters with --stage gan"))
        if options.arch != "rrdbnet" and not options.pretrained:
            unused["growth"] = "only matters with --arch rrdbnet"
        return unused

    @classmethod
    def upgrade_saved(cls, saved: dict) -> dict:
        """A realesrgan run recorded without usm_weight began before the HR sharpening: it goes on without."""
        settings = saved.get("degradation_settings") if isinstance(saved.get("degradation_settings"), Mapping) else {}
        if saved.get("degradation") != "realesrgan" or "usm_weight" in settings:
            return saved
        return {**saved, "degradation_settings": {**settings, "usm_weight": 0}}

    @classmethod
    def check_given(cls, options: SRGANOptions, given: Mapping[str, str]) -> None:
        """An architecture flag given with --pretrained must be the model's, even at its default
        (`--scale 4` with an x2 model): `resolve` can only tell a value set to another."""
        named = {name: where for name, where in given.items() if name in ARCHITECTURE_SETTINGS}
        if options.pretrained and named and options.arch in ARCHS:
            _refuse_other_architecture(options, *_pretrained_architecture(options), named)

    @classmethod
    def resolve(cls, options: SRGANOptions, config, quiet: bool = False) -> None:
        """Check the options and fill the stage's defaults in place (one-line errors).

        Stage gan takes the generator's architecture from the pretrained model file, so
        `arch`, `width`, `num_blocks`, `growth`, `scale` and `channels` become its values.
        """
        o = options
        _choice("stage", o.stage, STAGES)
        _choice("gan", o.gan, GANS)
        _choice("task", o.task, SR_TASKS)
        for name in ("pixel_weight", "gan_weight"):  # None: the recipe's; YAML may give "1e-2"
            value = getattr(o, name)
            if value is not None:
                try:
                    setattr(o, name, float(value))
                except (TypeError, ValueError):
                    raise UsageError(f"srgan: {name} must be a number, got {value!r}") from None
        _choice("degradation", o.degradation, DEGRADATIONS)
        if o.degradation == "realesrgan" and o.lr_data:
            raise UsageError("--degradation realesrgan makes its own LR images; drop --lr-data")
        o.degradation_settings = _degradation_mapping(o, quiet)
        pretrained = _adopt_pretrained(o, resumed=_has_checkpoints(config)) if o.stage == "gan" or o.pretrained else None
        if o.stage == "gan":
            path = _vgg_path(o)
            if o.perceptual_weight > 0 and not path.is_file():
                raise I2IError(
                    f"VGG19 weights not found at {path}: stage gan needs them for the perceptual loss; "
                    f"pass --vgg-weights FILE (torchvision's vgg19-dcbb9e9d.pth) or set $I2I_VGG19_WEIGHTS "
                    f"(i2i never downloads them)")
        _choice("scale", o.scale, SCALES)
        _choice("arch", o.arch, ARCHS)
        _choice("channels", o.channels, (1, 3))
        if not config.image_size:
            config.image_size = DEFAULT_PATCH[o.stage]
        if not config.lr:
            config.lr = DEFAULT_LR[o.stage]
        patch = config.image_size
        if patch % o.scale:
            raise UsageError(f"--image-size {patch} (the HR patch) is not a multiple of the scale {o.scale}")
        if o.arch == "rrdbnet" and o.scale == 2 and (patch // o.scale) % 2:
            raise UsageError(f"rrdbnet x2 needs even LR patches; --image-size {patch} gives {patch // o.scale}")
        if o.stage == "gan" and patch not in (128, 256):
            raise UsageError(f"stage gan: the vgg128 discriminator takes 128x128 (or 256x256) HR patches; "
                             f"--image-size {patch} is neither")
        if pretrained and not quiet:
            print(f"srgan {o.stage}: generator from {pretrained}: {o.arch}, width {o.width}, "
                  f"{o.num_blocks or 'default'} blocks, x{o.scale}, {o.channels} channels", file=sys.stderr)

    @classmethod
    def build_dataset(cls, options: SRGANOptions, config):
        from i2i.data.datasets import SRDataset

        hr_root, lr_root, notes = _layout(Path(config.data), options)
        dataset = SRDataset(hr_root, options.scale, config.image_size, lr_root,
                            cache=True, channels=options.channels)
        dataset.notes = notes
        n = len(dataset.items)
        dataset.repeat = options.repeat or max(1, math.ceil(MIN_BATCHES_PER_EPOCH * config.batch_size / n))
        return dataset

    # ------------------------------------------------------------------ networks

    def __init__(self, options: SRGANOptions, config, device: torch.device, **run) -> None:
        super().__init__(options, config, device, **run)
        from i2i.losses import GANLoss, PerceptualLoss, PixelLoss

        o = options
        gen = {"in_channels": o.channels, "out_channels": o.channels, "width": o.width, "scale": o.scale}
        if o.num_blocks:
            gen["num_blocks"] = o.num_blocks
        if o.arch == "rrdbnet":
            gen["growth"] = o.growth
        self.G = self.create(o.arch, **gen)
        self.pixel = PixelLoss(o.pixel_loss)
        self.pixel_weight = o.pixel_weight if o.pixel_weight is not None else DEFAULT_PIXEL_WEIGHT[o.stage]
        self.networks = {"G": self.G}
        self.optimizers = {"G": self.adam(self.G)}
        if o.pretrained and not (_has_checkpoints(config) and not _pretrained_found(o)):  # a resume: its checkpoint
            from i2i.checkpoint import load_model

            pretrained = load_model(_pretrained_path(o.pretrained), names=["G"]).networks["G"]
            self.G.load_state_dict(pretrained.state_dict())
        self.degrade = None
        if o.degradation == "realesrgan":
            from i2i.data.degradations import RealESRGANDegradation, settings_from_mapping

            self.degrade = RealESRGANDegradation(settings_from_mapping(o.degradation_settings or {}))
        if o.stage == "gan":
            self.D = self.create("vgg128", in_channels=o.channels, width=o.ndf, input_size=config.image_size)
            self.networks["D"] = self.D
            self.optimizers["D"] = self.adam(self.D)
            self.gan = GANLoss("vanilla" if o.gan == "relativistic" else o.gan).to(device)
            self.gan_weight = o.gan_weight if o.gan_weight is not None else DEFAULT_GAN_WEIGHT.get(
                o.gan, DEFAULT_GAN_WEIGHT["others"])
            self.perceptual = None
            if o.perceptual_weight > 0:
                self.perceptual = PerceptualLoss(_vgg_path(o), layer="conv5_4", before_activation=True,
                                                 criterion="l1", input_range=(0.0, 1.0)).to(device)

    # ------------------------------------------------------------------ one step

    def augment(self, batch: dict) -> dict:
        """The shared flips and rotations (LR and HR alike); then, with --degradation realesrgan,
        the LR is made here, on the device, from the HR sharpened as the target (`usm_weight`)."""
        batch = super().augment(batch)
        if self.degrade is None:
            return batch
        target = self.degrade.sharpen(batch["B"])  # Real-ESRGAN's gt_usm: the HR itself with usm_weight 0
        return {**batch, "A": self.degrade(target, self.options.scale, clean=batch["A"]), "B": target,
                "real": batch["B"]}

    def step(self, batch: dict) -> dict[str, torch.Tensor]:
        """Losses against `B`; the discriminator's real images are the plain HR (gan_gt_usm: false)."""
        if self.options.stage == "psnr":
            return self._step_psnr(batch["A"], batch["B"])
        return self._step_gan(batch["A"], batch["B"], batch.get("real", batch["B"]))

    def _step_psnr(self, lr_img: torch.Tensor, hr: torch.Tensor) -> dict[str, torch.Tensor]:
        opt = self.optimizers["G"]
        opt.zero_grad(set_to_none=True)
        with self.autocast():
            sr = self.G(lr_img)
        loss = self.pixel(sr.float(), hr) * self.pixel_weight
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)
        return {"pixel": loss.detach(), "G": loss.detach()}

    def _step_gan(self, lr_img: torch.Tensor, hr: torch.Tensor, real: torch.Tensor) -> dict[str, torch.Tensor]:
        from i2i.losses import relativistic_loss

        G, D, gan, scaler = self.G, self.D, self.gan, self.scaler
        opt_G, opt_D = self.optimizers["G"], self.optimizers["D"]
        relativistic = self.options.gan == "relativistic"

        # generator: pixel + perceptual + adversarial, the discriminator frozen
        self.set_requires_grad([D], False)
        opt_G.zero_grad(set_to_none=True)
        with self.autocast():
            sr = G(lr_img)
            fake_pred = D(self.d_input(sr)).float()
            if relativistic:  # ESRGAN: real judged against fake and fake against real
                adversarial = relativistic_loss(D(self.d_input(real)).float().detach(), fake_pred,
                                                for_discriminator=False)
            else:
                adversarial = gan(fake_pred, True, for_discriminator=False)
        zero = hr.new_zeros(())
        pixel = self.pixel(sr.float(), hr) * self.pixel_weight if self.pixel_weight > 0 else zero
        perceptual = zero
        if self.perceptual is not None:
            with self.autocast():
                perceptual = self.perceptual(_rgb(sr), _rgb(hr)).float() * self.options.perceptual_weight
        adversarial = adversarial * self.gan_weight
        loss_G = pixel + perceptual + adversarial
        scaler.scale(loss_G).backward()
        scaler.step(opt_G)

        # discriminator on the same output, detached
        self.set_requires_grad([D], True)
        opt_D.zero_grad(set_to_none=True)
        fake = sr.detach()
        with self.autocast():
            seen_real, seen_fake = self.d_input(real), self.d_input(fake)
            real_pred, fake_pred = D(seen_real).float(), D(seen_fake).float()
            if relativistic:  # BasicSR's ESRGAN: each half sees the other's mean as a constant
                loss_real = 0.5 * gan(real_pred - fake_pred.detach().mean(), True)
                loss_fake = 0.5 * gan(fake_pred - real_pred.detach().mean(), False)
            else:
                loss_real, loss_fake = gan(real_pred, True), gan(fake_pred, False)
            loss_D = loss_real + loss_fake + gan.penalty(D, seen_real, seen_fake)
        scaler.scale(loss_D).backward()
        scaler.step(opt_D)

        losses = {"pixel": pixel, "perceptual": perceptual, "G_GAN": adversarial, "G": loss_G,
                  "D_real": loss_real, "D_fake": loss_fake, "D": loss_D}
        return {k: v.detach() for k, v in losses.items()}

    # ------------------------------------------------------------------ samples and model file

    def sample(self, batch: dict) -> list[torch.Tensor]:
        with self.autocast():
            sr = self.G(batch["A"])
        return [batch["A"].float(), sr.float().clamp(0, 1), batch["B"].float()]

    def inference_networks(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G}

    def model_spec(self) -> ModelSpec:
        return ModelSpec(
            pipeline=self.name, input_range=(0.0, 1.0), output_range=(0.0, 1.0),
            in_channels=self.G.in_channels, out_channels=self.G.out_channels, scale=self.G.scale,
            size=SizeRequirements(multiple=self.G.size_multiple), task="sr")


# ----------------------------------------------------------------------------- helpers


def _choice(what: str, value: object, choices: tuple) -> None:
    if value not in choices:
        raise UsageError(f"srgan: {what} must be one of {', '.join(map(str, choices))}, got {value!r}")


def _rgb(x: torch.Tensor) -> torch.Tensor:
    """Gray -> 3 channels for the VGG19 (an ImageNet network)."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _degradation_mapping(options: SRGANOptions, quiet: bool = False) -> dict | None:
    """--degradation-settings as the mapping config.yaml records (a file or inline YAML),
    checked against RealESRGANSettings, Real-ESRGAN's flat names moved to i2i's (one note
    says how); for realesrgan, usm_weight always spelt out."""
    import yaml

    from i2i.data.degradations import from_realesrgan_names, settings_from_mapping
    from i2i.settings_file import read_yaml

    value = options.degradation_settings
    if value in (None, "", {}):
        return _with_usm_weight({}) if options.degradation == "realesrgan" else None
    if options.degradation != "realesrgan":
        raise UsageError(f"degradation settings are given (--degradation-settings, --config or a resumed run's "
                         f"config.yaml) with --degradation {options.degradation}; they are for realesrgan")
    if isinstance(value, str):
        if Path(value).is_file():
            value = read_yaml(Path(value))
        else:
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError:
                value = None
            if not isinstance(value, dict):
                raise UsageError(f"--degradation-settings {options.degradation_settings!r}: no such file, "
                                 "nor an inline YAML mapping") from None
    value, renamed = from_realesrgan_names(value, "degradation_settings")
    settings_from_mapping(value, "degradation_settings")
    if renamed and not quiet:  # config.yaml records i2i's names; say how Real-ESRGAN's were read
        print(f"note: degradation settings: Real-ESRGAN's names read as i2i's: {'; '.join(renamed)}", file=sys.stderr)
    return _with_usm_weight(value)


def _with_usm_weight(mapping: dict) -> dict:
    """The mapping with usm_weight spelt out, so config.yaml says whether the run sharpened its
    HR (runs recorded without it predate the setting and did not: `upgrade_saved`)."""
    from i2i.data.degradations import RealESRGANSettings

    return {**mapping, "usm_weight": mapping.get("usm_weight", RealESRGANSettings().usm_weight)}


def _vgg_path(options: SRGANOptions) -> Path:
    from i2i.losses import vgg19_weights_path

    return vgg19_weights_path(options.vgg_weights or None)


def _pretrained_path(text: str) -> Path:
    """A run folder, a model file or a zoo name -> the model file (as `i2i translate` finds it)."""
    from i2i.infer import resolve_model_path

    return resolve_model_path(text)


def _has_checkpoints(config) -> bool:
    """Whether --out holds checkpoints: a resume (a new run there is refused), whose weights and
    architecture (config.yaml) come from the run itself, not from --pretrained."""
    from i2i.run_layout import CHECKPOINTS, by_step

    folder = Path(config.out) / CHECKPOINTS if config.out else None
    return bool(folder and folder.is_dir() and by_step(folder, ".pt"))


def _pretrained_found(options: SRGANOptions) -> bool:
    """Whether --pretrained still names a model file (a resumed run's may have been moved since)."""
    try:
        return _pretrained_path(options.pretrained).is_file()
    except I2IError:
        return False


def _adopt_pretrained(options: SRGANOptions, resumed: bool = False) -> Path | None:
    """Check `pretrained` is an srgan model and take its generator's architecture; None for a
    resumed run whose --pretrained file is gone (BasicSR's resume_state needs no
    pretrain_network_g either: the checkpoint has the weights)."""
    if not options.pretrained:
        raise UsageError("stage gan starts from a psnr model: give --pretrained RUN (a psnr run folder "
                         "or its model.safetensors)")
    if resumed and not _pretrained_found(options):
        return None
    path, adopted = _pretrained_architecture(options)
    defaults = SRGANOptions()
    set_otherwise = {name: "" for name in ARCHITECTURE_SETTINGS if getattr(options, name) != getattr(defaults, name)}
    _refuse_other_architecture(options, path, adopted, set_otherwise)
    for name, value in adopted.items():
        setattr(options, name, value)
    return path


def _pretrained_architecture(options: SRGANOptions) -> tuple[Path, dict]:
    """(model file, its generator's ARCHITECTURE_SETTINGS) of --pretrained, an srgan model."""
    from i2i.checkpoint import read_header

    path = _pretrained_path(options.pretrained)
    header = read_header(path)
    arch = dict(header.archs.get("G") or {})
    if header.pipeline != "srgan":
        raise UsageError(f"--pretrained {path} is a {header.pipeline} model, not an srgan generator")
    if arch.get("name") not in ARCHS:
        raise UsageError(f"--pretrained {path} is a {arch.get('name')} generator, which i2i runs but does not "
                         f"train (srgan trains {' and '.join(ARCHS)})")
    adopted = {"arch": arch["name"], "scale": int(arch.get("scale", 4)), "width": int(arch.get("width", 64)),
               "num_blocks": int(arch.get("num_blocks", 0)), "growth": int(arch.get("growth", options.growth)),
               "channels": int(arch.get("in_channels", 3))}
    return path, adopted


def _refuse_other_architecture(options: SRGANOptions, path: Path, adopted: dict, named: Mapping[str, str]) -> None:
    """An architecture flag (`named`: those the user set -> " in FILE" or "") against the
    pretrained generator's (`--scale 2` with an x4 model) is one line, not silently replaced;
    the others take the model's."""
    blocks = adopted["num_blocks"] or i2i.nn.defaults(adopted["arch"])["num_blocks"]
    effective = {**adopted, "num_blocks": blocks}
    asked = {name: where for name, where in named.items()
             if not (name == "num_blocks" and options.num_blocks == 0)}  # 0: the architecture's own (config.yaml's)
    clashes = [f"--{name.replace('_', '-')} {getattr(options, name)}{asked[name]}" for name, value in effective.items()
               if name in asked and getattr(options, name) != value]
    if clashes:
        model = (f"{adopted['arch']} x{adopted['scale']}, width {adopted['width']}, {blocks} blocks, "
                 f"{adopted['channels']} channels")
        raise UsageError(f"{', '.join(clashes)}: --pretrained {path} is {model}; the generator keeps its "
                         "architecture, so drop the flag or train from scratch")


def _layout(root: Path, options: SRGANOptions) -> tuple[Path, Path | None, list[str]]:
    """(HR folder, LR folder or None, notes): `lr_data`, DATA/HR + DATA/LR[/X<s>], DATA/B + DATA/A,
    or DATA. --degradation realesrgan reads no LR folder (its files would be read and unused)."""
    from i2i.data.datasets import sr_folders

    if not root.is_dir():
        raise I2IError(f"{root}/ does not exist or is not a folder")
    hr_root, lr_root = sr_folders(root, options.scale, options.lr_data or None,
                                   read_lr=options.degradation != "realesrgan")
    if options.degradation != "realesrgan" or lr_root is None:
        return hr_root, lr_root, []
    return hr_root, None, [f"note: {lr_root}/ is not read: --degradation realesrgan makes the LR images from "
                           f"{hr_root}/ (--degradation bicubic trains on the LR files)"]
