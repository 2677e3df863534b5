"""What the API accepts and advertises (instance `configuration`): one place, read by the handlers too."""

from __future__ import annotations

from ..media.entity import MAX_MEDIA  # noqa: F401  (advertised here, enforced where posts are stored)

# Mastodon.py keeps the text before the first space of `version` and picks endpoints by it;
# 4.3.0 with `api_versions.mastodon` selects v2 instance, v2 media and v2 search.
MASTODON_COMPAT = "4.3.0"
MASTODON_API_VERSION = 2

MAX_DISPLAY_NAME = 30
MAX_NOTE = 500
MAX_STATUS_CHARS = 5000
CHARS_PER_URL = 23
MAX_FEATURED_TAGS = 10
MAX_PINNED = 5
MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
MAX_MEDIA_DESCRIPTION = 1500
IMAGE_SIZE_LIMIT = 16 * 1024 * 1024
IMAGE_MATRIX_LIMIT = 33_177_600
POLL_OPTIONS = 4
POLL_OPTION_CHARS = 50
POLL_MIN_SECONDS = 300
POLL_MAX_SECONDS = 2_629_746
