"""Pictures as 8-bit pixel arrays, whatever their mode: one rule for the image folders and for
the PIL images a user's dataset returns.

Pillow opens a file in the mode its format stores: 8-bit gray ("L"), 1-bit ("1"), 16-bit gray
("I;16", or "I" for a 16-bit PNG), palette ("P"), RGB with or without alpha, CMYK, YCbCr, HSV,
32-bit float ("F"). `Image.convert("L")` clips a 16-bit value to 255 and a float to 0 or 255, so
16-bit pixels are scaled here (round(v * 255 / 65535)), palette, CMYK, YCbCr and HSV images are
converted to RGB by Pillow, alpha is dropped, and the modes whose range is not known (float,
32-bit integer) are refused by name.
"""

from __future__ import annotations

import numpy as np

from cnnarch.errors import CnnarchError

# Modes read as one 8-bit channel, and modes Pillow converts to RGB without loss of meaning.
GRAY_MODES = ("1", "L", "LA")
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
COLOR_MODES = ("RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr", "HSV")
# Why the other modes are refused: their value range is not known, or Pillow cannot convert them.
REFUSED_MODES = {
    "F": "32-bit floating-point pixels, whose range is not known",
    "I": "32-bit integer pixels, whose range is not known",
    "LAB": "L*a*b* color, which Pillow does not convert to RGB",
    "La": "gray with premultiplied alpha",
    "RGBa": "RGB with premultiplied alpha",
}


def _png_sixteen_bit(mode: str, file_format: str | None) -> bool:
    # PNG holds at most 16 bits a channel; older Pillows open a 16-bit gray PNG in mode "I".
    return mode == "I" and file_format == "PNG"


def pixels(image: object, source: str) -> np.ndarray:
    """The 8-bit pixels of the PIL image `image`: (H, W) for a one-channel mode, (H, W, 3)
    otherwise.

    Args:
        image: a `PIL.Image.Image`.
        source: what the image is (a path, "item 12 of the training set"), for the messages.
    """
    from PIL import Image

    assert isinstance(image, Image.Image)
    mode, file_format = image.mode, getattr(image, "format", None)
    if mode in SIXTEEN_BIT_MODES or _png_sixteen_bit(mode, file_format):
        wide = np.asarray(image).astype(np.uint32)
        if wide.max(initial=0) > 65535:
            raise CnnarchError(f"{source}: a 16-bit image holds values above 65535")
        return ((wide * 255 + 32767) // 65535).astype(np.uint8)
    if mode in GRAY_MODES:
        return np.asarray(image.convert("L"))
    if mode in COLOR_MODES:
        return np.asarray(image.convert("RGB"))
    reason = REFUSED_MODES.get(mode, "a mode cnnarch does not read")
    raise CnnarchError(
        f"{source}: image mode {mode!r} ({reason}) is not supported; save the images with 8 "
        "(or 16) bits per channel, in gray, RGB or a palette"
    )
