"""Training objectives shared by every pipeline: GAN losses, gradient penalty, pixel and
perceptual losses.

`GANLoss` reproduces the reference CycleGAN/pix2pix `networks.GANLoss` values exactly for
`vanilla`, `lsgan` and `wgangp` (checked against ../shared/golden/cyclegan) and adds `hinge`.
Unlike the reference, WGAN-GP here really applies its gradient penalty: a discriminator step
adds `criterion.penalty(netD, real, fake)`, which is zero for every other mode, so pipelines
write one line whatever the mode is.

The VGG19 perceptual loss reads its weights from a local file only; i2i never downloads.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2i.errors import I2IError, UsageError

__all__ = [
    "GANLoss",
    "gradient_penalty",
    "relativistic_loss",
    "l1",
    "charbonnier",
    "PixelLoss",
    "PerceptualLoss",
    "VGG19_LAYERS",
    "vgg19_weights_path",
    "save_random_vgg19",
]

GAN_MODES = ("vanilla", "lsgan", "wgangp", "hinge")


# ----------------------------------------------------------------------------- GAN losses


class GANLoss(nn.Module):
    """`GANLoss(mode)(prediction, target_is_real) -> scalar`, the reference's call.

    - `vanilla`: BCEWithLogits(prediction, label) mean (the original GAN, pix2pix default).
    - `lsgan`: MSE(prediction, label) mean (CycleGAN default).
    - `wgangp`: -mean(prediction) for real, +mean for fake; pair it with `penalty()`.
    - `hinge`: discriminator: mean(relu(1 - pred)) for real, mean(relu(1 + pred)) for fake;
      generator (`for_discriminator=False`): -mean(pred), whatever `target_is_real` says.

    Labels are buffers (1.0 / 0.0 by default) expanded to the prediction's shape, as in the
    reference. `for_discriminator` only changes `hinge`: the other modes are the same formula
    for both players (the generator calls them with `target_is_real=True`).
    """

    def __init__(
        self,
        mode: str = "lsgan",
        real_label: float = 1.0,
        fake_label: float = 0.0,
        gp_weight: float = 10.0,
        gp_kind: str = "mixed",
    ) -> None:
        super().__init__()
        if mode not in GAN_MODES:
            raise UsageError(f"unknown GAN mode {mode!r}; choose one of {', '.join(GAN_MODES)}")
        _check_gp_kind(gp_kind)
        self.mode = mode
        self.gp_weight = gp_weight
        self.gp_kind = gp_kind
        self.register_buffer("real_label", torch.tensor(real_label))
        self.register_buffer("fake_label", torch.tensor(fake_label))

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"

    def forward(self, prediction: Tensor, target_is_real: bool, for_discriminator: bool = True) -> Tensor:
        if self.mode in ("vanilla", "lsgan"):
            label = (self.real_label if target_is_real else self.fake_label).to(prediction)
            target = label.expand_as(prediction)
            if self.mode == "lsgan":
                return F.mse_loss(prediction, target)
            return F.binary_cross_entropy_with_logits(prediction, target)
        if self.mode == "wgangp":
            return -prediction.mean() if target_is_real else prediction.mean()
        # hinge
        if not for_discriminator:
            return -prediction.mean()
        if target_is_real:
            return F.relu(1.0 - prediction).mean()
        return F.relu(1.0 + prediction).mean()

    def penalty(self, netD: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        """What a discriminator step adds to its loss: the WGAN-GP gradient penalty
        (weight `gp_weight`, kind `gp_kind`) in `wgangp` mode, a zero scalar otherwise.

        Usage: `loss_D = 0.5 * (crit(D(real), True) + crit(D(fake), False)) + crit.penalty(D, real, fake)`.
        The penalty is not halved: its weight (10 in the WGAN-GP paper) is for the whole D loss.
        """
        if self.mode != "wgangp" or self.gp_weight <= 0:
            return real.new_zeros(())
        return gradient_penalty(netD, real, fake, kind=self.gp_kind, weight=self.gp_weight)[0]


_GP_KINDS = ("mixed", "real", "fake")


def _check_gp_kind(kind: str) -> None:
    if kind not in _GP_KINDS:
        raise UsageError(f"unknown gradient penalty kind {kind!r}; choose real, fake or mixed")


def gradient_penalty(
    netD: nn.Module,
    real: Tensor,
    fake: Tensor,
    kind: str = "mixed",
    constant: float = 1.0,
    weight: float = 10.0,
    alpha: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """WGAN-GP penalty `weight * mean((||grad_x D(x) + 1e-16||_2 - constant)^2)`, as the
    reference's `cal_gradient_penalty` computes it (the 1e-16 goes into every gradient element,
    not the norm), returning `(penalty, gradients)` with gradients flattened to (batch, -1).

    `x` is `real`, `fake` or, for `mixed`, `alpha * real + (1 - alpha) * fake` with one alpha per
    sample: `alpha` of shape (batch, 1) (or anything with batch elements), drawn with
    `torch.rand(batch, 1)` when not given, exactly as the reference draws it. Inputs are
    detached: the penalty regularises the discriminator only. The graph is kept
    (`create_graph=True`) so the penalty can be back-propagated into the discriminator.
    With `weight <= 0` the reference returns no gradients: `(0, None)` here too.
    """
    _check_gp_kind(kind)
    if weight <= 0:
        return real.new_zeros(()), None
    batch = real.shape[0]
    if kind == "real":
        x = real.detach()
    elif kind == "fake":
        x = fake.detach()
    else:
        if alpha is None:
            alpha = torch.rand(batch, 1, device=real.device)
        alpha = alpha.to(real).reshape(batch, 1).expand(batch, real[0].numel()).reshape(real.shape)
        x = alpha * real.detach() + (1 - alpha) * fake.detach()
    x = x.clone().requires_grad_(True)
    out = netD(x)
    (grad,) = torch.autograd.grad(out, x, grad_outputs=torch.ones_like(out), create_graph=True)
    grad = grad.reshape(batch, -1)
    penalty = ((grad + 1e-16).norm(2, dim=1) - constant).pow(2).mean() * weight
    return penalty, grad


def relativistic_loss(real_pred: Tensor, fake_pred: Tensor, for_discriminator: bool) -> Tensor:
    """Relativistic average GAN loss (ESRGAN), with BCEWithLogits as BasicSR computes it.

    Discriminator: 0.5 * [BCE(real - mean(fake), 1) + BCE(fake - mean(real), 0)]
    Generator:     0.5 * [BCE(real - mean(fake), 0) + BCE(fake - mean(real), 1)]
    Nothing is detached here; as BasicSR does, pass `real_pred.detach()` in the generator step
    and predictions on `fake.detach()` in the discriminator step. The adversarial weight
    (5e-3 in ESRGAN) is the caller's.
    """
    real_rel = real_pred - fake_pred.mean()
    fake_rel = fake_pred - real_pred.mean()
    real_target, fake_target = (1.0, 0.0) if for_discriminator else (0.0, 1.0)
    loss_real = F.binary_cross_entropy_with_logits(real_rel, torch.full_like(real_rel, real_target))
    loss_fake = F.binary_cross_entropy_with_logits(fake_rel, torch.full_like(fake_rel, fake_target))
    return 0.5 * (loss_real + loss_fake)


# ----------------------------------------------------------------------------- pixel losses


def l1(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error."""
    return F.l1_loss(pred, target)


def charbonnier(pred: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    """Charbonnier (smooth L1) loss `mean(sqrt((pred - target)^2 + eps^2))` (LapSRN, eps 1e-3).

    Note the convention: BasicSR's `charbonnier_loss(eps)` adds its eps unsquared,
    `sqrt(d^2 + eps)`, default 1e-12; that is `charbonnier(eps=1e-6)` here.
    """
    return torch.sqrt((pred - target).pow(2) + eps * eps).mean()


class PixelLoss(nn.Module):
    """`PixelLoss(kind)(pred, target)` with kind `l1`, `mse` or `charbonnier` (eps as above)."""

    KINDS = ("l1", "mse", "charbonnier")

    def __init__(self, kind: str = "l1", eps: float = 1e-3) -> None:
        super().__init__()
        if kind not in self.KINDS:
            raise UsageError(f"unknown pixel loss {kind!r}; choose one of {', '.join(self.KINDS)}")
        self.kind = kind
        self.eps = eps

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if self.kind == "l1":
            return F.l1_loss(pred, target)
        if self.kind == "mse":
            return F.mse_loss(pred, target)
        return charbonnier(pred, target, self.eps)


# ----------------------------------------------------------------------------- VGG19 perceptual

# torchvision's VGG19 `features` ("E" config): conv widths, "M" = 2x2 max pool.
_VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


def _layer_names() -> dict[str, int]:
    names, block, conv, index = {}, 1, 1, 0
    for v in _VGG19_CFG:
        if v == "M":
            names[f"pool{block}"] = index
            index, block, conv = index + 1, block + 1, 1
        else:
            names[f"conv{block}_{conv}"], names[f"relu{block}_{conv}"] = index, index + 1
            index, conv = index + 2, conv + 1
    return names


#: layer name -> index in torchvision's `vgg19().features` (conv5_4 = 34, relu5_4 = 35).
VGG19_LAYERS: dict[str, int] = _layer_names()

VGG19_ENV = "I2I_VGG19_WEIGHTS"
VGG19_DEFAULT = Path("~/.cache/i2i/vgg19-dcbb9e9d.pth")  # torchvision's file name


def _vgg19_features(last: int = len(VGG19_LAYERS) - 1) -> nn.Sequential:
    """torchvision's `vgg19().features[: last + 1]`, built without the 120M-parameter
    classifier; same modules at the same indices, so the state-dict keys are identical."""
    layers: list[nn.Module] = []
    in_ch = 3
    for v in _VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_ch, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_ch = v
    return nn.Sequential(*layers[: last + 1])


def vgg19_weights_path(weights_path: str | os.PathLike | None = None) -> Path:
    """Where the VGG19 weights are read from: the argument, else $I2I_VGG19_WEIGHTS, else
    ~/.cache/i2i/vgg19-dcbb9e9d.pth (torchvision's name, so its cached file can be copied)."""
    chosen = weights_path or os.environ.get(VGG19_ENV) or VGG19_DEFAULT
    return Path(chosen).expanduser()


def _load_vgg19_state(path: Path, features: nn.Sequential) -> None:
    """Fill `features` from a torchvision-format VGG19 state dict (`features.N.weight`;
    classifier keys and deeper layers are ignored). Every problem is a one-line I2IError."""
    if not path.is_file():
        raise I2IError(
            f"VGG19 weights not found at {path}: pass weights_path, set ${VGG19_ENV}, or copy "
            f"torchvision's vgg19-dcbb9e9d.pth there (i2i never downloads them)"
        )
    from i2i.importers import read_state_dict

    state = read_state_dict(path)  # corrupt, truncated, pickled code, not a dict: one line
    wanted = {}
    for key, param in features.state_dict().items():
        value = state.get(f"features.{key}")
        if not isinstance(value, Tensor):
            raise I2IError(f"VGG19 weights {path} lack 'features.{key}': not a torchvision VGG19 state dict")
        if value.shape != param.shape:
            raise I2IError(
                f"VGG19 weights {path}: 'features.{key}' has shape {tuple(value.shape)}, "
                f"expected {tuple(param.shape)}"
            )
        wanted[key] = value
    features.load_state_dict(wanted, strict=True)


class PerceptualLoss(nn.Module):
    """Distance between frozen VGG19 features of prediction and target (SRGAN / ESRGAN).

    `layer` is a name of `VGG19_LAYERS`. With `before_activation=True` (ESRGAN, BasicSR's
    `conv5_4`) a `convX_Y` layer is taken before its ReLU; `False` moves it to `reluX_Y`
    (the original SRGAN "VGG54"). Inputs in `input_range` (e.g. (-1, 1) for i2i images) are
    mapped to [0, 1] and normalised with ImageNet mean/std, as torchvision's weights expect.
    The VGG is frozen and always in eval mode; the target's features carry no gradient.
    Weights: see `vgg19_weights_path`; `save_random_vgg19` writes a stand-in for tests.
    """

    CRITERIA = ("l1", "mse")

    def __init__(
        self,
        weights_path: str | os.PathLike | None = None,
        layer: str = "conv5_4",
        before_activation: bool = True,
        criterion: str = "l1",
        input_range: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        super().__init__()
        if layer not in VGG19_LAYERS:
            raise UsageError(f"unknown VGG19 layer {layer!r}; e.g. conv5_4, relu5_4, conv2_2, pool4")
        if criterion not in self.CRITERIA:
            raise UsageError(f"unknown perceptual criterion {criterion!r}; choose l1 or mse")
        if layer.startswith("conv") and not before_activation:
            layer = "relu" + layer[4:]
        self.layer, self.criterion = layer, criterion
        self.input_range = (float(input_range[0]), float(input_range[1]))
        self.vgg = _vgg19_features(VGG19_LAYERS[layer])
        _load_vgg19_state(vgg19_weights_path(weights_path), self.vgg)
        self.vgg.requires_grad_(False)
        self.vgg.eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def extra_repr(self) -> str:
        return f"layer={self.layer!r}, criterion={self.criterion!r}, input_range={self.input_range}"

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.vgg.eval()  # a loss network never leaves eval mode
        return self

    def features(self, x: Tensor) -> Tensor:
        lo, hi = self.input_range
        x = (x - lo) / (hi - lo)
        return self.vgg((x - self.mean) / self.std)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        with torch.no_grad():
            target_features = self.features(target.detach())
        pred_features = self.features(pred)
        if self.criterion == "l1":
            return F.l1_loss(pred_features, target_features)
        return F.mse_loss(pred_features, target_features)


def save_random_vgg19(path: str | os.PathLike, seed: int = 0, layer: str | None = None) -> Path:
    """Write a randomly initialised VGG19 in torchvision's key format (`features.N.weight`/
    `.bias` only; the classifier is not needed) to `path` (`.safetensors` or `.pth`).

    A stand-in for the real ImageNet weights in tests and smoke runs. Init is torchvision's
    (kaiming normal, fan_out, zero bias) from `seed`, without touching the global RNG.
    `layer` keeps only the layers up to that one (smaller files for shallow tests).
    """
    path = Path(path)
    last = VGG19_LAYERS[layer] if layer else len(VGG19_LAYERS) - 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        features = _vgg19_features(last)
        for m in features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
    state = {f"features.{k}": v.contiguous() for k, v in features.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path
