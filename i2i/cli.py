"""The `i2i` command line: one thin command per verb. Parse, call the API, print.

Heavy modules (torch, kornia, ...) are imported inside the commands, so `i2i --help`
starts fast. A user mistake (`I2IError`) is printed as one line, never as a traceback.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from i2i import __version__
from i2i.errors import I2IError, UsageError


#: --precision's values (i2i.device.PRECISIONS and "auto"; spelled here so --help needs no torch)
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")
#: --channels-last's values (i2i.training.settings.CHANNELS_LAST, spelled here for the same reason)
CHANNELS_LAST_CHOICES = ("auto", "on", "off")


class _SuggestingGroup(click.Group):
    """An unknown subcommand gets "did you mean" (i2i.errors.did_you_mean) over list_commands:
    Click's own looks only at `self.commands`, empty in a group that makes its commands on
    demand (`i2i train`), and Click before 8.4 suggests nothing."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        try:
            return super().resolve_command(ctx, args)
        except getattr(click.exceptions, "NoSuchCommand", click.UsageError) as error:  # Click < 8.4: ctx.fail
            name = click.utils.make_str(args[0]) if args else ""
            if isinstance(error, click.NoSuchOption) or name.startswith("-"):
                raise
            self.fail_unknown(ctx, name)

    def hint(self, ctx: click.Context, name: str) -> str:
        from i2i.errors import did_you_mean

        return did_you_mean(name, [n for n in self.list_commands(ctx)
                                   if not (n in self.commands and self.commands[n].hidden)])

    def fail_unknown(self, ctx: click.Context, name: str) -> None:
        hint = self.hint(ctx, name)
        ctx.fail(f"No such command {name!r}." + (f" {hint[:1].upper()}{hint[1:]}" if hint else ""))


def _names_model(text: str) -> bool:
    """Whether `text` is a path or a zoo model's name (what `i2i eval MODEL` takes)."""
    from i2i import zoo

    try:
        return Path(text).exists() or bool(zoo.lookup(text))
    except I2IError:
        return False


class _Group(_SuggestingGroup):
    """Turns I2IError into one line on stderr and its exit code, and Ctrl-C into exit code 130."""

    group_class = _SuggestingGroup  # `@main.group()`'s groups suggest too

    def invoke(self, ctx: click.Context):
        watch = _InterruptWatch()
        try:
            with watch:
                return super().invoke(ctx)
        except click.NoSuchOption as error:
            _name_reference_option(error)
        except KeyboardInterrupt:  # click would say "Aborted!" and exit 1; shells expect 128 + SIGINT
            _interrupted()
        except BrokenPipeError as error:  # click would exit 1, as for an error: `i2i models list | head -1`
            if not _stdout_closed():  # a socket's or a worker's pipe: an error, not the reader of stdout gone
                click.echo(f"error: {error}", err=True)
                sys.exit(1)
            _pipe_closed()
        except Exception as error:
            _no_temp_folder(error)
            # Ctrl-C inside an import can leave a half-made module that fails next; an error that
            # reports the interrupt itself (the trainer's "stopped at step N", exit 128 + signal) stays
            if watch.seen and getattr(error, "exit_code", 0) < 128:
                _interrupted()
            _missing_dependency(error)
            if not isinstance(error, I2IError):
                raise
            rank = _torchrun_rank()
            if not (rank and getattr(error, "same_on_every_rank", False)):  # rank 0 says it for all
                click.echo(f"error: {f'rank {rank}: ' if rank else ''}{error}", err=True)
            sys.exit(error.exit_code)


def _name_reference_option(error: click.NoSuchOption) -> None:
    """Raises `error` again; for an option of the reference code (i2i.reference_options), naming
    i2i's equivalent instead of Click's look-alikes (--ngf: --ndf, the discriminator's width)."""
    from i2i.reference_options import reference_hint

    hint = reference_hint(error.option_name, _command_below_main(error.ctx))
    if not hint:
        raise error
    raise click.NoSuchOption(error.option_name, f"{error.message} ({hint})", ctx=error.ctx) from None


def _command_below_main(ctx: click.Context | None) -> str:
    """"train cyclegan": the command below i2i that `ctx` is of, as i2i.reference_options names it."""
    names: list[str] = []
    while ctx is not None and ctx.parent is not None:
        names.insert(0, ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(names)


class _ReferenceChoice(click.Choice):
    """A Choice whose refusal of a value another tool spells otherwise for the same option
    (Real-ESRGAN's --ext auto) names i2i's (i2i.reference_options), as _name_reference_option
    does for the option names."""

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as error:
            from i2i.reference_options import reference_hint

            command = _command_below_main(ctx)
            for opt in param.opts if param else []:
                if hint := reference_hint(f"{opt} {value}", command):
                    error.message = f"{error.message} ({hint})"
                    break
            raise


def _missing_dependency(error: Exception) -> None:
    """A core dependency missing (a broken install): one line saying which and how to mend it.
    The optional extras (serve, export, lpips) have their own hints; i2i's own modules are bugs."""
    name = getattr(error, "name", None) or ""
    if isinstance(error, ModuleNotFoundError) and name and name.split(".")[0] != "i2i":
        click.echo(f"error: i2i needs the Python package {name.split('.')[0]!r}, which cannot be imported "
                   f"({error}); reinstall i2i's dependencies: pip install -e . (or pip install i2i)", err=True)
        sys.exit(1)


def _stdout_closed() -> bool:
    """Whether the reader of stdout has gone: POLLERR for a pipe, POLLHUP for a socket."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), no real stdout: as before
        return True


def _pipe_closed() -> None:
    """The reader of stdout has gone (`| head`): exit silently with 141 (128 + SIGPIPE), as
    `yes | head -1` does, not with 1, which says the command failed. Later writes go nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(141)


def _no_temp_folder(error: Exception) -> None:
    """No writable temp folder (a read-only container without a tmpfs): torch needs one as it
    imports its compiler, and Python's tempfile says so with a traceback."""
    if isinstance(error, FileNotFoundError) and "No usable temporary directory" in str(error):
        click.echo("error: no writable temporary folder (TMPDIR, /tmp, /var/tmp and the current folder "
                   "are not writable); set TMPDIR to a writable folder (in Docker: --tmpfs /tmp)", err=True)
        sys.exit(1)


def _interrupted() -> None:
    click.echo("interrupted", err=True)
    sys.exit(130)


class _InterruptWatch:
    """Notes a Ctrl-C while a command runs, and raises KeyboardInterrupt as Python's own handler
    does. One that lands inside an import (numpy, scipy: a second after start) can surface as
    another error, e.g. a RecursionError from the half-initialised module; with the note, that is
    still the user's interrupt, not a traceback. A command that handles the signal itself (the
    trainer saves a checkpoint) replaces this handler while it runs, and reads `seen` from it: a
    Ctrl-C that a library's import caught and dropped is still a request to stop."""

    def __init__(self) -> None:
        self.seen = False
        self.installed = False

    def __enter__(self) -> _InterruptWatch:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, self)
            self.installed = True
        return self

    def __call__(self, signum: int, frame: object) -> None:
        self.seen = True
        raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        import signal

        if self.installed and signal.getsignal(signal.SIGINT) is self:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _torchrun_world_size() -> int:
    """How many processes torchrun started (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def _torchrun_rank() -> int:
    """This process's rank under torchrun (0 alone, or without torchrun)."""
    return int(os.environ.get("RANK", "0") or 0) if _torchrun_world_size() > 1 else 0


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="i2i")
@click.pass_context
def main(ctx: click.Context) -> None:
    """i2i: image-to-image translation (CycleGAN, pix2pix, SRGAN)."""
    try:  # a deleted current folder: torch's MKL dies at import with a line that names a library
        os.getcwd()
    except FileNotFoundError:
        raise I2IError("the current folder no longer exists (deleted or moved); cd to an existing "
                       "folder and run the command again") from None
    # under torchrun every process would run the whole command, racing over the same files
    if ctx.invoked_subcommand not in (None, "train") and _torchrun_world_size() > 1:
        raise UsageError(f"i2i {ctx.invoked_subcommand} runs as one process; torchrun is for `i2i train` "
                         "(run this command without torchrun)")
    if os.environ.get("I2I_MAX_PIXELS", "").strip():  # a bad limit: one line now, not one per image
        from i2i.data.io import check_environment

        check_environment()


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
    """Layout, counts, sizes and modes (of each folder), bad files and unmatched pairs of FOLDER.

    Exits 1 if any image fails to decode, or training would skip a file or refuse the folder
    (unmatched pairs, a missing side, an LR image of the wrong size).
    """
    from i2i.data.inspect import inspect_folder

    report = inspect_folder(folder)
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        sys.exit(1)


@data_group.command("derive")
@click.argument("task", type=click.Choice(["sketch", "colorize", "gray", "sr"]))
@click.argument("src", type=click.Path(file_okay=False, path_type=str))
@click.argument("dst", type=click.Path(file_okay=False, path_type=str))
@click.option("--scale", type=int, default=4, show_default=True, help="Downscale factor for sr.")
@click.option("--overwrite", is_flag=True, help="Write into DST/A and DST/B even if they hold images.")
def data_derive(task: str, src: str, dst: str, scale: int, overwrite: bool) -> None:
    """Write DST/A/<stem>.png (inputs) and DST/B/<stem>.png (targets) from SRC photos.

    sketch: A photo, B pencil sketch. colorize (or gray): A luminance, B colour. sr: B the photo
    mod-cropped to --scale, A its MATLAB-exact bicubic downscale. Bad files are
    reported one per line and skipped; the exit code is then 1.
    """
    from i2i.data.derive import derive_pairs

    result = derive_pairs(task, src, dst, scale=scale, overwrite=overwrite)
    for line in result.problems:
        click.echo(f"error: {line}", err=True)
    click.echo(f"wrote {result.written} pair{'s' if result.written != 1 else ''} to {Path(dst) / 'A'} and {Path(dst) / 'B'}")
    if result.problems:
        sys.exit(1)


@data_group.command("download")
@click.argument("name", required=False)
def data_download(name: str | None) -> None:
    """Fetch dataset NAME into $I2I_HOME/datasets/NAME in the layout `i2i train` reads.

    Without NAME: the datasets known. Resumes an interrupted download; archives are checked
    before anything is extracted.
    """
    from i2i.data.download import DATASETS, download_dataset, layout_note

    if name is None:
        for entry in DATASETS.values():
            click.echo(f"{entry.name:<24} {entry.pipeline:<9} {entry.url}")
        click.echo(f"{'cityscapes':<24} {'pix2pix':<9} needs your own login (`i2i data download cityscapes` says how)")
        return
    path = download_dataset(name)
    click.echo(f"{path} ({layout_note(path)})")


# --- eval commands ---------------------------------------------------------


class _EvalGroup(_SuggestingGroup):
    """`i2i eval bicubic DATA --scale N`, and `i2i eval MODEL DATA`: a first argument that
    names no visible subcommand is a model, run by the `model` subcommand, whose usage and
    options `i2i eval --help` shows as the group's own."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        if args and args[0] not in [name for name, cmd in self.commands.items() if not cmd.hidden]:
            if self.hint(ctx, args[0]) and not _names_model(args[0]):
                self.fail_unknown(ctx, args[0])  # `i2i eval bicubc`: no model, and close to a subcommand
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
    i2i eval MODEL DATA [--scale N] [--json F|-]  a model (file, run folder or name)
    i2i eval bicubic DATA --scale N               the bicubic baseline
    """


@eval_group.command(name="bicubic")
@click.argument("data", type=click.Path())
@click.option("--scale", type=click.IntRange(min=2), required=True, help="SR factor (2, 3, 4).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, allow_dash=True),
              help="Also write the figures here (-: as JSON to stdout, the table to stderr).")
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

    _check_json_path(json_path)
    _show_scores(evaluate_bicubic(data, scale, protocol=protocol), json_path)


def _check_json_path(json_path: str | None) -> None:
    """--json must name a .json file: an earlier figures file is replaced, never an image or a model.
    `-` is stdout (for `| jq`)."""
    from i2i.atomic import check_output_file

    if json_path and json_path != "-":
        check_output_file(json_path, ".json", overwrite=True)


def _show_scores(result: dict, json_path: str | None) -> None:
    """The eval commands' output: the table, and the JSON file when asked for. With `--json -`
    the JSON alone goes to stdout and the table to stderr, so a script can pipe it to jq."""
    from i2i.evaluate import format_table, json_text, write_json

    if json_path == "-":
        click.echo(format_table(result), err=True)
        click.echo(json_text(result), nl=False)
        return
    click.echo(format_table(result))
    if json_path:
        write_json(result, json_path)
        click.echo(f"wrote {json_path}")


@eval_group.command(name="model", hidden=True, cls=_EvalModelCommand)
@click.argument("model")
@click.argument("data", type=click.Path())
@click.option("--scale", type=click.IntRange(min=1), help="SR factor; must be the model's.  [default: the model's]")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, allow_dash=True),
              help="Also write the figures here (-: as JSON to stdout, the table to stderr).")
@click.option("--lr", "lr_dir", type=click.Path(file_okay=False),
              help="LR images named like DATA's (baby, babyx4, baby_x4) instead of MATLAB bicubic ones.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--precision", type=click.Choice(PRECISION_CHOICES), default="fp32",
              show_default=True,
              help="fp32 gives the same figures on any hardware (to float rounding, far below the 3 decimals printed).")
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
    from i2i.infer.tiles import check_tile

    check_tile(tile)  # before the model loads
    for name, wanted in (("lpips", lpips), ("fid", fid)):
        if wanted:
            raise optional_metric_error(name)
    _check_json_path(json_path)
    _show_scores(evaluate_model(model, data, scale, lr_dir=lr_dir, device=device, precision=precision, tile=tile),
                 json_path)


# --- train commands --------------------------------------------------------
# `i2i train PIPELINE` is made when it is asked for, from TrainConfig's and the pipeline's
# Options' fields (their metadata: i2i.training.settings.setting) with the pipeline's
# config_defaults, so `i2i --help` imports no pipeline and no torch. A flag left out is not
# passed on: a --config file or, with --resume, the run's config.yaml decides.


class _TrainGroup(_SuggestingGroup):
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
    hidden = field.name in cls.ignored_settings  # srgan's --load-size: set, it is one line saying why
    return click.Option([flag, field.name], default=None, hidden=hidden, **kwargs)


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
@click.option("--ext", type=_ReferenceChoice(["png", "jpg", "same"]), default="png", show_default=True,
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
@click.option("--precision", type=click.Choice(PRECISION_CHOICES), default="auto",
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
@click.option("--outscale", type=float, default=None,
              help="Output size over the input's, as Real-ESRGAN's -s: the output is resized with Lanczos to "
                   "int(side x outscale) of the input's sides.  [default: the model's scale]")
@click.option("--alpha-upsampler", type=_ReferenceChoice(["model", "resize"]), default="model", show_default=True,
              help="SR models: 'model' runs the alpha channel through the network too (Real-ESRGAN's default); "
                   "'resize' resizes it bicubically (cheaper). Scale-1 models keep the alpha as it is.")
@click.option("--keep-metadata", is_flag=True,
              help="Copy each input's EXIF (date taken, camera, GPS) into its output (PNG, JPEG, WebP, AVIF), "
                   "as the output's: upright, its size. Off: written without (the reference's way); "
                   "colour profiles are kept either way.")
def translate(model: str, input: str, output: str, direction: str | None, ext: str, suffix: str, tile: int,
              tile_pad: int, batch_size: int, workers: int | None, device: str, precision: str,
              overwrite: bool, quality: int, eval_mode: bool, seed: int, ab_split: bool, outscale: float | None,
              alpha_upsampler: str, keep_metadata: bool) -> None:
    """Translate an image or a folder tree with MODEL into OUTPUT.

    MODEL is a .safetensors model file, a training run folder or a pretrained model name.
    INPUT is an image or a folder (recursive); OUTPUT mirrors its sub-folders (or, for one
    image, may name the output file: .png, .jpg, ...). Links to sub-folders and hidden
    sub-folders are not entered (a link can lead back up); links to images are read.
    Existing outputs are skipped, so an interrupted run continues. Exit status 1 if any
    image failed.
    """
    from i2i.infer import load_model
    from i2i.infer.folder import check_paths
    from i2i.infer.images import check_outscale
    from i2i.infer.tiles import check_tile

    check_tile(tile)  # mistakes in the tile, the outscale or the paths cost no model load
    check_outscale(outscale)
    check_paths(input, output, ext, suffix)
    translator = load_model(model, device=device, precision=precision, direction=direction,
                            test_mode="eval" if eval_mode else None, seed=seed)
    summary = translator.translate_folder(
        input, output, ext=ext, suffix=suffix, batch_size=batch_size, tile=tile, tile_pad=tile_pad,
        overwrite=overwrite, quality=quality, workers=workers, progress=True,
        ab_side=translator.direction[0] if ab_split else None, outscale=outscale, alpha_upsampler=alpha_upsampler,
        keep_metadata=keep_metadata,
    )
    if summary.failed:
        sys.exit(1)


@main.group(name="bench")
def bench_group() -> None:
    """Time training steps and folder translation here; each prints one JSON line
    (seconds, images/s, peak memory, precision, threads, CPU model and flags or GPU)."""


@bench_group.command(name="train")
@click.argument("pipeline")
@click.option("--image-size", type=click.IntRange(min=1), default=None, help="Crop size.  [default: the pipeline's]")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Images per step.  [default: the pipeline's]")
@click.option("--steps", type=click.IntRange(min=1), default=5, show_default=True, help="Timed steps.")
@click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True, help="Untimed steps first.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--precision", type=click.Choice(PRECISION_CHOICES), default=None,
              help="[default: training's default, auto]")
@click.option("--threads", type=click.IntRange(min=0), default=0, help="torch threads.  [default: one per core]")
@click.option("--channels-last", type=click.Choice(CHANNELS_LAST_CHOICES), default=None,
              help="Memory layout of the networks.  [default: training's default, auto]")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="Settings YAML, as `i2i train --config` reads (e.g. `degradation: realesrgan`).")
def bench_train(pipeline: str, image_size: int | None, batch_size: int | None, steps: int, warmup: int, device: str,
                precision: str | None, threads: int, channels_last: str | None, config_file: str | None) -> None:
    """Seconds per training step of PIPELINE (its reference defaults, random data on the device),
    and of the device augmentation that makes each step's batch (augment_sec)."""
    import json

    from i2i.bench import time_train_steps

    click.echo(json.dumps(time_train_steps(pipeline, image_size=image_size or 0, batch_size=batch_size or 0,
                                           steps=steps, warmup=warmup, device=device, precision=precision or "",
                                           threads=threads, channels_last=channels_last or "",
                                           config_file=config_file)))


@bench_group.command(name="translate")
@click.option("--image-size", type=click.IntRange(min=1), default=256, show_default=True, help="PNG size.")
@click.option("--images", type=click.IntRange(min=1), default=20, show_default=True, help="PNGs to translate.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--precision", type=click.Choice(PRECISION_CHOICES), default="auto", show_default=True)
@click.option("--model", type=click.Choice(["resnet_9blocks", "tiny"]), default="resnet_9blocks", show_default=True,
              help="The reference CycleGAN generator, or a tiny one (resnet_6blocks, width 4).")
def bench_translate(image_size: int, images: int, device: str, precision: str, model: str) -> None:
    """Seconds per image of `i2i translate` on random PNGs, disk to disk, in a fresh process
    (start-up included)."""
    import json

    from i2i.bench import time_translate

    click.echo(json.dumps(time_translate(image_size=image_size, images=images, device=device, precision=precision,
                                         model=model)))


@main.group(name="models")
def models_group() -> None:
    """Pretrained models: `i2i translate NAME in/ out/` uses one by name."""


@models_group.command(name="list")
def models_list() -> None:
    """The registered models: name, task, size, where (shipped, cached or download) and what it is."""
    from i2i import zoo

    rows = zoo.list_rows()
    if not rows:
        click.echo("no pretrained models registered")
    width = max((len(row["name"]) for row in rows), default=0)
    for row in rows:
        scores = ", ".join(f"{name} {m['psnr_y']:.2f} dB" for name, m in row["metrics"].items() if "psnr_y" in m)
        click.echo(f"{row['name']:<{width}}  {row['task']:<8} {row['size']:>10}  {row['where']:<8}  "
                   f"{row['description']}" + (f" ({scores})" if scores else ""))


@models_group.command(name="pull")
@click.argument("name")
def models_pull(name: str) -> None:
    """Download model NAME into $I2I_HOME/models (resuming, verified), or check the copy here."""
    from i2i import zoo

    click.echo(zoo.resolve(name))


@models_group.command(name="import")
@click.argument("file", type=click.Path(path_type=str))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=str),
              help="The i2i model file to write (.safetensors).")
@click.option("--arch", default=None,
              help="Fail unless FILE is this architecture: resnet_6blocks, resnet_9blocks, unet_32/64/128/256, "
                   "srresnet, rrdbnet or srvggnet_compact.  [default: recognised from its keys]")
@click.option("--direction", type=click.Choice(["AtoB", "BtoA"]), default=None,
              help="CycleGAN/pix2pix generators: the way it translates (BtoA: a model trained with --direction "
                   "BtoA, or CycleGAN's G_B), so --ab-split feeds its half.  [default: from the file: "
                   "*_net_G_B.pth or a train_opt.txt beside it, else AtoB]")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
def models_import(file: str, out: str, arch: str | None, direction: str | None, overwrite: bool) -> None:
    """Convert a foreign generator checkpoint into an i2i model file.

    FILE: a reference CycleGAN/pix2pix *_net_G*.pth, a BasicSR / ESRGAN / Real-ESRGAN .pth or
    .safetensors. Prints what was inferred from its keys, shapes and name, and what was assumed."""
    from pathlib import Path

    from i2i.atomic import check_output_file
    from i2i.importers import import_checkpoint

    check_output_file(out, ".safetensors", file, overwrite=overwrite)
    result = import_checkpoint(Path(file), arch=arch, direction=direction)
    for note in result.notes:
        click.echo(note)
    result.save(out)
    way = "" if result.spec.pipeline == "srgan" else f", {result.spec.default_direction}"
    click.echo(f"wrote {out} ({result.arch['name']}{way})")


@models_group.command(name="export")
@click.argument("model")
@click.option("--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True,
              help="Export format.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="The file to write.  [default: MODEL with .onnx]")
@click.option("--direction", type=click.Choice(["AtoB", "BtoA"]), default=None,
              help="CycleGAN models: which generator (default: the direction it was trained for).")
@click.option("--opset", type=click.IntRange(min=18), default=18, show_default=True, help="ONNX opset.")
@click.option("--exporter", type=click.Choice(["torchscript", "dynamo"]), default="torchscript", show_default=True,
              help="torch.onnx's exporter: TorchScript (fast) or torch.export (dynamo=True).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def models_export(model: str, fmt: str, out: str | None, direction: str | None, opset: int, exporter: str,
                  overwrite: bool) -> None:
    """Export MODEL's generator to ONNX.

    Dynamic batch, height and width; input and output in the model's ranges (in the file's
    metadata, with the opset). Needs the export extra: pip install 'i2i[export]'."""
    from i2i.export import export_onnx

    result = export_onnx(model, out, direction=direction, opset=opset, exporter=exporter, overwrite=overwrite)
    for note in result.notes:
        click.echo(note)
    click.echo(f"wrote {result.path} ({result.arch['name']}, ONNX opset {result.opset}, dynamic batch/height/width)")


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


# --- serve -------------------------------------------------------------------


@main.command()
@click.option("--models", "models", multiple=True, metavar="DIR_OR_NAME",
              help="A model file, a run folder, a folder of them, or a model name (repeatable). "
                   "Shipped and downloaded models are always listed.")
@click.option("--runs", type=click.Path(file_okay=False, exists=True), help="Show the training runs under this folder.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but a loopback address lets others use the server.")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(0, 65535), help="0: any free port.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--precision", type=click.Choice(PRECISION_CHOICES), default="auto",
              show_default=True, help="As for i2i translate.")
@click.option("--max-upload-mb", default=100, show_default=True, type=click.IntRange(min=1),
              help="Largest image file accepted.")
def serve(models: tuple[str, ...], runs: str | None, host: str, port: int, device: str, precision: str,
          max_upload_mb: int) -> None:
    """A local web page and HTTP API: translate images with any model, watch runs train.

    POST /api/translate?model=NAME[&direction=AtoB][&tile=N] with an image file as the body
    returns the PNG `i2i translate` would write; GET /api/models lists the names.
    """
    from i2i.serve import serve as run_server

    run_server(models, runs, host=host, port=port, device=device, precision=precision, max_upload_mb=max_upload_mb)
