"""What makes a chart worth opening, checked on the PNG a user would see."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image


def assert_meaningful_png(path: Path) -> npt.NDArray[np.uint8]:
    """The chart's pixels, once it is checked to be a PNG worth looking at: at least
    800 x 400, at least 3% of it off the background and at least 8 distinct colours."""
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.width >= 800 and img.height >= 400, img.size
        rgb = np.asarray(img.convert("RGB"))
    background = rgb[0, 0]  # the corner: the figure's face, outside every panel
    drawn = np.any(rgb != background, axis=2).mean()
    packed = rgb.astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], dtype=np.uint32)
    colours = len(np.unique(packed))  # one number per colour: unique rows are 50x slower
    assert drawn >= 0.03, f"{path.name}: only {drawn:.1%} of the pixels are drawn"
    assert colours >= 8, f"{path.name}: only {colours} colours"
    return rgb
