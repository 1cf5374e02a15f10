"""Rebuild datasets/samples/photos/ from scikit-image's bundled sample photos.

    pip download --no-deps scikit-image && unzip -o scikit_image-*.whl 'skimage/data/*'
    python datasets/make_samples.py skimage/data datasets/samples/photos

Each photo is a square crop resized to 128x128 (Lanczos), saved as JPEG quality 92.
Sources and licences: datasets/samples/SOURCES.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

SIZE = 128
# file in skimage/data -> list of (name, left, top, side) square crops
CROPS = {
    "astronaut.png": [("astronaut", 0, 0, 512), ("astronaut_face", 140, 30, 200), ("astronaut_suit", 300, 250, 200)],
    "chelsea.png": [("chelsea", 100, 0, 300), ("chelsea_left", 0, 0, 300)],
    "coffee.png": [("coffee", 100, 0, 400), ("coffee_cup", 0, 100, 250), ("coffee_table", 350, 150, 250)],
    "hubble_deep_field.jpg": [("hubble", 0, 0, 500), ("hubble_corner", 500, 372, 500)],
    "rocket.jpg": [("rocket", 100, 0, 427), ("rocket_plume", 320, 100, 300)],
    "retina.jpg": [("retina", 0, 0, 1411), ("retina_detail", 400, 400, 600)],
}


def main(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for filename, crops in CROPS.items():
        with Image.open(src / filename) as image:
            image = image.convert("RGB")
            for name, left, top, side in crops:
                crop = image.crop((left, top, left + side, top + side)).resize((SIZE, SIZE), Image.LANCZOS)
                crop.save(dst / f"{name}.jpg", quality=92)
                print(dst / f"{name}.jpg")


if __name__ == "__main__":
    if len(sys.argv) != 3 or {"-h", "--help"} & set(sys.argv[1:]):
        print(__doc__, file=sys.stdout if {"-h", "--help"} & set(sys.argv[1:]) else sys.stderr)
        sys.exit(0 if {"-h", "--help"} & set(sys.argv[1:]) else 2)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
