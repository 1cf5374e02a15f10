"""Make docs/sr_before_after.png: bicubic x4 vs the shipped srresnet-x4 vs the original.

    python benchmarks/sr_figure.py skimage/data/chelsea.png docs/sr_before_after.png

The photo (scikit-image's `chelsea.png`, CC0) is downscaled x4 with MATLAB-exact bicubic,
then upscaled back by bicubic and by `srresnet-x4`; a crop of each is shown side by side
at 2x nearest-neighbour zoom so the difference is visible.
"""
from __future__ import annotations

import sys

import numpy as np


def main(src: str, dst: str, box: tuple[int, int, int, int] = (160, 60, 96, 96)) -> None:
    from i2i import load_model
    from i2i.data.bicubic import imresize, modcrop
    from i2i.data.io import read_image, write_image

    hr = modcrop(read_image(src).pixels, 4)
    lr = imresize(hr, scale=0.25)
    bicubic = imresize(lr, scale=4.0)
    sr = load_model("srresnet-x4", device="cpu", precision="fp32")(lr)
    x, y, w, h = box
    crops = [image[y:y + h, x:x + w] for image in (bicubic, sr, hr)]
    gap = np.full((h, 4, 3), 255, np.uint8)
    row = np.concatenate([crops[0], gap, crops[1], gap, crops[2]], axis=1)
    write_image(dst, row.repeat(2, axis=0).repeat(2, axis=1))
    print(dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
