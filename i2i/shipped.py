"""Files shipped with i2i outside the package: the pretrained models (`pretrained/`) and the
demo's sample photos (`datasets/samples/photos/`).

In a source checkout (and an editable install of one) they are the repository's folders. A
wheel installs them as data files under `<prefix>/share/i2i/` (setup.cfg `data_files`), the
prefix being the one the package went to: a venv, /usr/local, ~/.local or `pip --prefix`.
"""
from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def shipped_path(*parts: str) -> Path:
    """`parts` (e.g. "pretrained", "registry.json") as shipped: in the checkout the package
    lives in, else under share/i2i/ of the install prefix above the package. Where neither
    exists, the checkout's path (the caller's own "not found" then names it)."""
    checkout = _PACKAGE.parent
    if (checkout / "setup.cfg").is_file():
        return checkout.joinpath(*parts)
    for prefix in _PACKAGE.parents[1:]:  # site-packages, lib/python3.X, lib, <prefix>, ...
        candidate = prefix.joinpath("share", "i2i", *parts)
        if candidate.exists():
            return candidate
    return checkout.joinpath(*parts)
