"""Progress on stderr, one rule for every command: a bar where someone watches it (a terminal,
a Jupyter notebook), whole lines every `EVERY` seconds where it goes to a log or a pipe (cron,
SLURM, nohup), whose readers would get a bar's redraws as carriage returns."""
from __future__ import annotations

import sys
import time
from typing import Iterator

EVERY = 10.0  # seconds between a log's progress lines


def watched() -> bool:
    """Whether stderr is shown as it is written: a terminal, or a Jupyter cell's output (a
    kernel's stream, no tty, yet it shows a bar); not a file a notebook sent stderr to."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty()) or type(sys.stderr).__module__.startswith("ipykernel")


def line(text: str) -> None:
    """One whole line on stderr, in one write: another thread's line never lands mid-line."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class Ticker:
    """When a log is due its next progress line: every `every` seconds."""

    def __init__(self, every: float = EVERY) -> None:
        self.every = every
        self.start = self.last = time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.every:
            return False
        self.last = now
        return True

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start


def progress_bar(items: list, description: str, every: float = EVERY) -> Iterator:
    """`items`, with progress: a bar (for 100 or more) where it is watched, else a line every
    `every` seconds."""
    if watched():
        from tqdm import tqdm

        yield from tqdm(items, desc=description, unit="img", leave=False, disable=len(items) < 100)
        return
    ticker = Ticker(every)
    for done, item in enumerate(items):
        if ticker.due():
            line(f"{description}: {done}/{len(items)} images after {ticker.elapsed:.0f} s")
        yield item
