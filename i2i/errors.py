"""Errors a user can cause. The CLI prints them as one line, never as a traceback."""
from __future__ import annotations

from collections.abc import Iterable


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


def did_you_mean(word: str, choices: Iterable[str], limit: int = 4) -> str:
    """"did you mean a, b?" with the `choices` close to `word`, or "" when none is: the one equal
    but for case (or `_`/`-`), those it begins (or, from 4 letters on, appears in), and those
    difflib finds alike, the closest first. The one helper every "unknown name" message uses."""
    import difflib

    def norm(text: str) -> str:
        return text.lower().replace("_", "-")

    key = norm(word)
    scores: dict[str, float] = {}
    for choice in dict.fromkeys(choices):
        name = norm(choice)
        ratio = difflib.SequenceMatcher(None, key, name).ratio()
        if name == key:
            scores[choice] = 3.0
        elif len(key) >= 2 and name.startswith(key):
            scores[choice] = 2.0 + ratio
        elif len(key) >= 4 and key in name:
            scores[choice] = 1.0 + ratio
        elif ratio >= 0.6:  # difflib.get_close_matches' cutoff
            scores[choice] = ratio
    close = sorted(scores, key=lambda choice: -scores[choice])[:limit]
    return f"did you mean {', '.join(close)}?" if close else ""
