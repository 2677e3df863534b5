"""Image processing for uploads: sniff, guard, re-encode, resize, preview, blurhash. Synchronous and CPU-bound.

Security checklist row I (Mastodon CVE-2023-36460 "TootRoot"). The type comes from the
bytes alone (Pillow's format sniffers, only for JPEG, PNG, GIF and WebP); the file name and
the client's Content-Type are never consulted. Dimensions are read from the header and
checked before any pixel is decoded (decompression bombs). Every upload is decoded and
encoded anew, so nothing of the original file but its pixels survives: no EXIF (GPS), no
comments, no appended bytes of a polyglot. Uploads carrying HTML or XML markup in their
header or tail are refused outright. Callers run `process_upload` in a thread.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageOps, ImageSequence, UnidentifiedImageError

from .blurhash import encode as blurhash_encode
from .entity import MEDIA_TYPES

MAX_SIDE = 1920
PREVIEW_SIDE = 400
BLURHASH_SIDE = 32
MAX_GIF_FRAMES = 300
FORMATS = ("JPEG", "PNG", "GIF", "WEBP")  # the only sniffers Pillow may try
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
NOT_AN_IMAGE = "the file is not a supported image (JPEG, PNG, GIF or WebP)"
_MARKUP = re.compile(
    rb"<(?:!doctype|html|head|body|script|iframe|svg|\?xml|object|embed|form|x-[a-z])[\s>/]", re.IGNORECASE)
_SCAN = 64 * 1024
_SRGB = ImageCms.createProfile("sRGB")
# Pillow warns between MAX_IMAGE_PIXELS and twice that; `open_image` refuses those images itself.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ImageRejected(Exception):
    """An upload refused; `status` is 413 (too many bytes) or 422, `message` says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Rendition:
    """One stored file: its bytes, what they are and their size."""

    data: bytes
    extension: str
    width: int
    height: int

    @property
    def media_type(self) -> str:
        """The MIME type of the encoded bytes."""
        return MEDIA_TYPES[self.extension]


@dataclass(frozen=True)
class ProcessedImage:
    """The re-encoded original (at most MAX_SIDE), its preview and its blurhash."""

    original: Rendition
    small: Rendition
    blurhash: str


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int


def process_upload(data: bytes, limits: ImageLimits, thumbnail: bytes | None = None) -> ProcessedImage:
    """Check and re-encode an upload; a custom `thumbnail` replaces the preview and the blurhash."""
    source = open_image(data, limits)
    frame = _prepared(source)
    original = _animated_gif(source, limits) if _is_animated_gif(source) else _encode(_fit(frame, MAX_SIDE),
                                                                                      _stored_format(source))
    preview_source = frame if thumbnail is None else _prepared(open_image(thumbnail, limits))
    small = _encode(_fit(preview_source, PREVIEW_SIDE), _preview_format(source if thumbnail is None else None))
    return ProcessedImage(original, small, blurhash_of(preview_source))


def open_image(data: bytes, limits: ImageLimits) -> Image.Image:
    """The decoded image, after the size, markup, format and dimension checks."""
    if len(data) > limits.max_bytes:
        raise ImageRejected(413, f"the file is larger than {limits.max_bytes} bytes")
    if contains_markup(data):
        raise ImageRejected(422, "the file contains HTML or XML markup; upload a plain image")
    Image.MAX_IMAGE_PIXELS = limits.max_pixels  # Pillow refuses (not only warns) past twice this
    try:
        image = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except Image.DecompressionBombError:
        raise ImageRejected(422, f"the image has more than {limits.max_pixels} pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ImageRejected(422, NOT_AN_IMAGE) from None
    width, height = image.size
    if width < 1 or height < 1 or width * height > limits.max_pixels:
        raise ImageRejected(422, f"the image has more than {limits.max_pixels} pixels ({width}×{height})")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ImageRejected(422, "the image data is damaged or truncated") from None
    return image


def contains_markup(data: bytes) -> bool:
    """True when the head or tail of the file holds HTML/SVG/XML tags (a polyglot's payload)."""
    return bool(_MARKUP.search(data[:_SCAN]) or _MARKUP.search(data[-_SCAN:]))


def blurhash_of(image: Image.Image) -> str:
    """The 4×4-component blurhash (Mastodon's) of an image, transparent areas on white."""
    small = image.copy()
    small.thumbnail((BLURHASH_SIDE, BLURHASH_SIDE), Image.Resampling.BOX)
    rgb = _on_white(small)
    return blurhash_encode(rgb.tobytes(), rgb.width, rgb.height, 4, 4)


def _is_animated_gif(image: Image.Image) -> bool:
    return image.format == "GIF" and bool(getattr(image, "is_animated", False))


def _stored_format(image: Image.Image) -> str:
    # A still GIF is stored as PNG, as Mastodon does: lossless and smaller.
    return "PNG" if image.format == "GIF" else str(image.format)


def _preview_format(image: Image.Image | None) -> str:
    # A custom thumbnail's preview is PNG whatever it was; a GIF's preview is its first frame.
    return "PNG" if image is None or image.format == "GIF" else str(image.format)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (image.mode == "P" and "transparency" in image.info)


def _prepared(image: Image.Image) -> Image.Image:
    """The first frame, upright, in sRGB, as L, RGB or RGBA, with no metadata left."""
    image.seek(0)
    upright = ImageOps.exif_transpose(image) or image
    if _has_alpha(upright):
        mode = "RGBA"
    elif upright.mode in ("1", "L", "I", "I;16", "F"):
        mode = "L"
    else:
        mode = "RGB"
    converted = _to_srgb(upright, mode)
    converted.info = {}
    return converted


def _to_srgb(image: Image.Image, mode: str) -> Image.Image:
    """Convert to `mode`, applying an embedded ICC profile so wide-gamut photos keep their colours."""
    icc = image.info.get("icc_profile")
    if icc and mode != "L" and image.mode in ("RGB", "RGBA", "CMYK"):
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(image, profile, _SRGB, outputMode=mode)
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to a plain conversion
    if image.mode == mode:
        return image.copy()
    if image.mode == "I;16" or image.mode == "I":
        return image.point(lambda v: v / 256).convert("L")
    return image.convert(mode)


def _fit(image: Image.Image, side: int) -> Image.Image:
    fitted = image.copy()
    fitted.thumbnail((side, side), Image.Resampling.LANCZOS)
    return fitted


def _on_white(image: Image.Image) -> Image.Image:
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def _encode(image: Image.Image, kind: str) -> Rendition:
    """Encode without any metadata (no exif, comment, text chunks or ICC: pixels only)."""
    buffer = io.BytesIO()
    if kind == "JPEG":
        (_on_white(image) if image.mode == "RGBA" else image).save(buffer, "JPEG", quality=85, optimize=True)
    elif kind == "WEBP":
        image.save(buffer, "WEBP", quality=85, method=4)
    else:
        image.save(buffer, "PNG", compress_level=6)
    return Rendition(buffer.getvalue(), EXTENSIONS[kind], image.width, image.height)


def _animated_gif(source: Image.Image, limits: ImageLimits) -> Rendition:
    """Every frame (at most MAX_GIF_FRAMES, at most `max_pixels` decoded in all) resized and re-encoded."""
    frames, durations, budget = [], [], limits.max_pixels
    for index, frame in enumerate(ImageSequence.Iterator(source)):
        budget -= frame.width * frame.height
        if index >= MAX_GIF_FRAMES or budget < 0:
            raise ImageRejected(422, f"the animation is too long (at most {MAX_GIF_FRAMES} frames and "
                                     f"{limits.max_pixels} pixels in all)")
        durations.append(int(frame.info.get("duration", 100)) or 100)
        frames.append(_fit(frame.convert("RGBA"), MAX_SIDE))
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=durations,
                   loop=0, disposal=2, optimize=False)
    return Rendition(buffer.getvalue(), "gif", frames[0].width, frames[0].height)
