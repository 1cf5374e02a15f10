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
    from i2i.data.inspect import derive_pairs

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
    """Score super-resolution on a folder of HR images (PSNR/SSIM on Y, border cropped)."""


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
    from i2i.evaluate import evaluate_bicubic, format_table, write_json

    result = evaluate_bicubic(data, scale, protocol=protocol)
    click.echo(format_table(result))
    if json_path:
        write_json(result, json_path)
        click.echo(f"wrote {json_path}")


# --- train commands --------------------------------------------------------

# --- translate / models commands -------------------------------------------
