"""Datasets by name: the reference CycleGAN/pix2pix datasets and DIV2K / Flickr2K, fetched into
`$I2I_HOME/datasets/NAME` in the layout `i2i train` reads.

The URLs are the reference's own (`datasets/download_cyclegan_dataset.sh`, `download_pix2pix_dataset.sh`
of junyanz/pytorch-CycleGAN-and-pix2pix) and the SR datasets' official pages. None of them publishes
a checksum: the first download's sha256 is pinned (`$I2I_HOME/downloads/FILE.json`) and later downloads
must match it. Archives are extracted with `i2i.data.archives.extract` (checked, all or nothing).

facades and maps exist as both an unpaired CycleGAN set (trainA/ trainB/) and a paired pix2pix set
(train/ of A|B images): they are `facades-cyclegan` / `facades-pix2pix` and `maps-cyclegan` / `maps-pix2pix`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from i2i.errors import I2IError, UsageError, did_you_mean


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset: its archive, the folder of the archive that becomes the dataset, what it is."""

    name: str
    url: str
    root: str
    """The folder inside the archive that becomes `$I2I_HOME/datasets/NAME`."""
    layout: str | None
    """What `i2i.data.datasets.detect_layout` must find there (None: any layout)."""
    pipeline: str
    source: str
    sha256: str | None = None
    terms: str = ""


_CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{}.zip"
_PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{}.tar.gz"
_REFERENCE = "junyanz/pytorch-CycleGAN-and-pix2pix datasets/download_{}_dataset.sh"
_CYCLEGAN = ("apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo",
             "ukiyoe2photo", "vangogh2photo", "maps", "facades", "iphone2dslr_flower", "ae_photos")
_PIX2PIX = ("night2day", "edges2handbags", "edges2shoes", "facades", "maps")
_BOTH = set(_CYCLEGAN) & set(_PIX2PIX)


def _catalog() -> dict[str, DatasetEntry]:
    entries = [DatasetEntry(f"{n}-cyclegan" if n in _BOTH else n, _CYCLEGAN_URL.format(n), n,
                            None if n == "ae_photos" else "unpaired", "cyclegan", _REFERENCE.format("cyclegan"))
               for n in _CYCLEGAN]
    entries += [DatasetEntry(f"{n}-pix2pix" if n in _BOTH else n, _PIX2PIX_URL.format(n), n, "paired_ab", "pix2pix",
                             _REFERENCE.format("pix2pix")) for n in _PIX2PIX]
    div2k = "https://data.vision.ee.ethz.ch/cvl/DIV2K/ (academic research only)"
    entries += [
        DatasetEntry("DIV2K", "http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip", "DIV2K_train_HR",
                     "plain", "srgan", "DIV2K (NTIRE 2017), 800 HR training images", terms=div2k),
        DatasetEntry("DIV2K-valid", "http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip", "DIV2K_valid_HR",
                     "plain", "srgan", "DIV2K (NTIRE 2017), 100 HR validation images", terms=div2k),
        DatasetEntry("Flickr2K", "https://cv.snu.ac.kr/research/EDSR/Flickr2K.tar", "Flickr2K/Flickr2K_HR",
                     "plain", "srgan", "Flickr2K (EDSR, Lim et al. 2017), 2650 HR images; only Flickr2K_HR is kept",
                     terms="Flickr photos collected by the EDSR authors; their own terms apply"),
    ]
    return {entry.name: entry for entry in entries}


DATASETS = _catalog()

CITYSCAPES = ("cityscapes needs your own login, so i2i cannot fetch it: download gtFine_trainvaltest.zip and "
              "leftImg8bit_trainvaltest.zip from https://www.cityscapes-dataset.com, make the A|B pairs with the "
              "reference's datasets/prepare_cityscapes_dataset.py, and put its train/ and val/ folders in {folder}")


def datasets_dir() -> Path:
    """`$I2I_HOME/datasets`."""
    from i2i.download import home

    return home() / "datasets"


def lookup(name: str) -> DatasetEntry:
    """The dataset called `name` (case does not matter); one line for an unknown one."""
    if name.lower() == "cityscapes":
        raise I2IError(CITYSCAPES.format(folder=datasets_dir() / "cityscapes"))
    found = [entry for key, entry in DATASETS.items() if key.lower() == name.lower()]
    if not found:
        known = [*DATASETS, "cityscapes"]
        hint = did_you_mean(name, known)
        raise UsageError(f"unknown dataset {name!r}; {hint + ' ' if hint else ''}known: {', '.join(known)}")
    return found[0]


def download_dataset(name: str, *, progress: bool = True, timeout: float | None = None) -> Path:
    """Fetch and extract dataset `name` into `$I2I_HOME/datasets/NAME` (a no-op when it is there)."""
    from i2i.data.archives import extract
    from i2i.download import DEFAULT_TIMEOUT, fetch, pin, pinned_sha256, sha256_of

    entry = lookup(name)
    target = datasets_dir() / entry.name
    if target.is_dir():
        return target
    archive = datasets_dir().parent / "downloads" / Path(urlsplit(entry.url).path).name
    record = archive.with_name(archive.name + ".json")
    expected = entry.sha256 or pinned_sha256(record)
    source = "its publisher" if entry.sha256 else f"the first download (recorded in {record})"
    if archive.is_file():  # downloaded before, not extracted (a failed or interrupted extraction)
        actual = sha256_of(archive)
        if expected and actual != expected:
            archive.unlink()
            raise I2IError(f"{archive}: sha256 {actual[:12]}... is not {expected[:12]}... from {source}; "
                           "deleted it, run again to download it afresh")
    else:
        actual = fetch(entry.url, archive, sha256=expected, hash_source=source, progress=progress,
                       timeout=timeout or DEFAULT_TIMEOUT, label=entry.name)
    try:
        extract(archive, target, root=entry.root, check=lambda folder: _check_layout(entry, folder))
    except I2IError as error:
        if not expected:  # nothing vouches for this file: never pin or reuse a bad first download
            archive.unlink(missing_ok=True)
            raise I2IError(f"{error}; the download was deleted (nothing pinned), "
                           "run again to fetch it afresh") from None
        if not entry.sha256:  # a hash an earlier version pinned at a bad first download
            raise I2IError(f"{error}; if the first download was not the dataset, "
                           f"delete {archive} and {record}") from None
        raise
    if not expected:  # pinned only once it proved to be the dataset
        pin(record, entry.url, actual)
    archive.unlink()
    return target


def _check_layout(entry: DatasetEntry, folder: Path) -> None:
    from i2i.data.datasets import detect_layout

    layout = detect_layout(folder)
    if entry.layout is not None and layout != entry.layout:
        raise I2IError(f"{entry.url}: its {entry.root}/ folder has a {layout} layout, not the {entry.layout} "
                       f"layout the {entry.name} dataset has; nothing was kept")


def layout_note(path: str | os.PathLike) -> str:
    """The folders of a downloaded dataset, for the command's last line: "trainA/ trainB/ ..."."""
    folders = sorted(p.name + "/" for p in Path(path).iterdir() if p.is_dir())
    return " ".join(folders) if folders else "images directly in the folder"
