"""README figures of the shipped x4 models.

    python benchmarks/sr_figure.py clean skimage/data/chelsea.png docs/sr_before_after.png
    python benchmarks/sr_figure.py realworld datasets/samples/photos/coffee.jpg docs/sr_realworld.jpg

clean: the photo (scikit-image's `chelsea.png`, CC0) is downscaled x4 with MATLAB-exact
bicubic, then upscaled back by bicubic and by `srresnet-x4`; a crop of each beside the
original, at 2x nearest-neighbour zoom so the difference is visible.

realworld: a real JPEG photo is upscaled as it is (no original exists): bicubic |
`srresnet-x4` | `srresnet-x4-realworld`, whole, side by side.
"""
from __future__ import annotations

import sys

import numpy as np


def _row(images: list[np.ndarray]) -> np.ndarray:
    gap = np.full((images[0].shape[0], 4, 3), 255, np.uint8)
    parts = [part for image in images for part in (image, gap)][:-1]
    return np.concatenate(parts, axis=1)


def clean(src: str, dst: str, box: tuple[int, int, int, int] = (160, 60, 96, 96)) -> None:
    from i2i import load_model
    from i2i.data.bicubic import imresize, modcrop
    from i2i.data.io import read_image, write_image

    hr = modcrop(read_image(src).pixels, 4)
    lr = imresize(hr, scale=0.25)
    bicubic = imresize(lr, scale=4.0)
    sr = load_model("srresnet-x4", device="cpu", precision="fp32")(lr)
    x, y, w, h = box
    row = _row([image[y:y + h, x:x + w] for image in (bicubic, sr, hr)])
    write_image(dst, row.repeat(2, axis=0).repeat(2, axis=1))
    print(dst)


def realworld(src: str, dst: str) -> None:
    from i2i import load_model
    from i2i.data.bicubic import imresize
    from i2i.data.io import read_image, write_image

    lr = read_image(src).pixels
    outputs = [imresize(lr, scale=4.0)]
    for name in ("srresnet-x4", "srresnet-x4-realworld"):
        outputs.append(load_model(name, device="cpu", precision="fp32")(lr))
    write_image(dst, _row(outputs))
    print(dst)


if __name__ == "__main__":
    figures = {"clean": clean, "realworld": realworld}
    if len(sys.argv) != 4 or sys.argv[1] not in figures:
        print(__doc__, file=sys.stdout if {"-h", "--help"} & set(sys.argv[1:]) else sys.stderr)
        sys.exit(0 if {"-h", "--help"} & set(sys.argv[1:]) else 2)
    figures[sys.argv[1]](sys.argv[2], sys.argv[3])
