"""Why a file was refused, in the user's words: the server explains in English for engineers
(matting.codec, matting.options); the dashboard shows the matching plain sentence with what to do,
never the library text (which goes to the log)."""

from __future__ import annotations

import re

#: (pattern in the server's message, the i18n.COMMON key of the plain reason), first match wins.
#: matting.video's refusals start with the file's name, so theirs are matched after it.
PATTERNS = (
    (r"^inference server unavailable", "reason_unavailable"),
    (r"^(server fault|internal server error|the job failed: )", "reason_server_fault"),
    (r"^file too large", "reason_file_too_large"),
    (r"holds no subject", "reason_no_subject"),
    (r"^background image", "reason_background"),
    (r"^empty input", "reason_empty"),
    (r"^not a supported image", "reason_not_image"),
    (r"^image too large", "reason_too_many_pixels"),
    (r"^(unreadable image header|truncated or corrupt image data)", "reason_damaged"),
    (r"^invalid image size", "reason_bad_size"),
    (r"too large for WebP", "reason_webp_too_large"),
    (r"must be one of|is not a colour|must hold exactly|characters long|bytes long|needs kind=|are for mp4 output",
     "reason_option"),
    (r" is not a video file or is corrupt", "reason_not_video"),
    (r" is empty: the file has 0 bytes", "reason_video_empty"),
    (r" has no video (stream|frames)", "reason_no_video"),
    (r" is corrupt", "reason_video_damaged"),
    (r" is \d+×\d+; the limit is", "reason_video_too_large"),
    (r" lasts [\d,.]+ s; the limit is", "reason_video_too_long"),
    (r" is (over )?[\d,]+ bytes[;,] the limit", "reason_video_file_too_large"),
)


def reason_key(message: str, video: bool = False) -> str:
    """The COMMON key for a refusal's ``message``; for one we do not know ``reason_other`` (which asks
    for another photo), or ``reason_video_other`` for a ``video``."""
    for pattern, key in PATTERNS:
        if re.search(pattern, message):
            return key
    return "reason_video_other" if video else "reason_other"


def engineer_text(exc: Exception) -> str:
    """What a history row keeps of a failure: the explanation for engineers, marked by kind where the
    message alone would not say it (a server outage or fault); :func:`reason_key` reads it back."""
    from client import MattingError, ServerError  # noqa: PLC0415 - the client pulls in tritonclient

    if isinstance(exc, ServerError):
        return f"server fault: {exc}"
    if isinstance(exc, MattingError) and not exc.bad_input and not str(exc).startswith("inference server unavailable"):
        return f"inference server unavailable: {exc}"
    return str(exc)
