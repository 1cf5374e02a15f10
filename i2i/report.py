"""A run's `index.html`: loss curves and sample grids over time, one self-contained page.

The curves are inline SVG polylines (no plotting library, readable in any browser); the
sample grids are the PNGs in `RUN/samples/`, newest first. Rewritten atomically whenever
the trainer writes samples or a checkpoint, from `metrics.jsonl` and the samples folder.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

from i2i import run_layout as layout
from i2i.atomic import write_text

# Columns of metrics.jsonl that are bookkeeping, not curves.
_NOT_PLOTTED = {"step", "epoch", "data_sec", "images_per_sec"}


def read_metrics(run: str | Path) -> list[dict]:
    """The records of `RUN/metrics.jsonl` (lines cut short by a kill, or damaged, are skipped)."""
    path = Path(run) / layout.METRICS
    records = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int):
                records.append(record)
    return records


# Presentation attributes inside the SVG, not CSS classes: a chart looks the same on any page
# (an SVG shape without a fill is drawn solid black).
_TITLE = 'font-family="sans-serif" font-size="13" font-weight="bold" fill="#222"'
_VALUE = 'font-family="sans-serif" font-size="12" fill="#222"'
_AXIS = 'font-family="sans-serif" font-size="10" fill="#666"'


def svg_chart(name: str, points: list[tuple[float, float]], width: int = 360, height: int = 170) -> str:
    """One small line chart: `points` (step, value) as a polyline with min/max/last labels."""
    points = [(x, y) for x, y in points if isinstance(y, (int, float)) and math.isfinite(y)]
    if len(points) > 800:  # enough for a 360 px wide chart
        stride = math.ceil(len(points) / 800)
        points = points[::stride] + [points[-1]]
    left, right, top, bottom = 58, 8, 22, 22  # room for labels such as "0.00927" or "-1.23e+04"
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" style="background:#fff;border:1px solid #ddd">')
    title = f'<text x="{left}" y="14" {_TITLE}>{html.escape(name)}</text>'
    if not points:
        return f"{svg}{title}</svg>"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    last_step = x1
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5 * abs(y0 or 1), y1 + 0.5 * abs(y1 or 1)

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y: float) -> float:
        return top + (y1 - y) / (y1 - y0) * (height - top - bottom)

    line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    return (
        f'{svg}{title}'
        f'<text x="{width - right}" y="14" text-anchor="end" {_VALUE}>last {ys[-1]:.4g}</text>'
        f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
        f'fill="none" stroke="#eee"/>'
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" {_AXIS}>{y1:.3g}</text>'
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end" {_AXIS}>{y0:.3g}</text>'
        f'<text x="{left}" y="{height - 6}" {_AXIS}>{x0:g}</text>'
        f'<text x="{width - right}" y="{height - 6}" text-anchor="end" {_AXIS}>step {last_step:g}</text>'
        f'<polyline points="{line}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>'
        f'<circle cx="{sx(xs[-1]):.1f}" cy="{sy(ys[-1]):.1f}" r="2.5" fill="#1f77b4"/></svg>'
    )


def sample_grids(run: str | Path) -> list[tuple[int, Path]]:
    """The run's samples/step_N.png files as (N, path), newest first (run page and i2i serve)."""
    return layout.by_step(Path(run) / layout.SAMPLES, ".png")[::-1]


_STYLE = """body{font-family:sans-serif;margin:1.5em;color:#222}
.charts{display:flex;flex-wrap:wrap;gap:10px}
img{max-width:100%;image-rendering:pixelated;border:1px solid #ddd}
table{border-collapse:collapse;font-size:12px}td{padding:1px 8px;border-bottom:1px solid #eee}"""


def plotted_keys(records: list[dict]) -> list[str]:
    """The losses the records hold, in order of first appearance (not step, epoch or speed)."""
    keys: list[str] = []
    for record in records:
        keys += [k for k in record if k not in keys and k not in _NOT_PLOTTED]
    return keys


def loss_charts(records: list[dict], keys: list[str] | tuple[str, ...]) -> str:
    """One `svg_chart` per key that some metrics record holds, over the steps."""
    return "".join(svg_chart(k, [(r["step"], r.get(k)) for r in records])
                   for k in keys if any(k in r for r in records))


def write_index(run: str | Path, columns: tuple[str, ...] = ()) -> Path:
    """Write `RUN/index.html` from the run's metrics, samples and config; returns its path.
    `columns` names the sample grids' columns (each row is one image of the batch)."""
    run = Path(run)
    records = read_metrics(run)
    charts = loss_charts(records, plotted_keys(records))
    last = records[-1] if records else {}
    config_path = run / layout.CONFIG
    rows = ""
    if config_path.is_file():
        for line in config_path.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            rows += f"<tr><td>{html.escape(key)}</td><td>{html.escape(value.strip())}</td></tr>"
    samples = "".join(
        f'<h3>step {step}</h3><img src="{html.escape(src)}" alt="samples at step {step}" loading="lazy">'
        for step, src in ((step, f"{layout.SAMPLES}/{path.name}") for step, path in sample_grids(run))
    )
    legend = f"<p>columns: {html.escape(' | '.join(columns))}</p>" if columns else ""
    summary = f"step {last.get('step', 0)}, epoch {last.get('epoch', 0)}"
    if isinstance(last.get("sec_per_step"), (int, float)) and last["sec_per_step"] > 0:
        summary += f", {last['sec_per_step']:.3g} s/step"
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(run.name)}: i2i run</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(run.name)}</h1><p>{html.escape(summary)}</p>"
        f"<h2>Losses</h2><div class='charts'>{charts or '<p>no metrics yet</p>'}</div>"
        f"<h2>Samples</h2>{legend}{samples or '<p>no samples yet</p>'}"
        f"<h2>Settings</h2><table>{rows}</table></body></html>"
    )
    path = run / layout.PAGE
    write_text(path, page)
    return path
