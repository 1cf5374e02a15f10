"""CycleGAN (Zhu et al. 2017): unpaired translation A <-> B with cycle consistency.

Two generators (G_A: A -> B, G_B: B -> A), two PatchGAN discriminators (D_A judges B
images, D_B judges A images), LSGAN, cycle weight 10 both ways, identity 0.5, a pool of 50
past fakes for the discriminators: the reference's defaults. One `step` is the reference's
`optimize_parameters()` operation for operation (checked against ../shared/golden/cyclegan).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from i2i.errors import UsageError
from i2i.pipelines import Pipeline
from i2i.pipelines.reference import ReferenceOptions, reference_networks
from i2i.spec import DIRECTIONS, ModelSpec, SizeRequirements
from i2i.options import setting

@dataclass
class CycleGANOptions(ReferenceOptions):
    lambda_A: float = setting(10.0, "Cycle loss weight A -> B -> A.", at_least=0)
    lambda_B: float = setting(10.0, "Cycle loss weight B -> A -> B.", at_least=0)
    lambda_identity: float = setting(0.5, "Identity loss, relative to the cycle weights.", at_least=0)
    pool_size: int = setting(50, "Fake-image pool of the discriminators.", at_least=0)


class ImagePool:
    """The reference's history of generated images (Shrivastava et al.): the first
    `size` images are returned as they come; after that each is, with probability 1/2,
    swapped for a random stored one (Python's `random`, as the reference)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                i = random.randint(0, self.size - 1)
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {"images": [image.cpu() for image in self.images]}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.images = [image.to(device) for image in state["images"]]


class CycleGAN(Pipeline):
    name = "cyclegan"
    cli_help = """Unpaired translation: DATA/trainA and DATA/trainB.

    Defaults are the reference's: resnet_9blocks, instance norm, LSGAN, 286 -> 256 crops.
    """
    Options = CycleGANOptions
    model_options = ("netG", "netD", "n_layers_D", "width", "ndf", "norm", "dropout", "in_channels", "out_channels")
    monitor = "G"
    sample_columns = ("real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B")
    unpaired = True  # each domain gets its own random flips

    @classmethod
    def build_dataset(cls, options: CycleGANOptions, config):
        from i2i.data.augment import cpu_transform
        from i2i.data.datasets import UnpairedDataset

        if options.direction not in DIRECTIONS:
            raise UsageError(f"direction must be AtoB or BtoA, got {options.direction!r}")
        transform = cpu_transform(config.preprocess, config.resolved_load_size(), config.image_size)
        # in/out channels are the generator G_A's (0: from the data), which the trainer reads
        # back from the dataset; with BtoA its input is the trainB folder, loaded with in_channels
        return UnpairedDataset(config.data, "train", transform, config.serial_batches, options.in_channels,
                               options.out_channels, direction=options.direction)

    def __init__(self, options: CycleGANOptions, config, device: torch.device, **run) -> None:
        super().__init__(options, config, device, **run)
        o = options
        c_in, c_out = o.channels()
        if o.lambda_identity > 0 and c_in != c_out:
            raise UsageError(f"the identity loss needs as many input as output channels ({c_in} vs {c_out}); "
                             "use --lambda-identity 0")
        gen, net_d, disc = reference_networks(o)
        self.G_A = self.create(o.netG, in_channels=c_in, out_channels=c_out, **gen)
        self.G_B = self.create(o.netG, in_channels=c_out, out_channels=c_in, **gen)
        self.D_A = self.create(net_d, in_channels=c_out, **disc)
        self.D_B = self.create(net_d, in_channels=c_in, **disc)
        self.networks = {"G_A": self.G_A, "G_B": self.G_B, "D_A": self.D_A, "D_B": self.D_B}
        self.optimizers = {"G": self.adam(self.G_A, self.G_B), "D": self.adam(self.D_A, self.D_B)}
        from i2i.losses import GANLoss

        self.gan = GANLoss(o.gan_mode).to(device)
        self.fake_A_pool = ImagePool(o.pool_size)
        self.fake_B_pool = ImagePool(o.pool_size)

    def _inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = ("A", "B") if self.options.direction == "AtoB" else ("B", "A")
        return self.to_model_range(batch[a]), self.to_model_range(batch[b])

    def step(self, batch: dict) -> dict[str, torch.Tensor]:
        o, gan, scaler = self.options, self.gan, self.scaler
        G_A, G_B, D_A, D_B = self.G_A, self.G_B, self.D_A, self.D_B
        opt_G, opt_D = self.optimizers["G"], self.optimizers["D"]
        real_A, real_B = self._inputs(batch)
        with self.autocast():
            fake_B = G_A(real_A)
            rec_A = G_B(fake_B)
            fake_A = G_B(real_B)
            rec_B = G_A(fake_A)

        # generators, with the discriminators frozen
        self.set_requires_grad([D_A, D_B], False)
        opt_G.zero_grad()
        with self.autocast():
            if o.lambda_identity > 0:
                loss_idt_A = F.l1_loss(G_A(real_B), real_B) * o.lambda_B * o.lambda_identity
                loss_idt_B = F.l1_loss(G_B(real_A), real_A) * o.lambda_A * o.lambda_identity
            else:
                loss_idt_A = loss_idt_B = real_A.new_zeros(())
            loss_G_A = gan(D_A(self.d_input(fake_B)), True, for_discriminator=False)
            loss_G_B = gan(D_B(self.d_input(fake_A)), True, for_discriminator=False)
            loss_cycle_A = F.l1_loss(rec_A, real_A) * o.lambda_A
            loss_cycle_B = F.l1_loss(rec_B, real_B) * o.lambda_B
            loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
        scaler.scale(loss_G).backward()
        scaler.step(opt_G)

        # discriminators, on fakes from the generators before their update (through the pools)
        self.set_requires_grad([D_A, D_B], True)
        opt_D.zero_grad()
        with self.autocast():
            pooled_B, seen_B = self.d_input(self.fake_B_pool.query(fake_B.detach())), self.d_input(real_B)
            loss_D_A = 0.5 * (gan(D_A(seen_B), True) + gan(D_A(pooled_B), False)) + gan.penalty(D_A, seen_B, pooled_B)
        scaler.scale(loss_D_A).backward()
        with self.autocast():
            pooled_A, seen_A = self.d_input(self.fake_A_pool.query(fake_A.detach())), self.d_input(real_A)
            loss_D_B = 0.5 * (gan(D_B(seen_A), True) + gan(D_B(pooled_A), False)) + gan.penalty(D_B, seen_A, pooled_A)
        scaler.scale(loss_D_B).backward()
        scaler.step(opt_D)

        losses = {"G_A": loss_G_A, "G_B": loss_G_B, "cycle_A": loss_cycle_A, "cycle_B": loss_cycle_B,
                  "idt_A": loss_idt_A, "idt_B": loss_idt_B, "D_A": loss_D_A, "D_B": loss_D_B, "G": loss_G}
        return {k: v.detach() for k, v in losses.items()}

    def sample(self, batch: dict) -> list[torch.Tensor]:
        real_A, real_B = self._inputs(batch)
        with self.autocast():
            fake_B = self.G_A(real_A)
            rec_A = self.G_B(fake_B)
            fake_A = self.G_B(real_B)
            rec_B = self.G_A(fake_A)
        return [self.to_image_range(x) for x in (real_A, fake_B, rec_A, real_B, fake_A, rec_B)]

    def inference_networks(self) -> dict[str, torch.nn.Module]:
        return {"G_A": self.G_A, "G_B": self.G_B}

    def model_spec(self) -> ModelSpec:
        # G_A translates the folder named by the direction's first letter into the other one,
        # and is the generator trained for the run's direction (the reference's fake_B)
        swap = self.options.direction == "BtoA"
        atob = self.G_B if swap else self.G_A
        return ModelSpec(
            pipeline=self.name, directions={"AtoB": "G_B", "BtoA": "G_A"} if swap else {"AtoB": "G_A", "BtoA": "G_B"},
            default_direction=self.options.direction, in_channels=atob.in_channels, out_channels=atob.out_channels,
            size=SizeRequirements(multiple=atob.size_multiple))

    def state_dict(self) -> dict:
        return {**super().state_dict(), "fake_A_pool": self.fake_A_pool.state_dict(),
                "fake_B_pool": self.fake_B_pool.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)  # --diffaug's RNG
        self.fake_A_pool.load_state_dict(state["fake_A_pool"], self.device)
        self.fake_B_pool.load_state_dict(state["fake_B_pool"], self.device)
