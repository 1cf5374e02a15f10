"""pix2pix (Isola et al. 2017): paired translation with a conditional GAN and L1.

A U-Net generator and a PatchGAN that judges (input, output) pairs concatenated on the
channel axis; vanilla GAN loss, L1 weight 100, batch norm, dropout in the generator: the
reference's defaults. One `step` is the reference's `optimize_parameters()`: D first
(fake pair, then real pair, loss * 0.5), then G against the updated D (checked against
../shared/golden/cyclegan).

Data: a paired layout (side-by-side AB images in train/, or A/ and B/ matched by name),
or a plain folder of photos with `task` deriving the pairs: `colorize` (gray -> colour),
`colorize_lab` (the reference's colorization model: L -> ab in Lab), `sketch`
(photo -> pencil sketch).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from i2i.errors import UsageError
from i2i.pipelines import Pipeline
from i2i.pipelines.reference import ReferenceOptions, reference_networks
from i2i.spec import ModelSpec, SizeRequirements
from i2i.options import setting, with_default

TASKS = ("", "colorize", "colorize_lab", "sketch")


@dataclass
class Pix2PixOptions(ReferenceOptions):
    netG: str = with_default(ReferenceOptions, "netG", "unet_256")
    norm: str = with_default(ReferenceOptions, "norm", "batch")
    dropout: bool = with_default(ReferenceOptions, "dropout", True)  # the reference's (no --no_dropout)
    gan_mode: str = with_default(ReferenceOptions, "gan_mode", "vanilla")
    lambda_L1: float = setting(100.0, "L1 weight.", at_least=0)
    task: str = setting("", "Derive pairs from a plain photo folder: gray->colour, Lab L->ab, photo->sketch.",
                        choices=TASKS)


class Pix2Pix(Pipeline):
    name = "pix2pix"
    cli_help = """Paired translation: DATA/train (side-by-side AB) or DATA/A + DATA/B, or --task on photos.

    Defaults are the reference's: unet_256, batch norm, dropout, vanilla GAN, L1 100.
    Small crops: --netG unet_32 --image-size 32.
    """
    Options = Pix2PixOptions
    model_options = ("netG", "netD", "n_layers_D", "width", "ndf", "norm", "dropout", "task",
                     "in_channels", "out_channels")
    monitor = "G"
    sample_columns = ("input", "output", "target")

    @classmethod
    def build_dataset(cls, options: Pix2PixOptions, config):
        from i2i.data.augment import cpu_transform
        from i2i.data.datasets import DerivedDataset, PairedDataset

        if options.task not in TASKS:
            raise UsageError(f"unknown task {options.task!r}; choose colorize, colorize_lab or sketch")
        transform = cpu_transform(config.preprocess, config.resolved_load_size(), config.image_size)
        if options.task:
            if options.direction != "AtoB":
                raise UsageError(f"--task {options.task} sets the direction; drop --direction {options.direction}")
            for side, made in zip(("in_channels", "out_channels"), DerivedDataset.CHANNELS[options.task]):
                wanted = getattr(options, side)
                if wanted and wanted != made:  # a flag, a settings file, or a resumed run's config.yaml
                    raise UsageError(f"--task {options.task} makes models of {made} {side.split('_')[0]}put "
                                     f"channel{'s' * (made > 1)}, not --{side.replace('_', '-')} {wanted}: drop that "
                                     "setting (a resumed run keeps its own task)")
            return DerivedDataset(config.data, options.task, transform)
        return PairedDataset(config.data, "train", transform, options.direction,  # 0: from the data
                             options.in_channels, options.out_channels)

    def __init__(self, options: Pix2PixOptions, config, device: torch.device, **run) -> None:
        super().__init__(options, config, device, **run)
        o = options
        c_in, c_out = o.channels()
        gen, net_d, disc = reference_networks(o)
        self.G = self.create(o.netG, in_channels=c_in, out_channels=c_out, **gen)
        self.D = self.create(net_d, in_channels=c_in + c_out, **disc)
        self.networks = {"G": self.G, "D": self.D}
        self.optimizers = {"G": self.adam(self.G), "D": self.adam(self.D)}
        from i2i.losses import GANLoss

        self.gan = GANLoss(o.gan_mode).to(device)

    def step(self, batch: dict) -> dict[str, torch.Tensor]:
        gan, scaler, G, D = self.gan, self.scaler, self.G, self.D
        opt_G, opt_D = self.optimizers["G"], self.optimizers["D"]
        real_A, real_B = self.to_model_range(batch["A"]), self.to_model_range(batch["B"])
        with self.autocast():
            fake_B = G(real_A)

        # discriminator: the fake pair first, then the real one (order matters for BatchNorm)
        self.set_requires_grad([D], True)
        opt_D.zero_grad()
        groups = (real_A.shape[1], real_B.shape[1])  # --diffaug: one geometry on both, colour per part
        with self.autocast():
            fake_AB = torch.cat((real_A, fake_B), 1)
            real_AB = torch.cat((real_A, real_B), 1)
            seen_fake, seen_real = self.d_input(fake_AB.detach(), groups), self.d_input(real_AB, groups)
            loss_D_fake = gan(D(seen_fake), False)
            loss_D_real = gan(D(seen_real), True)
            loss_D = (loss_D_fake + loss_D_real) * 0.5 + gan.penalty(D, seen_real, seen_fake)
        scaler.scale(loss_D).backward()
        scaler.step(opt_D)

        # generator, against the updated discriminator
        self.set_requires_grad([D], False)
        opt_G.zero_grad()
        with self.autocast():
            loss_G_GAN = gan(D(self.d_input(fake_AB, groups)), True, for_discriminator=False)
            loss_G_L1 = F.l1_loss(fake_B, real_B) * self.options.lambda_L1
            loss_G = loss_G_GAN + loss_G_L1
        scaler.scale(loss_G).backward()
        scaler.step(opt_G)

        losses = {"G_GAN": loss_G_GAN, "G_L1": loss_G_L1, "D_real": loss_D_real, "D_fake": loss_D_fake,
                  "D": loss_D, "G": loss_G}
        return {k: v.detach() for k, v in losses.items()}

    def sample(self, batch: dict) -> list[torch.Tensor]:
        # the generator in train mode, as the reference's test.py runs it (BatchNorm on the
        # batch's own statistics); the trainer restores BN statistics and RNG afterwards
        with self.autocast():
            fake = self.to_image_range(self.G(self.to_model_range(batch["A"])))
        real_A, real_B = batch["A"].float(), batch["B"].float()
        if self.options.task == "colorize_lab":
            from i2i.data.color import lab_to_rgb

            return [real_A, lab_to_rgb(real_A, fake), lab_to_rgb(real_A, real_B)]
        return [real_A, fake, real_B]

    def inference_networks(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G}

    def model_spec(self) -> ModelSpec:
        o = self.options
        return ModelSpec(
            pipeline=self.name, directions={o.direction: "G"}, default_direction=o.direction,
            in_channels=self.G.in_channels, out_channels=self.G.out_channels,
            size=SizeRequirements(multiple=self.G.size_multiple),
            task=o.task or None, color_space="lab" if o.task == "colorize_lab" else "rgb",
            test_mode="train")  # the paper and the reference's test.py run G as in training
