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

# --- eval commands ---------------------------------------------------------

# --- train commands --------------------------------------------------------

# --- translate / models commands -------------------------------------------
