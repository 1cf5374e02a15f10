"""What the page shows of a training run: read from its metrics.jsonl and samples/, never
written (the trainer owns the folder). The loss curves are the run page's own SVG charts
(`i2i.report`), so they look the same in both places."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from i2i.report import loss_charts, read_metrics

_NOT_PLOTTED = {"step", "epoch", "data_sec", "images_per_sec"}  # as on the run's index.html
_SAMPLE = re.compile(r"step_(\d+)\.png")


def run_summary(run: Path) -> dict[str, Any]:
    """A run's line in the list: its last step and when it last logged."""
    records = read_metrics(run)
    metrics = run / "metrics.jsonl"
    return {"step": records[-1]["step"] if records else 0,
            "updated": metrics.stat().st_mtime if metrics.is_file() else None,
            "has_model": (run / "model.safetensors").is_file()}


def run_details(run: Path) -> dict[str, Any]:
    """A run's step, speed, loss curves (SVG, one per loss) and its latest sample grid's step."""
    records = read_metrics(run)
    keys: list[str] = []
    for record in records:
        keys += [key for key in record if key not in keys and key not in _NOT_PLOTTED]
    last = records[-1] if records else {}
    found = _latest_sample(run)
    return {"step": last.get("step", 0), "epoch": last.get("epoch"), "sec_per_step": last.get("sec_per_step"),
            "lr": last.get("lr"), "charts": loss_charts(records, keys),
            "sample_step": found[0] if found else None}


def latest_sample(run: Path) -> bytes | None:
    """The newest samples/step_N.png's bytes, or None."""
    found = _latest_sample(run)
    if found is None:
        return None
    try:
        return found[1].read_bytes()
    except OSError:
        return None


def _latest_sample(run: Path) -> tuple[int, Path] | None:
    folder = run / "samples"
    if not folder.is_dir():
        return None
    steps = [(int(match.group(1)), path) for path in folder.iterdir() if (match := _SAMPLE.fullmatch(path.name))]
    return max(steps) if steps else None
