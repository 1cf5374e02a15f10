"""The `i2i` command line: one thin command per verb. Parse, call the API, print.

Heavy modules (torch, kornia, ...) are imported inside the commands, so `i2i --help`
starts fast. A user mistake (`I2IError`) is printed as one line, never as a traceback.
"""
from __future__ import annotations

import sys

import click

from i2i import __version__
from i2i.errors import I2IError


class _Group(click.Group):
    """Turns I2IError into one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except I2IError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(error.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="i2i")
def main() -> None:
    """i2i: image-to-image translation (CycleGAN, pix2pix, SRGAN)."""


@main.command()
def info() -> None:
    """Versions, device, threads and bf16 support of this machine."""
    from i2i.device import describe

    for key, value in describe().items():
        click.echo(f"{key:>14}: {value}")


# --- data commands ---------------------------------------------------------


@main.group(name="data")
def data_group() -> None:
    """Look at data folders and derive training pairs from photos."""


@data_group.command("inspect")
@click.argument("folder", type=click.Path(file_okay=False, path_type=str))
def data_inspect(folder: str) -> None:
    """Layout, counts, sizes and modes, bad files and unmatched pairs of FOLDER.

    Exits 1 if any image fails to decode.
    """
    from i2i.data.inspect import inspect_folder

    report = inspect_folder(folder)
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        sys.exit(1)


@data_group.command("derive")
@click.argument("task", type=click.Choice(["sketch", "gray", "sr"]))
@click.argument("src", type=click.Path(file_okay=False, path_type=str))
@click.argument("dst", type=click.Path(file_okay=False, path_type=str))
@click.option("--scale", type=int, default=4, show_default=True, help="Downscale factor for sr.")
def data_derive(task: str, src: str, dst: str, scale: int) -> None:
    """Write DST/A/<stem>.png (inputs) and DST/B/<stem>.png (targets) from SRC photos.

    sketch: A photo, B pencil sketch. gray: A luminance, B colour. sr: B the photo
    mod-cropped to --scale, A its MATLAB-exact bicubic downscale. Bad files are
    reported one per line and skipped; the exit code is then 1.
    """
    from i2i.data.derive import derive_pairs

    result = derive_pairs(task, src, dst, scale=scale)
    for line in result.problems:
        click.echo(f"error: {line}", err=True)
    click.echo(f"wrote {result.written} pair{'s' if result.written != 1 else ''} to {dst}/A and {dst}/B")
    if result.problems:
        sys.exit(1)


# --- eval commands ---------------------------------------------------------


class _EvalGroup(click.Group):
    """`i2i eval bicubic DATA` now. Room for `i2i eval MODEL DATA` (issue 7): once a
    `model` subcommand exists, a first argument that names no subcommand goes to it."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        if args and args[0] not in self.commands and "model" in self.commands:
            args = ["model", *args]
        return super().resolve_command(ctx, args)


@main.group(name="eval", cls=_EvalGroup)
def eval_group() -> None:
    """Score super-resolution on a folder of HR images (PSNR/SSIM on Y, border cropped).

    \b
    i2i eval MODEL DATA [--scale N] [--json F]   a model (file, run folder or name)
    i2i eval bicubic DATA --scale N              the bicubic baseline
    """


@eval_group.command(name="bicubic")
@click.argument("data", type=click.Path())
@click.option("--scale", type=click.IntRange(min=1), required=True, help="SR factor (2, 3, 4).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the figures here.")
@click.option(
    "--protocol",
    type=click.Choice(["vdsr", "default"]),
    default="vdsr",
    show_default=True,
    help="vdsr: VDSR's MATLAB code, reproduces the published rows; "
    "default: uint8 RGB resize, as models are scored.",
)
def eval_bicubic(data: str, scale: int, json_path: str | None, protocol: str) -> None:
    """Bicubic baseline: PSNR-Y/SSIM-Y of MATLAB imresize down and up.

    Prints each image and the mean; the vdsr protocol reproduces the published rows.
    """
    from i2i.evaluate import evaluate_bicubic

    _show_scores(evaluate_bicubic(data, scale, protocol=protocol), json_path)


def _show_scores(result: dict, json_path: str | None) -> None:
    """The eval commands' output: the table, and the JSON file when asked for."""
    from i2i.evaluate import format_table, write_json

    click.echo(format_table(result))
    if json_path:
        write_json(result, json_path)
        click.echo(f"wrote {json_path}")


@eval_group.command(name="model", hidden=True)
@click.argument("model")
@click.argument("data", type=click.Path())
@click.option("--scale", type=click.IntRange(min=1), help="SR factor; must be the model's [the model's].")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the figures here.")
@click.option("--lr", "lr_dir", type=click.Path(file_okay=False),
              help="LR images named like DATA's (baby, babyx4, baby_x4) instead of MATLAB bicubic ones.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16", "auto"]), default="fp32",
              show_default=True, help="fp32 gives hardware-independent figures.")
@click.option("--tile", type=click.IntRange(min=0), default=0, show_default=True,
              help="Run large images in tiles of N LR pixels (0: whole images).")
@click.option("--lpips", is_flag=True, help="Also LPIPS (needs the lpips package and local weights).")
@click.option("--fid", is_flag=True, help="Also FID (needs torch-fidelity and local weights).")
def eval_model(model: str, data: str, scale: int | None, json_path: str | None, lr_dir: str | None,
               device: str, precision: str, tile: int, lpips: bool, fid: bool) -> None:
    """`i2i eval MODEL DATA`: PSNR-Y/SSIM-Y of an SR model on DATA's HR images.

    MODEL is a model file, a run folder or a model name. LR inputs are MATLAB bicubic
    downscales of the mod-cropped uint8 HR images; the output is rounded to uint8 and
    scored on Y with a border of --scale pixels (EDSR/BasicSR's protocol).
    """
    from i2i.evaluate import evaluate_model, optional_metric_error

    for name, wanted in (("lpips", lpips), ("fid", fid)):
        if wanted:
            raise optional_metric_error(name)
    _show_scores(evaluate_model(model, data, scale, lr_dir=lr_dir, device=device, precision=precision, tile=tile),
                 json_path)


# --- train commands --------------------------------------------------------


def _options(*decorators):
    """Apply click options in the order written (the order of --help)."""

    def apply(f):
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


# Every pipeline's `i2i train X` takes these; defaults live in i2i.training.TrainConfig (the
# values in the help text), so a flag left out is not passed on and a --config file or,
# with --resume, the run's config.yaml decides.
_train_common = _options(
    click.option("--data", type=click.Path(file_okay=False), help="Dataset folder (the layouts are in the README)."),
    click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder (must be new or empty unless --resume)."),
    click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True), help="YAML file of settings (flags override it)."),
    click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint."),
    click.option("--max-steps", type=int, help="Train this many steps instead of epochs; schedules span them."),
    click.option("--n-epochs", type=int, help="Epochs at the initial learning rate [100]."),
    click.option("--n-epochs-decay", type=int, help="Epochs of linear decay to zero [100]."),
    click.option("--batch-size", type=int, help="[1]"),
    click.option("--image-size", type=int, help="Crop size fed to the networks [256]."),
    click.option("--load-size", type=int, help="Resize before cropping [image size * 286/256]."),
    click.option("--preprocess", type=click.Choice(["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]),
                 help="[resize_and_crop]"),
    click.option("--no-flip", is_flag=True, default=None, help="No random horizontal flips."),
    click.option("--serial-batches", is_flag=True, default=None, help="Images in order, not shuffled."),
    click.option("--num-workers", type=int, help="Data loading processes [2]."),
    click.option("--lr", type=float, help="Adam learning rate [2e-4]."),
    click.option("--beta1", type=float, help="Adam beta1 [0.5]."),
    click.option("--lr-policy", type=click.Choice(["linear", "step", "cosine", "plateau"]), help="[linear]"),
    click.option("--lr-decay-iters", type=int, help="step policy: x0.1 every N epochs (steps with --max-steps) [50]."),
    click.option("--ema", type=float, help="EMA decay of the generator weights for the model file, e.g. 0.999 [0: off]."),
    click.option("--device", help="auto, cpu, cuda, cuda:N or mps [auto]."),
    click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16", "auto"]), help="Autocast precision [fp32]."),
    click.option("--seed", type=int, help="[0]"),
    click.option("--deterministic", is_flag=True, default=None, help="Deterministic algorithms (slower)."),
    click.option("--threads", type=int, help="CPU threads for torch [0: one per core]; 1 can be much faster on a busy machine."),
    click.option("--checkpoint-every", type=int, help="Checkpoint and model file every N steps [500]."),
    click.option("--keep-last", type=int, help="Checkpoints kept [3]."),
    click.option("--log-every", type=int, help="metrics.jsonl line every N steps [50]."),
    click.option("--sample-every", type=int, help="Sample grid every N steps [500]."),
)

# The CycleGAN / pix2pix network and GAN knobs (reference names; network names of i2i.nn).
_train_gan = _options(
    click.option("--netG", "netG", help="Generator: resnet_9blocks, resnet_6blocks, unet_32/64/128/256."),
    click.option("--netD", "netD", help="Discriminator: patchgan (reference 'basic'/'n_layers') or pixelgan."),
    click.option("--n-layers-D", "n_layers_D", type=int, help="PatchGAN depth [3]."),
    click.option("--width", type=int, help="Generator width, the reference's ngf [64]."),
    click.option("--ndf", type=int, help="Discriminator width [64]."),
    click.option("--norm", type=click.Choice(["batch", "instance", "none"])),
    click.option("--dropout/--no-dropout", default=None, help="Dropout in the generator."),
    click.option("--gan-mode", type=click.Choice(["vanilla", "lsgan", "wgangp", "hinge"])),
    click.option("--init-type", type=click.Choice(["normal", "xavier", "kaiming", "orthogonal"]), help="[normal]"),
    click.option("--init-gain", type=float, help="[0.02]"),
    click.option("--direction", type=click.Choice(["AtoB", "BtoA"]), help="[AtoB]"),
)


def _run_train(pipeline: str, ctx: click.Context, params: dict) -> None:
    """Settings from defaults < --config < flags (with --resume: the run's config.yaml first)."""
    from click.core import ParameterSource

    from i2i.training import make_settings, train

    given = {k: v for k, v in params.items() if k not in ("config_file", "resume")
             and ctx.get_parameter_source(k) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}
    config, options = make_settings(pipeline, given, config_file=params["config_file"],
                                    resume_from=params["out"] if params["resume"] else None)
    train(pipeline, config, options, resume=params["resume"])


@main.group("train")
def train_group() -> None:
    """Train a model; the run folder gets checkpoints, model.safetensors, samples and index.html."""


@train_group.command("cyclegan")
@_train_common
@_train_gan
@click.option("--lambda-A", "lambda_A", type=float, help="Cycle loss weight A->B->A [10].")
@click.option("--lambda-B", "lambda_B", type=float, help="Cycle loss weight B->A->B [10].")
@click.option("--lambda-identity", type=float, help="Identity loss, relative to the cycle weights [0.5].")
@click.option("--pool-size", type=int, help="Fake-image pool for the discriminators [50].")
@click.pass_context
def train_cyclegan(ctx: click.Context, **params) -> None:
    """Unpaired translation: DATA/trainA and DATA/trainB.

    Defaults are the reference's: resnet_9blocks, instance norm, LSGAN, 286 -> 256 crops.
    """
    _run_train("cyclegan", ctx, params)


@train_group.command("pix2pix")
@_train_common
@_train_gan
@click.option("--lambda-L1", "lambda_L1", type=float, help="L1 weight [100].")
@click.option("--task", type=click.Choice(["colorize", "colorize_lab", "sketch"]),
              help="Derive pairs from a plain photo folder: gray->colour, Lab L->ab, photo->sketch.")
@click.pass_context
def train_pix2pix(ctx: click.Context, **params) -> None:
    """Paired translation: DATA/train (side-by-side AB) or DATA/A + DATA/B, or --task on photos.

    Defaults are the reference's: unet_256, batch norm, dropout, vanilla GAN, L1 100.
    Small crops: --netG unet_32 --image-size 32.
    """
    _run_train("pix2pix", ctx, params)


@train_group.command("srgan")
@_train_common
@click.option("--stage", type=click.Choice(["psnr", "gan"]), help="psnr: pixel loss only [psnr]; gan: from --pretrained.")
@click.option("--scale", type=click.Choice(["2", "3", "4"]), callback=lambda c, p, v: v and int(v), help="[4]")
@click.option("--arch", type=click.Choice(["srresnet", "rrdbnet"]), help="Generator: srresnet (SRGAN) or rrdbnet (ESRGAN) [srresnet].")
@click.option("--width", type=int, help="Generator features [64].")
@click.option("--num-blocks", type=int, help="Residual blocks [16 srresnet, 23 rrdbnet].")
@click.option("--growth", type=int, help="rrdbnet growth channels [32].")
@click.option("--channels", type=click.Choice(["1", "3"]), callback=lambda c, p, v: v and int(v), help="[3]")
@click.option("--pixel-loss", type=click.Choice(["l1", "mse", "charbonnier"]), help="[l1]")
@click.option("--pixel-weight", type=float, help="[1 psnr, 1e-2 gan]")
@click.option("--perceptual-weight", type=float, help="VGG19 conv5_4 L1, stage gan [1].")
@click.option("--gan", type=click.Choice(["vanilla", "relativistic", "lsgan", "hinge", "wgangp"]),
              help="Adversarial loss: vanilla (SRGAN), relativistic (ESRGAN) [vanilla].")
@click.option("--gan-weight", type=float, help="[1e-3 vanilla, 5e-3 relativistic]")
@click.option("--d-width", type=int, help="vgg128 discriminator features [64].")
@click.option("--pretrained", help="Stage gan: the psnr run folder or its model.safetensors.")
@click.option("--vgg-weights", type=click.Path(dir_okay=False), help="VGG19 weights file (torchvision's vgg19-dcbb9e9d.pth) [$I2I_VGG19_WEIGHTS or ~/.cache/i2i/].")
@click.option("--lr-data", type=click.Path(file_okay=False), help="LR images matching --data's HR ones by name [made by MATLAB bicubic].")
@click.option("--task", type=click.Choice(["sr"]), help="A plain photo folder as HR images (the default for a plain folder).")
@click.option("--repeat", type=int, help="Visits of each image per epoch [0: at least 100 batches per epoch].")
@click.pass_context
def train_srgan(ctx: click.Context, **params) -> None:
    """Super-resolution: DATA holds HR images (or DATA/HR + DATA/LR, or DATA/B + DATA/A).

    --image-size is the HR patch [96 psnr, 128 gan]; LR patches are made by MATLAB bicubic.
    Defaults (BasicSR): batch 16, Adam betas (0.9, 0.99), lr 2e-4 psnr / 1e-4 gan, cosine,
    EMA 0.999. Stage gan: --pretrained RUN --vgg-weights FILE; --arch rrdbnet --gan
    relativistic is ESRGAN.
    """
    _run_train("srgan", ctx, params)


# --- translate / models commands -------------------------------------------


@main.command()
@click.argument("model")
@click.argument("input", type=click.Path(path_type=str))
@click.argument("output", type=click.Path(path_type=str))
@click.option("--direction", type=click.Choice(["AtoB", "BtoA"]), default=None,
              help="CycleGAN models: which generator (default: the direction it was trained for).")
@click.option("--ext", type=click.Choice(["png", "jpg", "same"]), default="png", show_default=True,
              help="Output format; 'same' keeps each input's extension.")
@click.option("--suffix", default="", help="Appended to each output's stem, e.g. _fake.")
@click.option("--tile", type=click.IntRange(min=0), default=0, show_default=True,
              help="Process large images in tiles of N pixels (0: whole images).")
@click.option("--tile-pad", type=click.IntRange(min=0), default=16, show_default=True,
              help="Context around each tile; raise it (32-64 for ResNet generators) if seams show.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Images of one size translated together.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Batches translated at once; on the CPU they share the torch threads "
                   "[CPU: one per thread, each on one thread; with --tile or on a GPU: 1].")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto",
              show_default=True, help="auto: bf16 where it is native and faster, else fp32.")
@click.option("--overwrite", is_flag=True, help="Redo outputs that already exist (default: skip them).")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True,
              help="JPEG/WebP quality.")
@click.option("--eval", "eval_mode", is_flag=True,
              help="pix2pix models: BatchNorm running statistics and no dropout, instead of the "
                   "paper's and the reference's test mode (each image's own statistics, dropout on).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Dropout seed of that test mode (every image gets the same one).")
def translate(model: str, input: str, output: str, direction: str | None, ext: str, suffix: str, tile: int,
              tile_pad: int, batch_size: int, workers: int | None, device: str, precision: str,
              overwrite: bool, quality: int, eval_mode: bool, seed: int) -> None:
    """Translate an image or a folder tree with MODEL into OUTPUT.

    MODEL is a .safetensors model file, a training run folder or a pretrained model name.
    INPUT is an image or a folder (recursive); OUTPUT mirrors its sub-folders (or, for one
    image, may name the output file). Existing outputs are skipped, so an interrupted run
    continues. Exit status 1 if any image failed.
    """
    from i2i.infer import load_model

    translator = load_model(model, device=device, precision=precision, direction=direction,
                            test_mode="eval" if eval_mode else None, seed=seed)
    summary = translator.translate_folder(
        input, output, ext=ext, suffix=suffix, batch_size=batch_size, tile=tile, tile_pad=tile_pad,
        overwrite=overwrite, quality=quality, workers=workers, progress=True,
    )
    if summary.failed:
        sys.exit(1)


@main.group(name="models")
def models_group() -> None:
    """Pretrained models: `i2i translate NAME in/ out/` uses one by name."""


@models_group.command(name="list")
def models_list() -> None:
    """The registered pretrained models, whether each is here, and its figures."""
    from i2i import zoo

    entries = zoo.registry()
    if not entries:
        click.echo("no pretrained models registered")
    for entry in entries.values():
        where = "shipped" if (zoo.REGISTRY_FILE.parent / entry.file).is_file() else "download"
        scores = ", ".join(f"{name} {m['psnr_y']:.2f} dB" for name, m in entry.metrics.items() if "psnr_y" in m)
        click.echo(f"{entry.name:<16} {where:<9} {entry.description}" + (f" ({scores})" if scores else ""))


# --- demo --------------------------------------------------------------------


@main.command()
@click.option("--out", default="demo", show_default=True, type=click.Path(file_okay=False), help="Where the page and runs go.")
@click.option("--steps", default=400, show_default=True, type=click.IntRange(min=1), help="Training steps per model.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--overwrite", is_flag=True, help="Replace an existing demo folder.")
def demo(out: str, steps: int, device: str, overwrite: bool) -> None:
    """Train photo->sketch and gray->colour on the shipped sample photos, translate, write a page."""
    from i2i.demo import run_demo

    run_demo(out, steps=steps, device=device, overwrite=overwrite)
