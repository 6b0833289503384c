"""Folders of results as ZIP downloads, built in memory when the user asks for them."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path


def zip_folder(folder: Path) -> bytes:
    """Every output of a batch (images and report.json) as a ZIP built in memory, paths relative to ``folder``.

    Images are stored as they are (PNG and WebP do not compress further); hidden temp files are left out.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if path.is_file() and not any(part.startswith(".") for part in relative.parts):
                compression = zipfile.ZIP_DEFLATED if path.suffix == ".json" else zipfile.ZIP_STORED
                archive.write(path, relative.as_posix(), compress_type=compression)
    return buffer.getvalue()
