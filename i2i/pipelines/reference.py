"""What CycleGAN and pix2pix share from the reference code: its network and GAN options
(flags, defaults, the netD aliases) and how they become `i2i.nn.create` arguments."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from i2i.losses import GAN_MODES
from i2i.nn.init import INIT_SCHEMES
from i2i.nn.layers import NORMS
from i2i.spec import DIRECTIONS
from i2i.options import setting

# The reference's netD names, accepted as aliases of the i2i.nn names.
D_ALIASES = {"basic": "patchgan", "n_layers": "patchgan", "pixel": "pixelgan"}


def reference_networks(o: Any) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """The reference's network flags of CycleGAN and pix2pix options (width = ngf, ndf, norm,
    dropout, netD with its aliases, n_layers_D, init) as `i2i.nn.create` arguments:
    (generator kwargs, discriminator name, discriminator kwargs)."""
    init = {"init": o.init_type, "init_gain": o.init_gain}
    net_d = D_ALIASES.get(o.netD, o.netD)
    disc = {"width": o.ndf, "norm": o.norm, **init}
    if net_d == "patchgan":
        disc["n_layers"] = o.n_layers_D
    return {"width": o.width, "norm": o.norm, "dropout": o.dropout, **init}, net_d, disc


@dataclass
class ReferenceOptions:
    """The reference code's network and GAN options, shared by CycleGAN and pix2pix (pix2pix
    changes the defaults of netG, norm, dropout and gan_mode)."""

    netG: str = setting("resnet_9blocks", "Generator: resnet_9blocks, resnet_6blocks, unet_32/64/128/256.")
    netD: str = setting("patchgan", "Discriminator: patchgan (reference 'basic'/'n_layers') or pixelgan.")
    n_layers_D: int = setting(3, "PatchGAN depth.", at_least=1)
    width: int = setting(64, "Generator width (the reference's ngf).", at_least=1)
    ndf: int = setting(64, "Discriminator width.", at_least=1)
    norm: str = setting("instance", "Normalisation layers.", choices=NORMS)
    dropout: bool = setting(False, "Dropout in the generator.")
    gan_mode: str = setting("lsgan", "GAN objective.", choices=GAN_MODES)
    init_type: str = setting("normal", "Weight init scheme.", choices=INIT_SCHEMES)
    init_gain: float = setting(0.02, "Scale of the initial weights.", at_least=0)
    direction: str = setting("AtoB", "BtoA: translate the B images into A's (the same data, the other way).",
                             choices=DIRECTIONS)
    in_channels: int = setting(0, "Input channels of the generator (from the data: 1 where every file of "
                               "that side is gray, else 3).", shown="0: from the data", at_least=0)
    out_channels: int = setting(0, "Output channels of the generator (as --in-channels).", shown="0: from the data",
                                at_least=0)

    def channels(self) -> tuple[int, int]:
        """(in, out) channels of the generator (A -> B); 3 where the data has not said yet."""
        return self.in_channels or 3, self.out_channels or 3
