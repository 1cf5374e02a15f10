"""What the page shows of a training run: read from its metrics.jsonl and samples/, never
written (the trainer owns the folder). The loss curves are the run page's own SVG charts
(`i2i.report`), so they look the same in both places."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from i2i import run_layout as layout
from i2i.report import loss_charts, plotted_keys, read_metrics, sample_grids


def run_summary(run: Path) -> dict[str, Any]:
    """A run's line in the list: its last step and when it last logged."""
    records = read_metrics(run)
    metrics = run / layout.METRICS
    return {"step": records[-1]["step"] if records else 0,
            "updated": metrics.stat().st_mtime if metrics.is_file() else None,
            "has_model": (run / layout.MODEL).is_file()}


def run_details(run: Path) -> dict[str, Any]:
    """A run's step, speed, loss curves (SVG, one per loss) and its latest sample grid's step."""
    records = read_metrics(run)
    last = records[-1] if records else {}
    grids = sample_grids(run)
    return {"step": last.get("step", 0), "epoch": last.get("epoch"), "sec_per_step": last.get("sec_per_step"),
            "lr": last.get("lr"), "charts": loss_charts(records, plotted_keys(records)),
            "sample_step": grids[0][0] if grids else None}


def latest_sample(run: Path) -> bytes | None:
    """The newest samples/step_N.png's bytes, or None."""
    grids = sample_grids(run)
    if not grids:
        return None
    try:
        return grids[0][1].read_bytes()
    except OSError:
        return None
