"""Atomic file writes: a reader or a crash never sees a half-written output."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def sibling_temp_path(path: Path) -> Path:
    """A hidden, unique temporary name in ``path``'s directory, so ``os.replace`` onto ``path`` is atomic.

    Unlike ``tempfile.mkstemp`` (mode 0600) the file gets the usual umask permissions, so a Triton
    container or a web server running as another user can still read the result.
    """
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync it, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = sibling_temp_path(path)
    try:
        with open(temp, "xb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
