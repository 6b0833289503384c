"""Why a file was refused, in the user's words: the server explains in English for engineers
(matting.codec, matting.options); the dashboard shows the matching plain sentence with what to do,
never the library text (which goes to the log)."""

from __future__ import annotations

import re

#: (pattern in the server's message, the i18n.COMMON key of the plain reason), first match wins.
PATTERNS = (
    (r"^background image", "reason_background"),
    (r"^empty input", "reason_empty"),
    (r"^not a supported image", "reason_not_image"),
    (r"^image too large", "reason_too_many_pixels"),
    (r"^(unreadable image header|truncated or corrupt image data)", "reason_damaged"),
    (r"^invalid image size", "reason_bad_size"),
    (r"too large for WebP", "reason_webp_too_large"),
    (r"must be one of|is not a colour|must hold exactly|characters long|bytes long|needs kind=", "reason_option"),
)


def reason_key(message: str) -> str:
    """The COMMON key for a refusal's ``message``; ``reason_other`` for one we do not know."""
    for pattern, key in PATTERNS:
        if re.search(pattern, message):
            return key
    return "reason_other"
