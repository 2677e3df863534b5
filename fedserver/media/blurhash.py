"""The BlurHash encoder (blurha.sh, woltapp/blurhash `C/encode.c`), as a pure function over RGB bytes.

Written here rather than imported: the woltapp Python binding reads pixels with
`Image.getdata`, which Pillow 14 removes. Callers pass a small image (about 32 px a side):
the hash describes only the lowest frequencies, and the cost is pixels × components.
"""

from __future__ import annotations

import math

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
_SRGB_TO_LINEAR = [
    (v / 255) / 12.92 if v / 255 <= 0.04045 else (((v / 255) + 0.055) / 1.055) ** 2.4 for v in range(256)
]


def _base83(value: int, length: int) -> str:
    return "".join(_ALPHABET[(value // 83 ** (length - i - 1)) % 83] for i in range(length))


def _linear_to_srgb(value: float) -> int:
    v = max(0.0, min(1.0, value))
    if v <= 0.0031308:
        return int(v * 12.92 * 255 + 0.5)
    return int((1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _sign_pow(value: float, exponent: float) -> float:
    return math.copysign(abs(value) ** exponent, value)


def _factors(rgb: bytes, width: int, height: int, x_comp: int, y_comp: int) -> list[tuple[float, float, float]]:
    """The DCT-like coefficients, DC first, in linear light."""
    linear = [_SRGB_TO_LINEAR[b] for b in rgb]
    cos_x = [[math.cos(math.pi * i * x / width) for x in range(width)] for i in range(x_comp)]
    cos_y = [[math.cos(math.pi * j * y / height) for y in range(height)] for j in range(y_comp)]
    factors = []
    for j in range(y_comp):
        for i in range(x_comp):
            r = g = b = 0.0
            for y in range(height):
                row, cy = y * width * 3, cos_y[j][y]
                for x in range(width):
                    basis = cos_x[i][x] * cy
                    p = row + 3 * x
                    r += basis * linear[p]
                    g += basis * linear[p + 1]
                    b += basis * linear[p + 2]
            scale = (1 if i == 0 and j == 0 else 2) / (width * height)
            factors.append((r * scale, g * scale, b * scale))
    return factors


def _encode_ac(value: tuple[float, float, float], maximum: float) -> int:
    r, g, b = (int(max(0, min(18, math.floor(_sign_pow(c / maximum, 0.5) * 9 + 9.5)))) for c in value)
    return r * 19 * 19 + g * 19 + b


def encode(rgb: bytes, width: int, height: int, x_comp: int = 4, y_comp: int = 4) -> str:
    """The BlurHash of `width`×`height` 8-bit RGB pixels (row-major, no padding)."""
    if not (1 <= x_comp <= 9 and 1 <= y_comp <= 9):
        raise ValueError("components must be between 1 and 9")
    if width < 1 or height < 1 or len(rgb) != width * height * 3:
        raise ValueError("rgb must hold width × height × 3 bytes")
    dc, *ac = _factors(rgb, width, height, x_comp, y_comp)
    out = _base83((x_comp - 1) + (y_comp - 1) * 9, 1)
    maximum = 1.0
    if ac:
        actual = max(abs(c) for f in ac for c in f)
        quantised = int(max(0, min(82, math.floor(actual * 166 - 0.5))))
        maximum = (quantised + 1) / 166
        out += _base83(quantised, 1)
    else:
        out += _base83(0, 1)
    out += _base83((_linear_to_srgb(dc[0]) << 16) + (_linear_to_srgb(dc[1]) << 8) + _linear_to_srgb(dc[2]), 4)
    return out + "".join(_base83(_encode_ac(f, maximum), 2) for f in ac)
