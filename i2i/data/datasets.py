"""Datasets for the three pipelines, on the reference CycleGAN/pix2pix and BasicSR layouts.

Every dataset yields dicts `{"A": input, "B": target, "A_path": str, "B_path": str}`
(`SingleFolderDataset`: only `A` and `A_path`) with float32 CHW tensors in [0, 1]; the
pipelines map them to [-1, 1] themselves. Every dataset has `in_channels` and
`out_channels`: the channels of the generator's input and output (of A and B, except for
`UnpairedDataset` with BtoA, whose A and B keep their folders and the pipeline swaps them).

Layouts (`detect_layout`):

* `unpaired`:        `root/trainA`, `root/trainB` (`testA`, `testB` for phase "test")
* `paired_ab`:       side-by-side AB images in `root/train` (`val`, `test`): left half A
* `paired_folders`:  `root/A` + `root/B` matched by file stem (or `trainA`/`trainB`
                     read as pairs when a paired dataset is asked for)
* `plain`:           images directly in `root`: derived pairs (colorize, sketch, sr)

A bad image inside a dataset does not stop a run: decoding every file up front would be
slow, so `__getitem__` catches `ImageReadError`, prints one warning line per file to
stderr (once per process) and returns the next readable index instead (`UnpairedDataset`
draws another B for a bad B, keeping its A). A dataset in which nothing can be read raises
`I2IError`. Bad files are remembered per process, and every try starts from the same
random state, so a sample does not depend on which bad files a worker already knew (a
resumed run gets the samples of the run that never stopped).
"""
from __future__ import annotations

import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from i2i.data.bicubic import imresize, modcrop, round_to
from i2i.data.io import list_images, no_images_hint, read_header, read_image, shown_path, to_tensor
from i2i.data.color import LUMA, rgb_to_lab01
from i2i.data.sketch import sketch
from i2i.errors import I2IError, ImageReadError, UsageError

T = TypeVar("T")

TASKS = ("colorize", "colorize_lab", "sketch")

Transform = Callable[..., tuple[np.ndarray, "np.ndarray | None"]]

_WARNED: set[str] = set()
_WARNED_IN: Counter = Counter()  # warnings printed per folder
_MAX_WARNINGS = 50


# --------------------------------------------------------------------------- helpers


def _warn_once(message: str, root: Path) -> None:
    """One line on stderr per bad file and process (each DataLoader worker warns once), up to
    `_MAX_WARNINGS` a folder: thousands of unreadable files (Git LFS pointers) say so in one
    more line, not thousands."""
    if message in _WARNED:
        return
    _WARNED.add(message)
    _WARNED_IN[root] += 1
    if _WARNED_IN[root] <= _MAX_WARNINGS:
        print(f"warning: skipping {message}", file=sys.stderr, flush=True)
    elif _WARNED_IN[root] == _MAX_WARNINGS + 1:
        print(f"warning: more than {_MAX_WARNINGS} files of {root}/ skipped; the others are not listed "
              "(`i2i data inspect` lists them all)", file=sys.stderr, flush=True)


def gray(pixels: np.ndarray) -> np.ndarray:
    """BT.601 luma (0.299 R + 0.587 G + 0.114 B) of HxWx3 pixels as HxWx1, rounded back
    to the input's integer type (what PIL's convert("L") gives, within one level)."""
    if pixels.shape[-1] == 1:
        return pixels
    y = pixels[..., :3].astype(np.float64) @ np.asarray(LUMA)
    if np.issubdtype(pixels.dtype, np.integer):
        return round_to(y, pixels.dtype)[..., None]
    return y.astype(pixels.dtype)[..., None]


def to_channels(pixels: np.ndarray, channels: int | None) -> np.ndarray:
    """Gray -> RGB by repetition, RGB -> gray by BT.601 luma; None keeps the file's."""
    have = pixels.shape[-1]
    if channels is None or have == channels:
        return pixels
    if have == 1 and channels == 3:
        return np.repeat(pixels, 3, axis=-1)
    if have == 3 and channels == 1:
        return gray(pixels)
    raise UsageError(f"cannot convert {have}-channel images to {channels} channels")


def folder_channels(files: list[Path]) -> int:
    """1 when every file is stored gray, else 3: what `--in-channels 0` ("from the data")
    means for a paired or unpaired folder, so a folder of sketches trains a model that writes
    gray files, as `--task sketch` does. Headers only; stops at the first colour file."""
    gray = False
    for path in files:
        header = read_header(path)  # None: unreadable, skipped in training
        channels = header.channels if header else None
        if channels == 3:
            return 3
        gray = gray or channels == 1
    return 1 if gray else 3


def load_pixels(path: Path | str, channels: int | None = None) -> np.ndarray:
    """Decode one file (through `i2i.data.io`) to HxWxC pixels with `channels` channels."""
    return to_channels(read_image(path).pixels, channels)


def ab_split_problem(path: Path | str, width: int, height: int) -> str | None:
    """Why a side-by-side A|B image cannot be split into two non-empty halves; None if it can."""
    if width >= 2:
        return None
    return f"{path}: {width}x{height} is too narrow to split into A|B halves (at least 2 pixels wide)"


def split_ab(ab: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(left half A, right half B) of a side-by-side image; an odd last column is dropped,
    and one too narrow to split is an ImageReadError (skipped like any bad file)."""
    problem = ab_split_problem(path, ab.shape[1], ab.shape[0])
    if problem:
        raise ImageReadError(problem)
    half = ab.shape[1] // 2
    return ab[:, :half], ab[:, half:2 * half]


def _images(folder: Path) -> list[Path]:
    return list_images(folder) if folder.is_dir() else []


def _key(path: Path, folder: Path) -> str:
    """A file's name for matching pairs: its path below the folder, without extension."""
    return path.relative_to(folder).with_suffix("").as_posix()


def _names(keys: list[str], limit: int = 10) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def match_stems(a_folder: Path, b_folder: Path, a_files: list[Path], b_files: list[Path]) -> tuple[list[tuple[Path, Path]], list[str], list[str]]:
    """Pairs matched by stem (relative path without extension), A-only and B-only stems."""
    sides = []
    for folder, files in ((a_folder, a_files), (b_folder, b_files)):
        by_key: dict[str, Path] = {}
        for path in files:
            key = _key(path, folder)
            if key in by_key:
                raise UsageError(f"{folder}/ has two images named {key!r} ({by_key[key].name}, {path.name}); stems must be unique to match pairs")
            by_key[key] = path
        sides.append(by_key)
    a_map, b_map = sides
    pairs = [(a_map[k], b_map[k]) for k in sorted(a_map) if k in b_map]
    return pairs, sorted(set(a_map) - set(b_map)), sorted(set(b_map) - set(a_map))


def unmatched_message(a_only: list[str], b_only: list[str]) -> str:
    """'3 unmatched: A only: x, y; B only: z' (the one-line report of pairs without partner)."""
    parts = []
    if a_only:
        parts.append(f"A only: {_names(a_only)}")
    if b_only:
        parts.append(f"B only: {_names(b_only)}")
    return f"{len(a_only) + len(b_only)} unmatched: " + "; ".join(parts)


def detect_layout(root: Path | str) -> str:
    """'unpaired', 'paired_ab', 'paired_folders' or 'plain' (see the module docstring).

    Checked in that order of folder names; a folder with none of them and no images is
    a `UsageError` naming the folder and the layouts expected.
    """
    root = Path(root)
    if not root.is_dir():
        raise I2IError(f"{root}/ does not exist or is not a folder")
    if any((root / name).is_dir() for name in ("trainA", "trainB", "testA", "testB")):
        return "unpaired"
    if (root / "A").is_dir() or (root / "B").is_dir():
        return "paired_folders"
    if any((root / name).is_dir() for name in ("train", "val", "test")):
        return "paired_ab"
    if _images(root):
        return "plain"
    raise UsageError(
        f"{root}/ has no trainA/ or trainB/ (unpaired layout), A/ and B/ (paired folders), "
        f"train/ (paired AB layout) nor images (plain folder){no_images_hint(root)}"
    )


def lists_path(folders: list[Path], path: Path | str) -> Path | None:
    """The folder of `folders` (the ones a dataset lists, recursively: its `roots`) that `path`
    lies in, links followed, or None. A run folder there would have its sample grids read as
    training images (and its --resume refused: the data changed); hidden folders are not listed."""
    real = Path(os.path.realpath(path))
    for folder in folders:
        root = Path(os.path.realpath(folder))
        if (real == root or root in real.parents) and not any(
                part.startswith(".") for part in real.relative_to(root).parts):
            return folder
    return None


_LAYOUT_WORDS = {
    "unpaired": "an unpaired layout (trainA/, trainB/)",
    "paired_ab": "a paired AB layout (train/)",
    "paired_folders": "a paired layout (A/, B/)",
    "plain": "a plain folder of images",
}


class _RobustDataset(Dataset):
    """Skips unreadable files: `_item(i)` may raise ImageReadError; we warn and move on."""

    root: Path
    in_channels: int
    out_channels: int
    # What the networks need of an image after the transform, set by whoever builds them:
    # `--preprocess none` and `scale_width` pass any size through, and an image the
    # networks cannot take must be a skipped file, not an error deep inside a layer.
    size_multiple: int = 1
    min_size: int = 1

    def _item(self, index: int) -> dict:
        raise NotImplementedError

    def _check_fits(self, pixels: np.ndarray, path: Path) -> None:
        """An ImageReadError naming the file when the networks cannot take its size."""
        h, w = pixels.shape[:2]
        multiple, smallest = self.size_multiple, max(self.size_multiple, self.min_size)
        if min(h, w) < smallest:
            raise ImageReadError(f"{path}: {w}x{h} after preprocessing is smaller than the "
                                 f"{smallest}x{smallest} pixels the networks need")
        if h % multiple or w % multiple:
            raise ImageReadError(f"{path}: {w}x{h} after preprocessing is not a multiple of {multiple}, "
                                 "which the generator needs (--preprocess crop makes any image fit)")

    def __getitem__(self, index: int) -> dict:
        """Item `index`, or the next readable one after it. Unreadable indices are remembered
        (per process), so a long run of bad files is read once, not once per batch."""
        n = len(self)
        return _first_readable(((index + attempt) % n for attempt in range(n)), self._item,
                               self.__dict__.setdefault("_unreadable", set()), self.root, f"{self.root}/", n)


def _first_readable(candidates: Iterator[int], load: Callable[[int], T], bad: set[int], root: Path,
                    folder: str, n: int) -> T:
    """`load(i)` of the first candidate not known to be bad that reads. A bad one is remembered
    in `bad` (per process) and named once; every try starts from the same random state (a known
    bad index, skipped, draws nothing), so what a sample gets does not depend on which bad files
    this process already knew. None readable: the run's one-line I2IError naming `folder`."""
    state = torch.get_rng_state()
    for candidate in candidates:
        if candidate in bad:
            continue
        torch.set_rng_state(state)
        try:
            return load(candidate)
        except ImageReadError as error:
            bad.add(candidate)
            _warn_once(str(error), root)
    raise I2IError(f"{folder}: no readable image found (all {n} files are unreadable or do not fit)")


def _pack(a: np.ndarray, b: np.ndarray, a_path: Path | str, b_path: Path | str) -> dict:
    return {"A": to_tensor(a), "B": to_tensor(b), "A_path": str(a_path), "B_path": str(b_path)}


# --------------------------------------------------------------------------- datasets


class UnpairedDataset(_RobustDataset):
    """CycleGAN data: `root/<phase>A` and `root/<phase>B`, length max(|A|, |B|).

    Item i takes A[i % |A|] and, as the reference's unaligned dataset does, a random B
    (or B[i % |B|] with `serial_batches`). The two sides get independent transforms.
    `in_channels` / `out_channels` are the generator's; with `direction="BtoA"` its input is
    the B folder, so A is loaded with `out_channels` and B with `in_channels` (items are not
    swapped: the pipeline does that). A bad B is skipped for another B, drawn from a
    generator seeded by the sample's seed, so one bad B never costs an A image. Channels
    left at 0 come from the data: 1 when both folders are gray, else 3 (the identity loss
    needs as many input as output channels).
    """

    def __init__(
        self,
        root: Path | str,
        phase: str = "train",
        transform: Transform | None = None,
        serial_batches: bool = False,
        in_channels: int = 3,
        out_channels: int = 3,
        direction: str = "AtoB",
    ):
        if direction not in ("AtoB", "BtoA"):
            raise UsageError(f"direction must be AtoB or BtoA, got {direction!r}")
        self.root = Path(root)
        layout = detect_layout(self.root)
        if layout != "unpaired":
            raise UsageError(f"{self.root}/ has no {phase}A/ or {phase}B/ (unpaired layout); found {_LAYOUT_WORDS[layout]}")
        self.b_folder = self.root / f"{phase}B"
        self.a_files = _images(self.root / f"{phase}A")
        self.b_files = _images(self.b_folder)
        for side, files in (("A", self.a_files), ("B", self.b_files)):
            if not files:
                raise UsageError(f"{self.root}/{phase}{side}/ is missing or has no images"
                                 f"{no_images_hint(self.root / f'{phase}{side}') or f' (unpaired layout needs {phase}A/ and {phase}B/)'}")
        self.transform = transform
        self.roots = [self.root / f"{phase}A", self.b_folder]  # what it lists
        self.notes = [note for folder, files in zip(self.roots, (self.a_files, self.b_files))
                      if (note := small_images_note(folder, files, transform))]
        self.serial_batches = serial_batches
        if not (in_channels and out_channels):  # from the data: gray only when both folders are
            found = folder_channels(self.a_files + self.b_files)  # one side given: the other the same
            in_channels, out_channels = in_channels or out_channels or found, out_channels or in_channels or found
        self.in_channels = in_channels  # what the trainer reads: the generator's
        self.out_channels = out_channels
        # what the folders are loaded with: kept apart, so the generator's never undo them
        swap = direction == "BtoA"
        self.a_channels, self.b_channels = (out_channels, in_channels) if swap else (in_channels, out_channels)

    def __len__(self) -> int:
        return max(len(self.a_files), len(self.b_files))

    def _load(self, path: Path, channels: int) -> np.ndarray:
        """One side's pixels after its transform, or an ImageReadError naming the file."""
        pixels = load_pixels(path, channels)
        if self.transform is not None:
            pixels, _ = self.transform(pixels)
        self._check_fits(pixels, path)
        return pixels

    def _item(self, index: int) -> dict:
        a_path = self.a_files[index % len(self.a_files)]
        if self.serial_batches:
            first = index % len(self.b_files)
        else:
            first = int(torch.randint(len(self.b_files), ()).item())
        a = self._load(a_path, self.a_channels)  # an ImageReadError here marks this A index
        b_path, b = self._b_side(first)
        return _pack(a, b, a_path, b_path)

    def _b_side(self, first: int) -> tuple[Path, np.ndarray]:
        """(path, pixels) of B `first` or, if it is bad, of the next good B of a fixed order:
        B[first + 1], B[first + 2], ... with serial_batches, else a permutation seeded by the
        sample's seed (torch's initial seed, which SeededDataset sets per sample). Every try
        starts from the same random state, so the B taken and its crop do not depend on which
        bad Bs this process already knew (`_first_readable`). Every B bad: the run's one-line I2IError."""
        def load(b_index: int) -> tuple[Path, np.ndarray]:
            return self.b_files[b_index], self._load(self.b_files[b_index], self.b_channels)

        return _first_readable(self._b_order(first), load, self.__dict__.setdefault("_bad_b", set()), self.root,
                               f"{self.b_folder}/", len(self.b_files))

    def _b_order(self, first: int) -> Iterator[int]:
        """B indices to try, `first` first; the rest computed only when `first` is bad."""
        yield first
        n = len(self.b_files)
        if self.serial_batches:
            yield from ((first + step) % n for step in range(1, n))
            return
        generator = torch.Generator().manual_seed(torch.initial_seed())
        yield from (b for b in torch.randperm(n, generator=generator).tolist() if b != first)


class PairedDataset(_RobustDataset):
    """pix2pix data: side-by-side AB images in `root/<phase>` (left half A, right half B;
    an odd last column is dropped) or `root/A` + `root/B` matched by stem (with
    `root/<phase>A` + `root/<phase>B` read as pairs when the layout is unpaired).

    Stems without a partner are one `UsageError` line listing them. Both sides get the
    same random crop/flip. A pair whose sides differ in size is skipped like a bad file.
    `direction="BtoA"` swaps the sides (in/out channels describe the swapped result); a
    channel count of 0 is taken from the data (`folder_channels` of that side's files).
    """

    def __init__(
        self,
        root: Path | str,
        phase: str = "train",
        transform: Transform | None = None,
        direction: str = "AtoB",
        in_channels: int = 3,
        out_channels: int = 3,
    ):
        if direction not in ("AtoB", "BtoA"):
            raise UsageError(f"direction must be AtoB or BtoA, got {direction!r}")
        self.root = Path(root)
        self.layout = detect_layout(self.root)
        self.transform = transform
        self.direction = direction
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.ab_files: list[Path] = []
        self.pairs: list[tuple[Path, Path]] = []
        if self.layout == "paired_ab":
            self.ab_files = _images(self.root / phase)
            if not self.ab_files:
                raise UsageError(f"{self.root}/{phase}/ is missing or has no images{no_images_hint(self.root / phase) or ' (paired AB layout)'}")
            note = small_images_note(self.root / phase, self.ab_files, transform, halves=True)
            self.roots = [self.root / phase]  # what it lists
        elif self.layout in ("paired_folders", "unpaired"):
            names = ("A", "B") if self.layout == "paired_folders" else (f"{phase}A", f"{phase}B")
            a_dir, b_dir = self.root / names[0], self.root / names[1]
            a_files, b_files = _images(a_dir), _images(b_dir)
            for folder, files in ((a_dir, a_files), (b_dir, b_files)):
                if not files:
                    raise UsageError(f"{folder}/ is missing or has no images{no_images_hint(folder) or ''} (paired layout needs "
                                     f"{names[0]}/ and {names[1]}/ matched by file name)")
            self.pairs, a_only, b_only = match_stems(a_dir, b_dir, a_files, b_files)
            if a_only or b_only:
                raise UsageError(f"{self.root}/: {unmatched_message(a_only, b_only)}")
            note = small_images_note(a_dir, a_files, transform)  # a pair's sides have one size
            self.roots = [a_dir, b_dir]
        else:
            raise UsageError(
                f"{self.root}/ is a plain folder of images; paired data needs {phase}/ (side-by-side AB images) "
                "or A/ and B/ (matched by file name); to derive pairs use --task " + "|".join(TASKS)
            )
        self.notes = [note] if note else []  # for the trainer to print, once (not once per process)
        if not (in_channels and out_channels):
            self._channels_from_data()

    def _channels_from_data(self) -> None:
        """Fill the channel counts left at 0 from the files of their side (gray or colour)."""
        sides = [self.ab_files, self.ab_files] if self.ab_files else [list(s) for s in zip(*self.pairs)]
        if self.direction == "BtoA":
            sides.reverse()
        self.in_channels = self.in_channels or folder_channels(sides[0])
        self.out_channels = self.out_channels or folder_channels(sides[1])

    def __len__(self) -> int:
        return len(self.ab_files) or len(self.pairs)

    def _item(self, index: int) -> dict:
        if self.ab_files:
            a_path = b_path = self.ab_files[index]
            a, b = split_ab(read_image(a_path).pixels, a_path)
        else:
            a_path, b_path = self.pairs[index]
            a, b = read_image(a_path).pixels, read_image(b_path).pixels
            if a.shape[:2] != b.shape[:2]:
                raise ImageReadError(
                    f"{b_path}: {b.shape[1]}x{b.shape[0]} differs from its pair {a_path} "
                    f"({a.shape[1]}x{a.shape[0]}); the two sides of a pair must have the same size"
                )
        if self.direction == "BtoA":
            a, b, a_path, b_path = b, a, b_path, a_path
        a, b = to_channels(a, self.in_channels), to_channels(b, self.out_channels)
        if self.transform is not None:
            a, b = self.transform(a, b)
        self._check_fits(a, a_path)
        return _pack(a, b, a_path, b_path)


class DerivedDataset(_RobustDataset):
    """Pairs derived from a folder of photos (searched recursively), after the transform:

    * `colorize`:     A = BT.601 luminance (1 channel), B = the colour photo (3).
    * `colorize_lab`: the reference colorization dataset's Lab mode, in our [0, 1]
                      convention: A = L/100 (1 channel), B = ab/220 + 0.5 (2 channels),
                      so the pipelines' x*2-1 gives the reference's L/50-1 and ab/110.
                      `i2i.data.color.lab_to_rgb(A, B)` turns them back into RGB.
    * `sketch`:       A = the photo (3), B = its XDoG pencil sketch (1 channel, dark
                      lines on white; `i2i.data.sketch.sketch`, deterministic).
    """

    CHANNELS = {"colorize": (1, 3), "colorize_lab": (1, 2), "sketch": (3, 1)}

    def __init__(self, root: Path | str, task: str = "colorize", transform: Transform | None = None):
        if task not in self.CHANNELS:
            raise UsageError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        self.root = Path(root)
        self.task = task
        self.transform = transform
        self.in_channels, self.out_channels = self.CHANNELS[task]
        if not self.root.is_dir():
            raise I2IError(f"{self.root}/ does not exist or is not a folder")
        self.files = _images(self.root)
        self.roots = [self.root]  # what it lists
        if not self.files:
            raise UsageError(f"{self.root}/ has no images"
                             f"{no_images_hint(self.root) or f' (a folder of photos is expected for --task {task})'}")
        notes = [small_images_note(self.root, self.files, transform)]
        if task != "sketch":  # a gray photo still has lines to learn
            notes.insert(0, gray_photos_note(self.root, self.files, task))
        self.notes = [note for note in notes if note]  # for the trainer to print, once

    def __len__(self) -> int:
        return len(self.files)

    def _item(self, index: int) -> dict:
        path = self.files[index]
        rgb = load_pixels(path, 3)
        if self.transform is not None:
            rgb, _ = self.transform(rgb)
        self._check_fits(rgb, path)
        if self.task == "colorize":
            return _pack(gray(rgb), rgb, path, path)
        photo = to_tensor(rgb)
        if self.task == "colorize_lab":
            l01, ab01 = rgb_to_lab01(photo)
            return {"A": l01, "B": ab01, "A_path": str(path), "B_path": str(path)}
        try:
            lines = sketch(photo)
        except UsageError as error:  # too small for its blurs: a bad file, skipped like one
            raise ImageReadError(f"{path}: {error}") from None
        return {"A": photo, "B": lines, "A_path": str(path), "B_path": str(path)}


_NOTE_SAMPLE = 1000  # files a start-up note reads the headers of, at most (a note, not a check)


def _sample(files: list[Path]) -> tuple[list[Path], str]:
    """Files spread evenly over `files`, at most _NOTE_SAMPLE, and what a note adds after
    counting them when they are a sample (" checked (of 118,287)")."""
    step = -(-len(files) // _NOTE_SAMPLE)
    return files[::step], "" if step == 1 else f" checked (of {len(files):,})"


def gray_photos_note(root: Path, files: list[Path], task: str) -> str | None:
    """A line when photos of a colorize folder are gray (old scans beside colour photos): each
    teaches the model gray -> gray, so it colours less, and no loss shows why."""
    checked, sampled = _sample(files)
    gray = [path for path in checked if (header := read_header(path)) and header.channels == 1]
    if not gray:
        return None
    return (f"warning: {len(gray)} of {len(checked)} photos{sampled} in {shown_path(root)}/ are gray (e.g. "
            f"{shown_path(gray[0].relative_to(root))}): --task {task} learns gray -> gray from them; "
            "move them out for a model that colours")


def small_images_note(folder: Path, files: list[Path], transform: Transform | None,
                      halves: bool = False) -> str | None:
    """A line when `--preprocess crop` will pad images smaller than the crop with their mirror
    image (the reference's RandomCrop raises on them instead): padding makes any image fit, but
    a much smaller one becomes mirrored tiles the model learns from, so say so. Headers only."""
    crop = getattr(transform, "crop_size", 0)
    if getattr(transform, "preprocess", None) != "crop":
        return None
    checked, sampled = _sample(files)
    sizes = {path: (header.width, header.height) for path in checked if (header := read_header(path))}
    if halves:  # side-by-side AB images: each half is cropped
        sizes = {path: (w // 2, h) for path, (w, h) in sizes.items()}
    small = [path for path, size in sizes.items() if min(size) < crop]
    if not small:
        return None
    path = min(small, key=lambda p: min(sizes[p]))
    (w, h), per_half = sizes[path], " per half" if halves else ""
    return (f"warning: {len(small)} of {len(checked)} images{sampled} in {shown_path(folder)}/ are smaller than "
            f"--image-size {crop} (the smallest: {shown_path(path.relative_to(folder))}, {w}x{h}{per_half}): "
            f"--preprocess crop pads them to {crop}x{crop} with a mirror image; give a smaller --image-size to "
            "train on their own pixels only")


def _lr_key(stem: str, scale: int) -> str:
    """BasicSR/DIV2K LR names: 'baby', 'babyx4', 'baby_x4' all match HR 'baby'."""
    for suffix in (f"_x{scale}", f"x{scale}", f"_X{scale}", f"X{scale}"):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def _skip(message: str, reason: str) -> ImageReadError:
    """An ImageReadError (the pair is skipped) that says why, for a one-line summary."""
    error = ImageReadError(message)
    error.reason = reason
    return error


def pair_lr_files(hr_root: Path, hr_files: list[Path], lr_root: Path, lr_files: list[Path],
                  scale: int) -> list[tuple[Path, Path]]:
    """(HR, LR) files, in HR key order: the one matching rule of training's and `i2i eval`'s LR
    folders. An LR file matches the HR key it names (see `_key`): 'babyx4' and 'baby_x4' match
    HR 'baby', and a name that is itself an HR key, such as 'box4', matches that one. Two LR
    files for one key, an LR file without its HR and an HR file without its LR are refused in
    one line: picking or dropping one would score or train on pairs nobody chose."""
    hr_keys = {_key(path, hr_root): path for path in hr_files}
    found: dict[str, Path] = {}
    for path in lr_files:
        key = _key(path, lr_root)
        key = key if key in hr_keys else _lr_key(key, scale)
        if key in found:
            raise UsageError(f"{found[key]} and {path} are both the x{scale} LR image of {key!r}; keep one")
        found[key] = path
    lr_only, hr_only = sorted(set(found) - set(hr_keys)), sorted(set(hr_keys) - set(found))
    if lr_only or hr_only:
        raise UsageError(f"{hr_root}/ and {lr_root}/: " + unmatched_message(lr_only, hr_only)
                         .replace("A only", "LR only").replace("B only", "HR only") + _other_scale(lr_only, scale))
    return [(hr_keys[key], found[key]) for key in sorted(hr_keys)]


def _other_scale(lr_only: list[str], scale: int) -> str:
    """"; their names say x2: these are the LR images of scale 2, not 4" when every unmatched LR
    name carries one other scale's suffix (DIV2K's X2/0001x2.png given for x4), else ""."""
    scales = {int(m.group(1)) if (m := re.search(r"[xX](\d+)$", key)) else None for key in lr_only}
    if len(scales) != 1 or None in scales or scale in scales:
        return ""
    other = scales.pop()
    return f"; their names say x{other}: these are the LR images of scale {other}, not {scale}"


def lr_size_problem(lr_size: tuple[int, ...], hr_size: tuple[int, ...], lr_path: Path, hr_path: Path,
                    scale: int) -> str | None:
    """Why an LR image is not its mod-cropped HR image divided by `scale`; None if it is. Sizes
    are (height, width, ...), as an array's shape; the HR one before or after its mod-crop."""
    h, w = hr_size[0] // scale * scale, hr_size[1] // scale * scale
    if tuple(lr_size[:2]) == (h // scale, w // scale):
        return None
    return (f"{lr_path}: {lr_size[1]}x{lr_size[0]} is not its HR {hr_path.name} ({w}x{h} after mod-crop) "
            f"divided by {scale}")


def sr_folders(root: Path | str, scale: int, lr_root: Path | str | None = None,
               lr_flag: str | None = "--lr-data", *, recursive: bool = True,
               read_lr: bool = True) -> tuple[Path, Path | None]:
    """(HR folder, LR folder or None for bicubic LR) of super-resolution data: `root` and
    `lr_root` when given; else root/HR + root/LR (BasicSR; LR/X<scale> when it exists),
    root/B + root/A (`i2i data derive sr`), an HR or B folder alone, or `root` itself.
    `lr_flag`: the caller's flag that names an LR folder (`i2i train srgan`'s --lr-data,
    `i2i eval`'s --lr), offered when LR/ lacks the scale's X<scale>/; None: it has none.
    `recursive`: whether the caller lists the HR folder recursively (training) or not (eval: LR
    subfolders beside top-level HR images are not read). `read_lr`: False where LR files are
    not used (--degradation realesrgan): LR/ is neither looked into nor refused."""
    root = Path(root)
    if lr_root is not None:  # DIV2K_train_LR_bicubic/ itself: its X<scale>/, as LR/ is read
        lr_root = Path(lr_root)
        return root, lr_root / f"X{scale}" if (lr_root / f"X{scale}").is_dir() else lr_root
    for hr_name, lr_name in (("HR", "LR"), ("B", "A")):
        if (root / hr_name).is_dir():
            lr = root / lr_name
            if not read_lr:
                return root / hr_name, (lr if lr.is_dir() else None)
            if (lr / f"X{scale}").is_dir():
                lr = lr / f"X{scale}"
            elif lr.is_dir() and (others := sorted(p.name for p in lr.glob("X[0-9]*") if p.is_dir())):
                or_flag = f", or {lr_flag}" if lr_flag else ""
                raise UsageError(f"{lr}/ holds {', '.join(o + '/' for o in others)} but no X{scale}/ for "
                                 f"scale {scale}; give the scale of one of them{or_flag}")
            return root / hr_name, (lr if lr.is_dir() else None)
    if recursive or not root.is_dir() or not list_images(root, recursive=False):  # eval reads DATA's own images
        _refuse_basicsr_root(root, scale, lr_flag if read_lr else None)
    return root, None


_LR_NAME = re.compile(r"(^|[_-])LR([_-]|$)", re.IGNORECASE)


def _refuse_basicsr_root(root: Path, scale: int, lr_flag: str | None) -> None:
    """A UsageError for a DIV2K/BasicSR dataset root (DIV2K_train_HR/ beside
    DIV2K_train_LR_bicubic/): read as a folder of HR images, its LR images would silently
    train (and score) as HR ones. The line names the folders to give instead."""
    if not root.is_dir():
        return
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    low = [name for name in folders if _LR_NAME.search(name)]
    if not low:
        return
    high = [name for name in folders if name not in low]
    lr = root / low[0] / f"X{scale}" if (root / low[0] / f"X{scale}").is_dir() else root / low[0]
    with_lr = f" with {lr_flag} {lr}" if lr_flag else ""
    if not high:  # HR images in root itself, LR/ below them: both would be listed as HR
        raise UsageError(f"{root}/ holds LR folders ({', '.join(low)}) below its images: read as one folder of HR "
                         f"images, their LR images would be HR ones; move {root / low[0]}/ out of it"
                         f"{f' and give it as {lr_flag}' if lr_flag else ''}, or make {root}/ a folder with HR/ "
                         f"and LR/ (LR/X{scale}/) in it")
    raise UsageError(f"{root}/ holds LR folders ({', '.join(low)}) beside {', '.join(high)}: read as one folder of "
                     f"HR images, its LR images would be HR ones; give the HR folder itself ({root / high[0]}){with_lr}"
                     f", or a folder with HR/ and LR/ (LR/X{scale}/) in it")


class SRDataset(_RobustDataset):
    """Super-resolution pairs: A = LR (input), B = HR (target).

    From a folder of HR images: each HR image is mod-cropped to the scale, a
    `patch_size` HR patch is cut at a random position aligned to the scale, and its LR
    is the MATLAB-exact bicubic `imresize(patch, 1/scale)` in the image's integer type
    (uint8 rounding per pass). With `lr_root` (BasicSR layout), LR files are matched to
    HR files by stem (`baby`, `babyx4`, `baby_x4`) and must be exactly HR/scale in size.

    Random flips and rotations are not made here: the pipelines make them on the device
    (`i2i.data.augment.device_augmentation`). `patch_size=None` yields whole images (for
    validation). Images smaller than the patch are skipped with a warning (padding would
    teach the network artificial borders); if none is large enough it is a UsageError.
    `cache` decodes every image once at construction and keeps it in memory (the 291
    training images take ~150 MB); DataLoader workers share it copy-on-write.
    `repeat` makes one epoch visit every image that many times (small folders).
    """

    def __init__(
        self,
        root: Path | str,
        scale: int = 4,
        patch_size: int | None = 96,
        lr_root: Path | str | None = None,
        cache: bool = True,
        channels: int = 3,
        repeat: int = 1,
    ):
        self.root = Path(root)
        self.scale = int(scale)
        self.patch_size = patch_size
        self.in_channels = self.out_channels = channels
        self.repeat = max(1, int(repeat))
        if self.scale < 1:
            raise UsageError(f"scale must be a positive integer, got {scale}")
        if patch_size is not None and patch_size % self.scale:
            raise UsageError(f"patch size {patch_size} is not a multiple of the scale {self.scale}")
        if not self.root.is_dir():
            raise I2IError(f"{self.root}/ does not exist or is not a folder")
        hr_files = _images(self.root)
        if not hr_files:
            raise UsageError(f"{self.root}/ has no images{no_images_hint(self.root) or ' (a folder of HR images is expected)'}")
        self.items: list[tuple[Path, Path | None]] = [(p, None) for p in hr_files]
        self.lr_root = lr_root = None if lr_root is None else Path(lr_root)
        self.roots = [self.root] + ([lr_root] if lr_root is not None else [])  # what it lists
        if lr_root is not None:
            if not lr_root.is_dir():
                raise I2IError(f"{lr_root}/ does not exist or is not a folder (LR folder)")
            lr_files = _images(lr_root)
            if not lr_files:
                raise UsageError(f"{lr_root}/ has no images{no_images_hint(lr_root) or ' (LR folder)'}")
            self.items = pair_lr_files(self.root, hr_files, lr_root, lr_files, self.scale)
        self._cache: list[tuple[np.ndarray, np.ndarray | None]] | None = None
        if cache:
            self._fill_cache()

    def _smallest(self) -> str:
        """The smallest HR image kept, in words."""
        if self.patch_size is None:
            return f"the scale {self.scale}"
        return f"the {self.patch_size}x{self.patch_size} HR patch"

    def _decode(self, hr_path: Path, lr_path: Path | None) -> tuple[np.ndarray, np.ndarray | None]:
        """HR mod-cropped; LR checked to be exactly HR/scale; a bad pair is an ImageReadError
        whose `reason` ("small", "lr_size"; none for unreadable) sums up skipped pairs."""
        pixels = load_pixels(hr_path, self.in_channels)
        hr = modcrop(pixels, self.scale)
        if min(hr.shape[:2]) < (self.patch_size or self.scale):  # the patch is a multiple of the scale
            raise _skip(f"{hr_path}: {pixels.shape[1]}x{pixels.shape[0]} is smaller than {self._smallest()}", "small")
        lr = None
        if lr_path is not None:
            lr = load_pixels(lr_path, self.in_channels)
            problem = lr_size_problem(lr.shape, hr.shape, lr_path, hr_path, self.scale)
            if problem:
                raise _skip(problem, "lr_size")
        return hr, lr

    def _fill_cache(self) -> None:
        kept, cache, reasons = [], [], Counter()
        for hr_path, lr_path in self.items:
            try:
                cache.append(self._decode(hr_path, lr_path))
                kept.append((hr_path, lr_path))
            except ImageReadError as error:
                _warn_once(str(error), self.root)
                reasons[getattr(error, "reason", "unreadable")] += 1
        if not kept:
            raise self._nothing_kept(reasons)
        self.items, self._cache = kept, cache

    def _nothing_kept(self, reasons: Counter) -> UsageError:
        """Why every image (or pair) was skipped, in one line; the warnings name the files."""
        if "lr_size" not in reasons:
            smallest = self.patch_size or self.scale
            smaller = " (the HR patch: give a smaller --image-size)" if "small" in reasons and self.patch_size else ""
            return UsageError(f"{self.root}/ has no readable HR image of at least {smallest}x{smallest} pixels{smaller}")
        words = {"lr_size": f"an LR image whose size is not HR/{self.scale} after mod-crop",
                 "small": f"an HR image smaller than {self._smallest()}", "unreadable": "an unreadable file"}
        why = ", ".join(f"{count} with {words[reason]}" for reason, count in reasons.most_common())
        return UsageError(f"{self.root}/ and {self.lr_root}/: all {sum(reasons.values())} pairs were skipped ({why})")

    def __len__(self) -> int:
        return len(self.items) * self.repeat

    def _item(self, index: int) -> dict:
        index %= len(self.items)
        hr_path, lr_path = self.items[index]
        hr, lr = self._cache[index] if self._cache is not None else self._decode(hr_path, lr_path)
        s = self.scale
        if self.patch_size is not None:
            p = self.patch_size
            h, w = hr.shape[:2]
            y = int(torch.randint((h - p) // s + 1, ()).item())
            x = int(torch.randint((w - p) // s + 1, ()).item())
            hr = hr[y * s:y * s + p, x * s:x * s + p]
            if lr is not None:
                lr = lr[y:y + p // s, x:x + p // s]
        if lr is None:
            lr = imresize(hr, scale=1.0 / s)
        return _pack(lr, hr, lr_path or hr_path, hr_path)


class SingleFolderDataset(_RobustDataset):
    """Every image of a folder (recursively) as `{"A", "A_path"}`, for translate and eval.

    `channels` converts gray/RGB (None keeps each file's own); `transform` is optional.
    """

    def __init__(self, root: Path | str, channels: int | None = 3, transform: Transform | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise I2IError(f"{self.root}/ does not exist or is not a folder")
        self.files = _images(self.root)
        if not self.files:
            raise UsageError(f"{self.root}/ has no images{no_images_hint(self.root)}")
        self.channels = channels
        self.transform = transform
        self.in_channels = self.out_channels = channels if channels is not None else 3

    def __len__(self) -> int:
        return len(self.files)

    def _item(self, index: int) -> dict:
        path = self.files[index]
        a = load_pixels(path, self.channels)
        if self.transform is not None:
            a, _ = self.transform(a)
        return {"A": to_tensor(a), "A_path": str(path)}
