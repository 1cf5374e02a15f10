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
    """`i2i eval bicubic DATA --scale N`, and `i2i eval MODEL DATA`: a first argument that
    names no visible subcommand is a model, run by the `model` subcommand, whose usage and
    options `i2i eval --help` shows as the group's own."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        if args and args[0] not in [name for name, cmd in self.commands.items() if not cmd.hidden]:
            args = ["model", *args]
        return super().resolve_command(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "MODEL DATA [OPTIONS]")
        formatter.write_usage(ctx.command_path, "bicubic DATA --scale N [OPTIONS]", prefix="   or: ")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        model = self.commands["model"]
        with click.Context(model, info_name="MODEL", parent=ctx) as sub:
            options = [p for p in model.get_params(sub) if isinstance(p, click.Option) and "--help" not in p.opts]
            rows = [r for r in (p.get_help_record(sub) for p in options) if r]
        with formatter.section("Options of i2i eval MODEL DATA"):
            formatter.write_dl(rows)
        super().format_options(ctx, formatter)


class _EvalModelCommand(click.Command):
    """Its usage line is `i2i eval MODEL DATA`, as users type it."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.parent.command_path if ctx.parent else "i2i eval", "MODEL DATA [OPTIONS]")


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


@eval_group.command(name="model", hidden=True, cls=_EvalModelCommand)
@click.argument("model")
@click.argument("data", type=click.Path())
@click.option("--scale", type=click.IntRange(min=1), help="SR factor; must be the model's.  [default: the model's]")
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
# `i2i train PIPELINE` is made when it is asked for, from TrainConfig's and the pipeline's
# Options' fields (their metadata: i2i.training.settings.setting) with the pipeline's
# config_defaults, so `i2i --help` imports no pipeline and no torch. A flag left out is not
# passed on: a --config file or, with --resume, the run's config.yaml decides.


class _TrainGroup(click.Group):
    """One command per registered pipeline (i2i.pipelines.PIPELINES), built on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from i2i.pipelines import available

        return available()

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        from i2i.pipelines import PIPELINES

        if name not in PIPELINES:
            return None
        try:
            return _train_command(name)
        except Exception as error:  # noqa: BLE001  a broken pipeline must not break the others
            from i2i.errors import one_line

            reason = one_line(error, 200, typed=True)

            def refuse() -> None:
                raise I2IError(f"pipeline {name} cannot be loaded: {reason}")

            return click.Command(name, callback=refuse, help=f"(cannot be loaded: {reason})",
                                 context_settings={"ignore_unknown_options": True, "allow_extra_args": True})


class _TrainCommand(click.Command):
    """--help in two sections: the settings every pipeline has, then this pipeline's own."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        sections: dict[str, list] = {"Run and training options": []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record:
                sections.setdefault(getattr(param, "section", "Run and training options"), []).append(record)
        for title, rows in sections.items():
            with formatter.section(title):
                formatter.write_dl(rows)


def _train_command(name: str) -> click.Command:
    import dataclasses

    from i2i.pipelines import get_pipeline
    from i2i.training.settings import TrainConfig

    cls = get_pipeline(name)
    run = [
        click.Option(["--config", "config_file"], type=click.Path(dir_okay=False, exists=True),
                     help="YAML file of settings (flags override it)."),
        click.Option(["--resume"], is_flag=True, help="Continue the run in --out from its last checkpoint."),
    ]
    common = [_setting_option(f, cls) for f in dataclasses.fields(TrainConfig)]
    own = [_setting_option(f, cls) for f in dataclasses.fields(cls.Options)]
    for option in own:
        option.section = f"{name} options"
    params = [*common[:2], *run, *common[2:], *own]
    params += [_old_name_option(old, f) for f in dataclasses.fields(cls.Options) for old in f.metadata.get("old_names", ())]

    @click.pass_context
    def callback(ctx: click.Context, **values) -> None:
        _run_train(name, ctx, values)

    return _TrainCommand(name, params=params, callback=callback, help=cls.cli_help or None)


def _setting_option(field, cls) -> click.Option:
    """The flag of one settings field: type, choices and the default --help shows (the
    pipeline's config_defaults and shown_defaults applied); its own default is None, so a
    flag left out is not passed on."""
    meta = field.metadata
    default = cls.config_defaults.get(field.name, field.default)
    shown = cls.shown_defaults.get(field.name, meta.get("shown") if default == field.default else None)
    flag = "--" + field.name.replace("_", "-")
    kind = meta.get("value_type") or type(default)
    kwargs: dict = {"required": meta.get("required", False)}
    if kind is bool:
        if not field.name.startswith("no_"):
            shown = shown or ("on" if default else "off")
            flag = f"{flag}/--no-{flag[2:]}"
        kwargs["is_flag"] = True
    elif meta.get("choices"):
        kwargs["type"] = click.Choice([c for c in meta["choices"] if c != ""])
    elif meta.get("path"):
        kwargs["type"] = click.Path(file_okay=meta["path"] != "dir", dir_okay=meta["path"] != "file")
    else:
        kwargs["type"] = kind
    if shown is None and default is not None and default is not False and default != "":
        shown = f"{default:g}" if isinstance(default, float) else str(default)
    kwargs["help"] = meta.get("help", "") + (f"  [default: {shown}]" if shown else "")
    return click.Option([flag, field.name], default=None, **kwargs)


def _old_name_option(old: str, field) -> click.Option:
    """A hidden flag under a setting's old name (make_settings reads it as today's)."""
    kind = field.metadata.get("value_type") or type(field.default)
    return click.Option(["--" + old.replace("_", "-"), old], type=kind, default=None, hidden=True)


def _run_train(pipeline: str, ctx: click.Context, params: dict) -> None:
    """Settings from defaults < --config < flags (with --resume: the run's config.yaml first)."""
    from click.core import ParameterSource

    from i2i.training import make_settings, train

    given = {k: v for k, v in params.items() if k not in ("config_file", "resume")
             and ctx.get_parameter_source(k) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}
    config, options = make_settings(pipeline, given, config_file=params["config_file"],
                                    resume_from=params["out"] if params["resume"] else None)
    train(pipeline, config, options, resume=params["resume"])


@main.group("train", cls=_TrainGroup)
def train_group() -> None:
    """Train a model; the run folder gets checkpoints, model.safetensors, samples and index.html.

    `i2i train PIPELINE --help` lists its settings and their defaults.
    """


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
@click.option("--ab-split", is_flag=True,
              help="Inputs are pix2pix pairs side by side (A|B, the reference's train/ val/ test/ layout): "
                   "translate the half the direction starts from (AtoB: the left), as the reference's test.py.")
def translate(model: str, input: str, output: str, direction: str | None, ext: str, suffix: str, tile: int,
              tile_pad: int, batch_size: int, workers: int | None, device: str, precision: str,
              overwrite: bool, quality: int, eval_mode: bool, seed: int, ab_split: bool) -> None:
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
        ab_side=translator.direction[0] if ab_split else None,
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
@click.option("--threads", default=0, type=click.IntRange(min=0),
              help="CPU threads for training and translation; 1 can be much faster on a busy machine.  "
                   "[default: 0: one per core]")
def demo(out: str, steps: int, device: str, overwrite: bool, threads: int) -> None:
    """Train photo->sketch and gray->colour on the shipped sample photos, translate, write a page."""
    from i2i.demo import run_demo

    run_demo(out, steps=steps, device=device, overwrite=overwrite, threads=threads)
