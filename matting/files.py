"""Files in and out: atomic writes (a reader or a crash never sees a half-written output), the
images of a folder, and where their outputs go."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

from PIL import Image

from matting.contract import IMAGE_SUFFIXES


def sibling_temp_path(path: Path) -> Path:
    """A hidden, unique temporary name in ``path``'s directory, so ``os.replace`` onto ``path`` is atomic.

    Unlike ``tempfile.mkstemp`` (mode 0600) the file gets the usual umask permissions, so a Triton
    container or a web server running as another user can still read the result.
    """
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o666) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync it, then rename it over ``path``; the file
    gets ``mode`` less the umask (0o600 keeps a secret to its owner from the first byte)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = sibling_temp_path(path)
    try:
        with os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def unique_path(path: Path) -> Path:
    """``path`` if nothing is there yet, else ``stem-2.ext``, ``stem-3.ext``…: outputs are never overwritten."""
    candidate, number = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
        number += 1
    return candidate


def timestamped_output_dir(root: Path = Path("outputs")) -> Path:
    """``root/outputs_YYYYMMDDHHMMSS``, the original product's naming for a job's outputs."""
    return root / datetime.now().strftime("outputs_%Y%m%d%H%M%S")


def is_image_name(path: Path) -> bool:
    """Whether ``path``'s suffix is one of matting.contract.IMAGE_SUFFIXES, in any case."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def find_images(root: Path, recursive: bool = False, exclude: Path | None = None, confine: bool = False) -> list[Path]:
    """Image files under ``root`` by suffix (:func:`is_image_name`), sorted; see :func:`find_files`."""
    return [path for path in find_files(root, recursive, exclude, confine) if is_image_name(path)]


def find_files(root: Path, recursive: bool = False, exclude: Path | None = None, confine: bool = False) -> list[Path]:
    """Every file under ``root``, sorted; hidden and temp files and those under ``exclude`` are ignored.

    ``confine`` skips files that resolve outside ``root`` (symlinks pointing elsewhere), for callers
    such as the dashboard that must not read beyond the folder they were given.
    """
    candidates = root.rglob("*") if recursive else root.iterdir()
    exclude = exclude.resolve() if exclude else None
    real_root = root.resolve()
    found = []
    for path in candidates:
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if exclude and path.resolve().is_relative_to(exclude):
            continue
        if confine and not path.resolve().is_relative_to(real_root):
            continue
        found.append(path)
    return sorted(found)


def output_paths(sources: list[Path], input_dir: Path, output_dir: Path, format: str) -> dict[Path, Path]:
    """Mirror the input tree; 'a.jpg' → 'a.png', or 'a.jpg.png' when 'a.png' is an input beside it."""
    stems = Counter(source.relative_to(input_dir).with_suffix("") for source in sources)
    mapping = {}
    for source in sources:
        relative = source.relative_to(input_dir)
        name = relative.stem if stems[relative.with_suffix("")] == 1 else relative.name
        mapping[source] = output_dir / relative.parent / f"{name}.{format}"
    return mapping


def is_valid_image(path: Path) -> bool:
    """True when ``path`` holds a complete image (a resumed batch keeps it); False otherwise."""
    try:
        with Image.open(path) as image:
            image.verify()
        return True
    except Exception:  # noqa: BLE001 - any failure means "redo it"
        return False
