"""`i2i data inspect`: what a data folder holds, and what is wrong with it.

It reads only image files (by extension, through `i2i.data.io.list_images`): a
`MANIFEST.json` or a `README` beside the images is ignored, and counted as such. Every
image is decoded, so a truncated or corrupt file is found and reported on one line.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# The folders that make up each layout, in report order.
_SIDES = {
    "unpaired": ("trainA", "trainB", "testA", "testB"),
    "paired_ab": ("train", "val", "test"),
    "paired_folders": ("A", "B"),
    "plain": (".",),
}


def problem_line(path: Path, error: Exception) -> str:
    """'path: problem', without repeating the path when the error already starts with it."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if text.startswith(str(path)) else f"{path}: {text}"


def _describe(image) -> str:
    """'256x256 RGB 8-bit', 'gray+alpha 16-bit', ... for the size and mode histogram."""
    channels = image.pixels.shape[2] if image.pixels.ndim == 3 else 1
    mode = "gray" if channels == 1 else "RGB"
    if image.alpha is not None:
        mode = "RGBA" if channels == 3 else "gray+alpha"
    width, height = image.size
    return f"{width}x{height} {mode} {image.bit_depth}-bit"


def progress_bar(items: list, description: str):
    from tqdm import tqdm

    return tqdm(items, desc=description, unit="img", leave=False, disable=len(items) < 100)


def _ignored(folder: Path, used: list[Path]) -> tuple[list[Path], list[Path]]:
    """(non-image files, images outside the layout's folders), hidden names left out:
    hidden folders (.git) are not even entered, as `list_images` does not enter them."""
    from i2i.data.io import IMAGE_EXTENSIONS

    known = set(used)
    others = []
    for parent, subfolders, names in os.walk(folder):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        paths = (Path(parent) / name for name in names if not name.startswith("."))
        others.extend(p for p in paths if p.is_file() and p not in known)
    return (sorted(p for p in others if p.suffix.lower() not in IMAGE_EXTENSIONS),
            sorted(p for p in others if p.suffix.lower() in IMAGE_EXTENSIONS))


@dataclass
class InspectReport:
    """What `i2i data inspect` found; `lines()` is the printed report, `ok` its verdict."""

    root: Path
    layout: str
    counts: dict[str, int] = field(default_factory=dict)
    histogram: Counter = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)
    unmatched: str | None = None
    notes: list[str] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad

    def lines(self) -> list[str]:
        out = [f"{self.root}/: layout {self.layout}"]
        for side, count in self.counts.items():
            name = f"{side}/" if side != "." else "images"
            out.append(f"  {name}: {count} image{'s' if count != 1 else ''}")
        if self.histogram:
            out.append("sizes and modes:")
            for key, count in sorted(self.histogram.items(), key=lambda kv: (-kv[1], kv[0])):
                out.append(f"  {key}: {count}")
        if self.ignored:
            names = ", ".join(p.name for p in self.ignored[:5]) + (", ..." if len(self.ignored) > 5 else "")
            out.append(f"ignored {len(self.ignored)} non-image file{'s' if len(self.ignored) != 1 else ''}: {names}")
        if self.unmatched:
            out.append(f"unmatched pairs: {self.unmatched}")
        out.extend(f"note: {note}" for note in self.notes)
        if self.bad:
            out.append(f"{len(self.bad)} bad file{'s' if len(self.bad) != 1 else ''}:")
            out.extend(f"  {line}" for line in self.bad)
        else:
            out.append("no bad files")
        return out


def inspect_folder(root: Path | str) -> InspectReport:
    """Detect the layout, count and decode every image of each side, find unmatched pairs."""
    from i2i.data.datasets import ab_split_problem, detect_layout, match_stems, unmatched_message
    from i2i.data.io import list_images, read_image

    root = Path(root)
    report = InspectReport(root=root, layout=detect_layout(root))
    files: dict[str, list[Path]] = {}
    shapes: dict[Path, tuple[int, int]] = {}
    odd: list[str] = []
    for side in _SIDES[report.layout]:
        folder = root / side
        if not folder.is_dir():
            continue
        files[side] = list_images(folder)
        report.counts[side] = len(files[side])
        for path in progress_bar(files[side], f"{side}"):
            try:
                image = read_image(path)
            except Exception as error:  # an I2IError, or an unexpected decoder failure: one line
                report.bad.append(problem_line(path, error))
                continue
            report.histogram[_describe(image)] += 1
            shapes[path] = image.size
            if report.layout != "paired_ab":
                continue
            problem = ab_split_problem(path, *image.size)
            if problem:
                report.bad.append(problem)
            elif image.size[0] % 2:
                odd.append(path.name)
    if odd:
        report.notes.append(f"{len(odd)} AB image(s) of odd width ({', '.join(odd[:5])}): the last column is dropped when split into A|B")
    report.ignored, unused = _ignored(root, [p for side_files in files.values() for p in side_files])
    if unused:
        names = ", ".join(str(p.relative_to(root)) for p in unused[:5]) + (", ..." if len(unused) > 5 else "")
        report.notes.append(f"{len(unused)} image(s) outside the {report.layout} layout's folders, not used: {names}")
    if report.layout == "paired_folders" and "A" in files and "B" in files:
        pairs, a_only, b_only = match_stems(root / "A", root / "B", files["A"], files["B"])
        if a_only or b_only:
            report.unmatched = unmatched_message(a_only, b_only)
        scales = Counter()
        for a_path, b_path in pairs:
            if a_path in shapes and b_path in shapes and shapes[a_path] != shapes[b_path]:
                (wa, ha), (wb, hb) = shapes[a_path], shapes[b_path]
                if wb % wa == 0 and hb == ha * (wb // wa):
                    scales[wb // wa] += 1  # an SR pair: B is exactly k times A
                else:
                    report.bad.append(f"{b_path}: {wb}x{hb} differs from its pair {a_path} ({wa}x{ha})")
        for scale, count in sorted(scales.items()):
            report.notes.append(f"{count} pair(s) are super-resolution pairs: B is exactly {scale}x A")
    if report.layout == "paired_folders" and ("A" not in files or "B" not in files):
        report.notes.append(f"paired folders need both A/ and B/; found only {', '.join(files) or 'neither'}")
    return report
