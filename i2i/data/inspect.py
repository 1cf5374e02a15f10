"""`i2i data inspect`: what a data folder holds, and what is wrong with it.

It reads only image files (by extension, through `i2i.data.io.list_images`): a
`MANIFEST.json` or a `README` beside the images is ignored, and counted as such. Every
image is decoded, so a truncated or corrupt file is found and reported on one line.

Besides `detect_layout`'s layouts it knows the super-resolution one that `i2i train srgan`
reads: `HR/`, with `LR/` or `LR/X<scale>/` (BasicSR, DIV2K) or no LR folder (bicubic LR),
its LR files matched to HR ones by `pair_lr_files`, the rule of training and `i2i eval --lr`.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from i2i.progress import progress_bar

# The folders that make up each layout, in report order.
_SIDES = {
    "unpaired": ("trainA", "trainB", "testA", "testB"),
    "paired_ab": ("train", "val", "test"),
    "paired_folders": ("A", "B"),
    "plain": (".",),
}


def _sr_sides(root: Path) -> tuple[str, ...]:
    """HR, then the LR folders of the SR layout: LR/X2, LR/X4, ... where they exist (each is
    the LR of one scale, as `sr_folders` takes LR/X<scale>), else LR, else none."""
    lr = root / "LR"
    scales = sorted(int(p.name[1:]) for p in lr.iterdir() if p.is_dir() and p.name[:1] == "X"
                    and p.name[1:].isdigit()) if lr.is_dir() else []
    if scales:
        return ("HR", *(f"LR/X{scale}" for scale in scales))
    return ("HR", "LR") if lr.is_dir() else ("HR",)


def _lr_size_problem(hr: Path, lr: Path, shapes: dict[Path, tuple[int, int]], scale: int) -> str | None:
    """`lr_size_problem` (training's rule) for two decoded files; None also when either failed
    to decode (a bad file of its own)."""
    from i2i.data.datasets import lr_size_problem

    if hr not in shapes or lr not in shapes:
        return None
    return lr_size_problem(shapes[lr][::-1], shapes[hr][::-1], lr, hr, scale)  # shapes: (width, height)


def _lr_scale(root: Path, side: str, files: dict[str, list[Path]], shapes: dict[Path, tuple[int, int]]) -> int:
    """The scale an LR folder is paired at: X<k>'s k; for a bare LR/, of the usual ones, the
    scale at which the most LR files have their HR image's size divided by it (names may
    carry it too: 'baby_x4', which is why pairing depends on it)."""
    from i2i.data.datasets import pair_lr_files
    from i2i.errors import UsageError

    if side.startswith("LR/X"):
        return int(side[4:])
    best_scale, best_fits = 4, -1  # none pairs: x4, whose unmatched line then says why
    for scale in (2, 3, 4):  # the scales `i2i train srgan` takes
        try:
            pairs = pair_lr_files(root / "HR", files["HR"], root / side, files[side], scale)
        except UsageError:
            continue
        fits = sum(hr in shapes and lr in shapes and not _lr_size_problem(hr, lr, shapes, scale) for hr, lr in pairs)
        if fits > best_fits:
            best_scale, best_fits = scale, fits
    return best_scale


def _pair_sr(report: InspectReport, root: Path, files: dict[str, list[Path]],
             shapes: dict[Path, tuple[int, int]]) -> None:
    """Notes how many HR images each LR folder pairs, or the one line (names included) with
    which `pair_lr_files`, and so `i2i train srgan` and `i2i eval --lr`, refuse the folders;
    an LR image that is not its HR image (mod-cropped) divided by the scale is a bad file,
    as training skips it."""
    from i2i.data.datasets import pair_lr_files
    from i2i.errors import UsageError

    lr_sides = [side for side in files if side != "HR"]
    if not lr_sides:
        report.notes.append("no LR/ folder: training and eval make each LR image by MATLAB-exact bicubic "
                            "downscaling of its HR image")
    for side in lr_sides:
        scale = _lr_scale(root, side, files, shapes)
        try:
            pairs = pair_lr_files(root / "HR", files["HR"], root / side, files[side], scale)
        except UsageError as error:  # unmatched, or two LR files for one HR: the line training prints
            if report.unmatched is None:
                report.unmatched = str(error)
            else:  # one line per LR folder: a second one's goes with the notes
                report.notes.append(str(error))
            continue
        report.notes.append(f"{len(pairs)} of {len(files['HR'])} HR images have an LR image in {side}/")
        report.bad.extend(filter(None, (_lr_size_problem(hr, lr, shapes, scale) for hr, lr in pairs)))


def _describe(image) -> str:
    """'256x256 RGB 8-bit', 'gray+alpha 16-bit', ... for the size and mode histogram."""
    channels = image.pixels.shape[2] if image.pixels.ndim == 3 else 1
    mode = "gray" if channels == 1 else "RGB"
    if image.alpha is not None:
        mode = "RGBA" if channels == 3 else "gray+alpha"
    width, height = image.size
    return f"{width}x{height} {mode} {image.bit_depth}-bit"


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
    histogram: dict[str, Counter] = field(default_factory=dict)  # side -> size and mode -> count
    bad: list[str] = field(default_factory=list)
    unmatched: str | None = None
    notes: list[str] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # what training would refuse, beside bad files

    @property
    def ok(self) -> bool:
        """False where training would skip a file or refuse the folder (exit status 1)."""
        return not self.bad and not self.unmatched and not self.refused

    def lines(self) -> list[str]:
        out = [f"{self.root}/: layout {self.layout}"]
        for side, count in self.counts.items():
            name = f"{side}/" if side != "." else "images"
            out.append(f"  {name}: {count} image{'s' if count != 1 else ''}")
        if self.histogram:  # per side: which domain is gray, RGBA, 16-bit or of other sizes
            out.append("sizes and modes:")
            for side, histogram in self.histogram.items():
                indent = "  " if side == "." else "    "
                if side != ".":
                    out.append(f"  {side}/:")
                for key, count in sorted(histogram.items(), key=lambda kv: (-kv[1], kv[0])):
                    out.append(f"{indent}{key}: {count}")
        if self.ignored:
            names = ", ".join(p.name for p in self.ignored[:5]) + (", ..." if len(self.ignored) > 5 else "")
            out.append(f"ignored {len(self.ignored)} non-image file{'s' if len(self.ignored) != 1 else ''}: {names}")
        if self.unmatched:
            out.append(f"unmatched pairs: {self.unmatched}")
        out.extend(f"note: {note}" for note in self.notes)
        out.extend(f"training would refuse this: {line}" for line in self.refused)
        if self.bad:
            out.append(f"{len(self.bad)} bad file{'s' if len(self.bad) != 1 else ''}:")
            out.extend(f"  {line}" for line in self.bad)
        else:
            out.append("no bad files")
        return out


def inspect_folder(root: Path | str) -> InspectReport:
    """Detect the layout, count and decode every image of each side, find unmatched pairs."""
    from i2i.data.datasets import (
        ab_split_problem,
        detect_layout,
        match_stems,
        unmatched_message,
    )
    from i2i.data.io import file_problem, list_images, read_image
    from i2i.errors import I2IError

    root = Path(root)
    if not root.is_dir():  # a path that is not there is bad input (exit 1), as in translate and eval
        raise I2IError(f"{root}: {'not a folder' if root.exists() else 'no such folder'}")
    sr = (root / "HR").is_dir()  # sr_folders' first choice, before any pix2pix/CycleGAN layout
    report = InspectReport(root=root, layout="sr" if sr else detect_layout(root))
    files: dict[str, list[Path]] = {}
    shapes: dict[Path, tuple[int, int]] = {}
    odd: list[str] = []
    for side in _sr_sides(root) if sr else _SIDES[report.layout]:
        folder = root / side
        if not folder.is_dir():
            continue
        files[side] = list_images(folder)
        report.counts[side] = len(files[side])
        for path in progress_bar(files[side], f"{side}"):
            try:
                image = read_image(path)
            except Exception as error:  # an I2IError, or an unexpected decoder failure: one line
                report.bad.append(file_problem(path, error))
                continue
            report.histogram.setdefault(side, Counter())[_describe(image)] += 1
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
    if sr:
        _pair_sr(report, root, files, shapes)
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
        report.refused.append(f"paired folders need both A/ and B/; found only {', '.join(files) or 'neither'}")
    if report.layout == "unpaired":  # a test-only folder (testA/, testB/) is for translate: fine
        empty = [side for side in ("trainA", "trainB") if not files.get(side)]
        if len(empty) == 1:
            report.refused.append(f"{', '.join(s + '/' for s in empty)} missing or without images: "
                                  "CycleGAN trains on trainA/ and trainB/ together")
    return report
