"""Errors a user can cause. The CLI prints them as one line, never as a traceback."""
from __future__ import annotations


class I2IError(Exception):
    """A user-facing error: bad input, bad file, bad option. The message is one line."""

    exit_code = 1


class ImageReadError(I2IError):
    """An image file that cannot be decoded (names the file and the problem)."""


class UsageError(I2IError):
    """A wrong option or a wrong data layout."""

    exit_code = 2


def one_line(error: BaseException, limit: int | None = None, *, typed: bool = False) -> str:
    """An exception's message folded onto one line (its type name if it has none), cut at `limit`.

    `typed` puts the type name in front ("UnpicklingError: ..."), for errors not raised by i2i,
    whose message alone may say little."""
    text = " ".join(str(error).split())
    name = type(error).__name__
    text = (f"{name}: {text}" if typed else text) if text else name
    if limit is None or len(text) <= limit:
        return text
    cut = text[:limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut[limit // 2:] else cut) + "…"  # not mid-word
