"""The BlurHash encoder against vectors produced by the reference C encoder (woltapp/blurhash `C/encode.c`)."""

from __future__ import annotations

import pytest

from fedserver.media.blurhash import encode

WIDTH, HEIGHT = 32, 24
GRADIENT = bytes(v for y in range(HEIGHT) for x in range(WIDTH) for v in ((x * 8) % 256, (y * 10) % 256,
                                                                          ((x + y) * 5) % 256))


@pytest.mark.parametrize("x_comp,y_comp,expected", [
    (4, 3, "LxH27+2jwzX7m9WYjvf5gIflfOfl"),
    (4, 4, "UxH27+2jwzX7m9WYjvf5gIflfOfln,WnjvfO"),
])
def test_gradient_matches_the_reference_encoder(x_comp, y_comp, expected):
    assert encode(GRADIENT, WIDTH, HEIGHT, x_comp, y_comp) == expected


def test_one_colour_with_only_the_dc_component():
    assert encode(bytes([200, 100, 50] * 64), 8, 8, 1, 1) == "00M|T9"


def test_length_is_4_plus_2_per_component():
    assert len(encode(GRADIENT, WIDTH, HEIGHT, 9, 9)) == 4 + 2 * 81


@pytest.mark.parametrize("args", [(b"\0" * 12, 2, 2, 0, 1), (b"\0" * 12, 2, 2, 10, 1), (b"\0" * 11, 2, 2, 4, 3)])
def test_bad_arguments_raise(args):
    with pytest.raises(ValueError):
        encode(*args)
