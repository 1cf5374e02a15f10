"""Import foreign generator checkpoints: recognise the architecture from keys and shapes.

Recognised layouts (state dicts as their own code saves them):

- junyanz pytorch-CycleGAN-and-pix2pix `*_net_G*.pth`: ResnetGenerator (6 / 9 blocks) and
  UnetGenerator (5-8 levels: unet_32 ... unet_256); i2i's networks use its key names.
- BasicSR / Real-ESRGAN: MSRResNet (`srresnet`) and RRDBNet (`rrdbnet`), in `params_ema`
  (preferred, the weights BasicSR tests with) or `params`, with or without DataParallel's
  `module.` prefix; the original ESRGAN layout (`model.1.sub.N.RDB1.conv1.0.weight`, as in
  RRDB_ESRGAN_x4.pth), renamed to RRDBNet's keys.
- Real-ESRGAN's SRVGGNetCompact (`srvggnet_compact`, keys `body.N`).

Whatever the keys cannot say (reflect vs replicate padding, U-Net dropout, the test mode the
weights were meant for) is taken from the reference's defaults and listed as "assumed"; what
they do say is listed as "inferred". Nor can the keys say which way a CycleGAN/pix2pix generator
translates: the reference's file name (`*_net_G_B.pth`: CycleGAN's B->A generator) and its run's
`train_opt.txt` beside it (`direction: BtoA`) can, else AtoB is assumed; `direction=` overrides.
Files are read with `torch.load(weights_only=True)` or safetensors only: no code in a file ever
runs, and any file that is not one of these layouts is one I2IError line naming it.
"""
from __future__ import annotations

import math
import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from i2i.errors import I2IError, UsageError, one_line
from i2i.spec import DIRECTIONS, ModelSpec, spec_for_network

#: The architectures `import_checkpoint(arch=...)` accepts (i2i.nn registry names).
ARCHS = ("resnet_6blocks", "resnet_9blocks", "unet_32", "unet_64", "unet_128", "unet_256",
         "srresnet", "rrdbnet", "srvggnet_compact")
_UNETS = {5: "unet_32", 6: "unet_64", 7: "unet_128", 8: "unet_256"}
_WRAPPERS = ("params_ema", "params", "state_dict")

State = dict[str, torch.Tensor]


@dataclass
class ImportResult:
    """An imported generator: `networks` ({"G": net}, eval mode), its model contract, and
    notes, each starting "inferred:" or "assumed:"."""

    networks: dict[str, nn.Module]
    spec: ModelSpec
    notes: list[str] = field(default_factory=list)

    @property
    def arch(self) -> dict:
        """The generator's i2i.nn architecture: {"name": ..., options...}."""
        return dict(self.networks["G"].arch)

    def save(self, path: str | Path) -> None:
        """Write it as an i2i model file (atomically)."""
        from i2i.checkpoint import save_model

        save_model(path, self.networks, self.spec)


def import_checkpoint(path: Path, arch: str | None = None, direction: str | None = None) -> ImportResult:
    """Read a foreign generator checkpoint and rebuild it as an i2i network and model spec.

    `arch` (one of ARCHS) makes the import fail unless the file is that architecture.
    `direction` ("AtoB" / "BtoA"): the way a CycleGAN/pix2pix generator translates, which its
    keys cannot tell (so `--ab-split` feeds the half it was trained on); None: from the file.
    """
    path = Path(path)
    if arch is not None and arch not in ARCHS:
        raise I2IError(f"unknown architecture {arch!r} to import; one of: {', '.join(ARCHS)}")
    if direction is not None and direction not in DIRECTIONS:
        raise UsageError(f"direction must be AtoB or BtoA, not {direction!r}")
    notes: list[str] = []
    state = read_state_dict(path, notes)
    try:
        options, fields = _recognise(state, notes)
    except _Mismatch as error:
        raise I2IError(f"{path}: {error}") from None
    if arch is not None and options["name"] != arch:
        raise I2IError(f"{path}: holds a {options['name']}, not the {arch} asked for")
    if fields["pipeline"] == "srgan":
        if direction is not None:
            raise UsageError(f"{path}: a {options['name']} upscaler has no direction "
                             "(AtoB / BtoA are for CycleGAN and pix2pix generators)")
    else:
        chosen = direction or _direction_of(path, notes)
        fields.update(directions={chosen: "G"}, default_direction=chosen)
    return _build(path, options, fields, state, notes)


def load_generator(net: nn.Module, state: State, fields: Mapping[str, Any], mismatch: str,
                   notes: list[str] | None = None) -> ImportResult:
    """`net` holding `state`, with a model contract of the network's own channels, scale and size
    multiple and `fields` (ModelSpec fields, JSON values welcome): the one place a foreign state
    dict becomes an i2i generator, for `i2i import` (architecture inferred) and `i2i models pull`
    (architecture from the registry, nothing guessed).

    Loading is strict, forgiving only what the reference's own loader forgives: InstanceNorm
    running statistics and counters saved by PyTorch < 0.4 (its `__patch_instance_norm_state_dict`
    drops them; the published CycleGAN generators hold them, see its issues #262 and #318) and
    BatchNorm counters missing from files older than PyTorch 0.4.1 (PyTorch adds them). Anything
    else that does not fit is one I2IError line: `mismatch` (what PyTorch says).
    """
    notes = [] if notes is None else notes
    expected = net.state_dict()
    state = _drop_old_instance_stats(state, expected, notes)
    for key, value in expected.items():
        if key.endswith(".num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise I2IError(f"{mismatch} ({one_line(error, 300)})") from None
    spec = ModelSpec.from_dict({**spec_for_network(net).to_dict(), **fields})
    return ImportResult({"G": net.eval()}, spec, notes)


# ----------------------------------------------------------------------------- reading


def read_state_dict(path: Path, notes: list[str] | None = None) -> State:
    """A flat {key: tensor} from a `.pth` (weights_only) or safetensors file, unwrapped from
    BasicSR's params_ema / params and DataParallel's `module.`; one I2IError line otherwise."""
    notes = [] if notes is None else notes
    if path.is_dir():
        raise I2IError(_folder_message(path))
    if not path.exists():
        raise I2IError(f"{path}: file not found")
    if not path.is_file():  # it exists (a FIFO, socket or device): opening a FIFO would block
        raise I2IError(f"{path}: not a regular file (a pipe, socket or device), not a checkpoint file")
    with open(path, "rb") as f:
        head = f.read(9)
    if not head:
        raise I2IError(f"{path}: the file is empty")
    state = _read_safetensors(path) if path.suffix == ".safetensors" or head[8:9] == b"{" else _read_torch(path)
    if isinstance(state, dict):
        for wrapper in _WRAPPERS:
            if isinstance(state.get(wrapper), dict):
                others = [w for w in _WRAPPERS if w != wrapper and w in state]
                notes.append(f"inferred: weights from '{wrapper}'" + (f" (also holds {', '.join(others)})" if others else ""))
                state = state[wrapper]
                break
    if not isinstance(state, dict):
        raise I2IError(f"{path}: not a state dict (it holds a {type(state).__name__})")
    if not state:
        raise I2IError(f"{path}: the state dict is empty")
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        shown = ", ".join(repr(k)[:40] for k in bad[:3])
        raise I2IError(f"{path}: not a bare state dict: {shown} {'is' if len(bad) == 1 else 'are'} not tensors "
                       f"(a training checkpoint? top-level keys: {', '.join(repr(k)[:40] for k in list(state)[:6])})")
    if all(k.startswith("module.") for k in state):
        notes.append("inferred: DataParallel's 'module.' prefix removed")
        state = {k[len("module."):]: v for k, v in state.items()}
    halves = {v.dtype for v in state.values() if v.is_floating_point() and v.dtype != torch.float32}
    if halves:
        notes.append(f"inferred: weights stored as {', '.join(sorted(str(d).removeprefix('torch.') for d in halves))}; "
                     "imported as float32")
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def _folder_message(path: Path) -> str:
    """What to say for a run folder given where its generator file is wanted: the files to pick."""
    found = sorted(p.name for p in path.glob("*_net_G*.pth") if p.is_file())
    shown = ", ".join(found[:8]) + (f", ... ({len(found)} in all)" if len(found) > 8 else "")
    return (f"{path}: a folder, not a checkpoint file; give one of its *_net_G*.pth files "
            + (f"({shown})" if found else "(it holds none)"))


def _read_safetensors(path: Path) -> State:
    from safetensors import safe_open

    from i2i.checkpoint import MODEL_FORMAT

    try:
        with safe_open(str(path), "pt") as f:
            if (f.metadata() or {}).get("format") == MODEL_FORMAT:
                raise UsageError(f"{path}: already an i2i model file; use it as it is (nothing to import)")
            return {key: f.get_tensor(key) for key in f.keys()}
    except I2IError:
        raise
    except Exception as error:  # safetensors raises its own error types for a bad header or data
        raise I2IError(f"{path}: broken safetensors file ({one_line(error, 200)})") from None


def _read_torch(path: Path) -> object:
    """torch.load with weights_only=True; its long errors turned into what they mean."""
    try:
        with warnings.catch_warnings():  # torch's warnings about odd pickles come before our one line
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        text = one_line(error)
        refused = re.search(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL) ([\w.]+)", text)
        if refused:
            reason = (f"refused: loading it would import {refused.group(1)} (a pickle that runs code or builds "
                      "objects; i2i reads weights only)")
        elif "PytorchStreamReader" in text or "zip archive" in text or isinstance(error, EOFError):
            reason = "truncated or corrupt PyTorch file"
        elif isinstance(error, (pickle.UnpicklingError, KeyError, ValueError)):
            reason = "not a PyTorch weights file (unreadable as a weights-only checkpoint)"
        else:
            reason = f"cannot read it ({one_line(error, 200, typed=True)})"
        raise I2IError(f"{path}: {reason}") from None


# ----------------------------------------------------------------------------- recognising


class _Mismatch(Exception):
    """The keys look like a known layout but something does not fit (message: what)."""


def _recognise(state: State, notes: list[str]) -> tuple[dict, dict]:
    """(i2i architecture {"name", options}, ModelSpec fields) for a state dict; `state` is
    renamed in place for the old ESRGAN layout."""
    if "model.1.sub.0.RDB1.conv1.0.weight" in state:
        state.update(_from_old_esrgan(state))
        notes.append("inferred: original ESRGAN key layout (model.1.sub.N.RDBk), renamed to RRDBNet's")
    if any(re.fullmatch(r"model\.\d+\.conv_block\..+", k) for k in state):
        return _resnet(state, notes)
    if "model.model.0.weight" in state:
        return _unet(state, notes)
    if "conv_first.weight" in state and "body.0.rdb1.conv1.weight" in state:
        return _rrdbnet(state, notes)
    if "conv_first.weight" in state and "upconv1.weight" in state:
        return _srresnet(state, notes)
    if all(re.fullmatch(r"body\.\d+\.(weight|bias)", k) for k in state):
        return _srvgg(state, notes)
    keys = list(state)
    raise _Mismatch("not a generator i2i can import: its keys fit none of the reference CycleGAN/pix2pix "
                    "ResNet or U-Net, BasicSR MSRResNet / RRDBNet, original ESRGAN or Real-ESRGAN "
                    f"SRVGGNetCompact layouts (keys: {', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''})")


def _shape(state: State, key: str) -> torch.Size:
    if key not in state:
        raise _Mismatch(f"tensor {key} is missing")
    return state[key].shape


def _indices(state: State, pattern: str) -> list[int]:
    """The sorted distinct integers captured by `pattern`'s group 1 over the keys."""
    return sorted({int(m.group(1)) for k in state if (m := re.fullmatch(pattern, k))})


def _norm(state: State, norm_key: str, conv_bias_key: str) -> str:
    """The reference's norm from what it leaves in a state dict. Running statistics without
    affine weights are InstanceNorm's from PyTorch < 0.4 (the reference's published CycleGAN
    generators hold them; its loader drops them): instance, and `load_generator` drops them."""
    if f"{norm_key}.running_mean" in state:
        return "batch" if f"{norm_key}.weight" in state else "instance"
    return "instance" if conv_bias_key in state else "none"


def _drop_old_instance_stats(state: State, expected: State, notes: list[str]) -> State:
    """Without the running statistics and counters of old InstanceNorm layers (as the
    reference's `__patch_instance_norm_state_dict` does when it loads them): those the network
    has no place for, of a layer without weights (affine-less InstanceNorm; BatchNorm has them)."""
    stats = (".running_mean", ".running_var", ".num_batches_tracked")
    old = {k for k in state
           if k.endswith(stats) and k not in expected and k.rsplit(".", 1)[0] + ".weight" not in state}
    if old:
        notes.append(f"inferred: {len(old)} InstanceNorm running statistics from PyTorch < 0.4, dropped "
                     "as the reference's loader does")
    return {k: v for k, v in state.items() if k not in old}


_NORM_EVIDENCE = {"batch": "BatchNorm running statistics", "instance": "biased convs, no norm weights",
                  "none": "no norm weights, unbiased convs"}

# The reference's ResnetBlock: (first conv index, second conv index) -> (padding, dropout)
_BLOCK_LAYOUTS = {(1, 5): ("reflect", False), (1, 6): ("reflect", True), (0, 3): ("zero", False), (0, 4): ("zero", True)}


# The reference's generator files: <epoch>_net_G.pth (pix2pix, or CycleGAN's --model test) and
# <epoch>_net_G_A.pth / _net_G_B.pth (CycleGAN: G_A translates A to B, G_B back); in any case
# (latest_net_G_B.PTH) and with the suffix a browser or file manager gives a second copy of a
# file ("latest_net_G_B (1).pth", "latest_net_G_B-1.pth"), which leaves it the same run's file
_GENERATOR_FILE = re.compile(r"(?:.+_)?net_G(?:_([AB]))?(?: \(\d+\)|-\d+)?\.pth", re.IGNORECASE)
_OTHER = {"AtoB": "BtoA", "BtoA": "AtoB"}


def _direction_of(path: Path, notes: list[str]) -> str:
    """The way a reference generator file translates. A run trained with --direction BtoA reads
    its A images from the B side, so G (and G_A) translate BtoA and G_B AtoB: its train_opt.txt,
    beside the file, says which; without it, the name (G_B: BtoA) or the default AtoB."""
    named = _GENERATOR_FILE.fullmatch(path.name)
    side = named.group(1).upper() if named and named.group(1) else None
    trained = _trained_direction(path.parent / "train_opt.txt") if named else None
    if trained is not None:
        direction = _OTHER[trained] if side == "B" else trained
        notes.append(f"inferred: direction {direction} (its run's train_opt.txt: direction {trained}"
                     + (", and G_B translates back)" if side == "B" else ")"))
        return direction
    if side is not None:
        direction = "AtoB" if side == "A" else "BtoA"
        notes.append(f"inferred: direction {direction} (file name: CycleGAN's G_{side}; a run trained with "
                     "--direction BtoA swaps them: then pass --direction)")
        return direction
    notes.append("assumed: direction AtoB (the reference's default); pass --direction BtoA for a model trained "
                 "BtoA, as the reference's facades_label2photo, map2sat and day2night")
    return "AtoB"


def _trained_direction(options_file: Path) -> str | None:
    """`direction` from the options file the reference writes into a run's checkpoint folder."""
    try:
        text = options_file.read_text(errors="replace")
    except OSError:
        return None
    found = re.search(r"^\s*direction:\s*(AtoB|BtoA)\b", text, re.M)
    return found.group(1) if found else None


def _translation_fields(pipeline: str, norm: str, dropout: bool, notes: list[str]) -> dict:
    """Spec fields of a reference CycleGAN/pix2pix generator ([-1, 1] images; test mode)."""
    if norm == "batch" or dropout:
        notes.append("assumed: test mode 'train' (each image's own BatchNorm statistics, dropout on), as the "
                     "reference's test.py runs without --eval; `i2i translate --eval` uses running statistics")
    return {"pipeline": pipeline, "input_range": (-1.0, 1.0), "output_range": (-1.0, 1.0),
            "test_mode": "train" if norm == "batch" or dropout else "eval"}


def _resnet(state: State, notes: list[str]) -> tuple[dict, dict]:
    blocks = _indices(state, r"model\.(\d+)\.conv_block\..+")
    first = 10  # pad, conv, norm, relu, then two (conv, norm, relu) downsamples
    if blocks != list(range(first, first + len(blocks))):
        raise _Mismatch(f"ResNet generator with residual blocks at model.{blocks}, not model.{first}, {first + 1}, ...")
    count = len(blocks)
    if count not in (6, 9):
        raise _Mismatch(f"ResNet generator with {count} residual blocks; i2i builds resnet_6blocks and resnet_9blocks")
    stem = _shape(state, "model.1.weight")
    last = _shape(state, f"model.{first + count + 7}.weight")  # convT, norm, relu x2, pad, conv
    convs = tuple(_indices(state, rf"model\.{first}\.conv_block\.(\d+)\.weight"))
    convs = tuple(i for i in convs if state[f"model.{first}.conv_block.{i}.weight"].dim() == 4)
    if convs not in _BLOCK_LAYOUTS:
        raise _Mismatch(f"ResNet block with convs at conv_block.{list(convs)}: not the reference's layout")
    padding, dropout = _BLOCK_LAYOUTS[convs]
    norm = _norm(state, "model.2", "model.1.bias")
    name = f"resnet_{count}blocks"
    notes += [f"inferred: {name} ({count} residual blocks), width {stem[0]}, {stem[1]} -> {last[0]} channels",
              f"inferred: norm {norm} ({_NORM_EVIDENCE[norm]})",
              f"inferred: dropout {'on' if dropout else 'off'} (block layout: second conv at conv_block.{convs[1]})"]
    if padding == "zero":
        notes.append("inferred: zero padding in the residual blocks (no pad layers)")
    else:
        notes.append("assumed: reflect padding in the residual blocks (the reference's default; replicate "
                     "has the same keys)")
    options = {"name": name, "in_channels": stem[1], "out_channels": last[0], "width": stem[0], "norm": norm,
               "dropout": dropout, "padding_type": padding}
    return options, _translation_fields("cyclegan", norm, dropout, notes)


def _unet(state: State, notes: list[str]) -> tuple[dict, dict]:
    # "model.model.<i>" is the outermost level; every deeper level adds ".model.<i>.model"
    levels = max(k.count("model.") for k in state) - 1
    if levels not in _UNETS:
        raise _Mismatch(f"U-Net with {levels} levels; i2i builds 5 to 8 (unet_32 ... unet_256)")
    name = _UNETS[levels]
    down, up = _shape(state, "model.model.0.weight"), _shape(state, "model.model.3.weight")  # up: ConvTranspose
    norm = _norm(state, "model.model.1.model.2", "model.model.1.model.1.bias")
    dropout = norm == "batch"
    why = ("pix2pix, which trains with batch norm, defaults to it" if dropout
           else "CycleGAN, which trains with instance norm, defaults to no dropout")
    notes += [(f"inferred: {name} ({levels} levels, bottleneck 1x1 at {2 ** levels}x{2 ** levels}), "
               f"width {down[0]}, {down[1]} -> {up[1]} channels"),
              f"inferred: norm {norm} ({_NORM_EVIDENCE[norm]})",
              f"assumed: dropout {'on' if dropout else 'off'} (U-Net dropout holds no weights; {why})"]
    options = {"name": name, "in_channels": down[1], "out_channels": up[1], "width": down[0], "norm": norm,
               "dropout": dropout}
    return options, _translation_fields("pix2pix", norm, dropout, notes)


_SR_FIELDS = {"pipeline": "srgan", "input_range": (0.0, 1.0), "output_range": (0.0, 1.0), "task": "sr",
              "test_mode": "eval"}


def _srresnet(state: State, notes: list[str]) -> tuple[dict, dict]:
    first, last = _shape(state, "conv_first.weight"), _shape(state, "conv_last.weight")
    width = first[0]
    blocks = len(_indices(state, r"body\.(\d+)\.conv1\.weight"))
    factor = _shape(state, "upconv1.weight")[0] // width
    scale = {4: 4 if "upconv2.weight" in state else 2, 9: 3}.get(factor)
    if scale is None or factor * width != _shape(state, "upconv1.weight")[0]:
        raise _Mismatch(f"MSRResNet whose upconv1 gives {_shape(state, 'upconv1.weight')[0]} channels from {width}: "
                        "not a x2, x3 or x4 pixel shuffle")
    notes.append(f"inferred: srresnet (BasicSR MSRResNet) x{scale}, width {width}, {blocks} blocks, "
                 f"{first[1]} -> {last[0]} channels")
    options = {"name": "srresnet", "in_channels": first[1], "out_channels": last[0], "width": width,
               "num_blocks": blocks, "scale": scale}
    return options, dict(_SR_FIELDS)


def _rrdbnet(state: State, notes: list[str]) -> tuple[dict, dict]:
    first, last = _shape(state, "conv_first.weight"), _shape(state, "conv_last.weight")
    out_channels = last[0]
    unshuffle = math.isqrt(first[1] // out_channels) if first[1] % out_channels == 0 else 0
    scale = {1: 4, 2: 2, 4: 1}.get(unshuffle) if unshuffle ** 2 * out_channels == first[1] else None
    if scale is None:
        raise _Mismatch(f"RRDBNet whose conv_first takes {first[1]} channels for {out_channels} out: "
                        "not 1, 4 or 16 times (scale 4, 2, 1)")
    blocks = len(_indices(state, r"body\.(\d+)\.rdb1\.conv1\.weight"))
    growth = _shape(state, "body.0.rdb1.conv1.weight")[0] if blocks else 32
    notes += [f"inferred: rrdbnet (ESRGAN RRDBNet) x{scale}, width {first[0]}, {blocks} blocks, growth {growth}",
              f"assumed: {out_channels} input channels like its output"
              + (f" (so conv_first's {first[1]} channels are a x{unshuffle} pixel-unshuffle)" if unshuffle > 1 else "")]
    if scale == 4:
        notes.append("assumed: scale 4 (BasicSR's layout; i2i's x3 variant has the same keys)")
    options = {"name": "rrdbnet", "in_channels": out_channels, "out_channels": out_channels, "width": first[0],
               "num_blocks": blocks, "growth": growth, "scale": scale}
    return options, dict(_SR_FIELDS)


def _srvgg(state: State, notes: list[str]) -> tuple[dict, dict]:
    convs = [i for i in _indices(state, r"body\.(\d+)\.weight") if state[f"body.{i}.weight"].dim() == 4]
    prelus = [i for i in _indices(state, r"body\.(\d+)\.weight") if state[f"body.{i}.weight"].dim() == 1]
    if len(convs) < 2 or convs != list(range(0, 2 * len(convs), 2)):
        raise _Mismatch(f"body.N keys with convs at {convs}: not Real-ESRGAN's SRVGGNetCompact layout")
    if not prelus:
        raise _Mismatch("SRVGGNetCompact whose activations hold no weights (relu or leakyrelu, which the keys "
                        "cannot tell apart); only the prelu variant (Real-ESRGAN's) is imported")
    if prelus != list(range(1, 2 * len(convs) - 1, 2)):
        raise _Mismatch(f"SRVGGNetCompact with PReLU weights at body.{prelus}: expected one after every conv but the last")
    first, last = state["body.0.weight"].shape, state[f"body.{convs[-1]}.weight"].shape
    in_channels = first[1]
    scale = math.isqrt(last[0] // in_channels)
    if scale < 1 or scale * scale * in_channels != last[0]:
        raise _Mismatch(f"SRVGGNetCompact whose last conv gives {last[0]} channels: not {in_channels} x scale^2")
    notes += [(f"inferred: srvggnet_compact (Real-ESRGAN SRVGGNetCompact) x{scale}, width {first[0]}, "
               f"{len(convs) - 2} body convs, PReLU activations"),
              (f"assumed: {in_channels} output channels like its input (so its last conv's {last[0]} "
               f"channels are a x{scale} pixel shuffle)")]
    options = {"name": "srvggnet_compact", "in_channels": in_channels, "out_channels": in_channels,
               "width": first[0], "num_blocks": len(convs) - 2, "scale": scale, "act": "prelu"}
    return options, dict(_SR_FIELDS)


def _from_old_esrgan(state: State) -> State:
    """The original ESRGAN's keys (model.0, model.1.sub.<i>.RDB<j>.conv<k>.0, model.1.sub.<n>,
    model.3, model.6, model.8, model.10) as RRDBNet's; pops the old keys from `state`."""
    blocks = len(_indices(state, r"model\.1\.sub\.(\d+)\.RDB1\.conv1\.0\.weight"))
    tops = _indices(state, r"model\.(\d+)\.weight")
    if tops != [0, 3, 6, 8, 10]:  # model.1 is the trunk (model.1.sub...)
        raise _Mismatch(f"original ESRGAN layout with top-level convs at model.{tops}: only the x4 layout "
                        "(model.0, 3, 6, 8, 10) is imported")
    renames = {"model.0": "conv_first", f"model.1.sub.{blocks}": "conv_body", "model.3": "conv_up1",
               "model.6": "conv_up2", "model.8": "conv_hr", "model.10": "conv_last"}
    renamed: State = {}
    for key in list(state):
        m = re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)", key)
        prefix, _, leaf = key.rpartition(".")
        if m:
            new = f"body.{m.group(1)}.rdb{m.group(2)}.conv{m.group(3)}.{m.group(4)}"
        elif prefix in renames:
            new = f"{renames[prefix]}.{leaf}"
        else:
            raise _Mismatch(f"original ESRGAN layout with an unexpected tensor {key}")
        renamed[new] = state.pop(key)
    return renamed


# ----------------------------------------------------------------------------- building


def _build(path: Path, options: dict, fields: dict, state: State, notes: list[str]) -> ImportResult:
    """The i2i network `options` describes, holding `state` (strict: every key must fit).

    Built on the CPU, not the meta device: the SR nets' init on meta tensors imports
    torch._dynamo (seconds), drawing their initial weights costs far less."""
    import i2i.nn

    try:
        net = i2i.nn.rebuild(options)
    except I2IError as error:
        raise I2IError(f"{path}: {one_line(error)}") from None
    return load_generator(net, state, fields, f"{path}: its tensors do not fit the inferred {options['name']}", notes)
