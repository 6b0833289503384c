"""Single-image results kept for re-download: one folder per job, newest N.

The single-image tab keeps every result here whatever "save" says, so the History tab can offer it
again under the file names the caller chose from the source name (``商品图-cutout.png``). Folders are
named by the time they were made, so sorting their names sorts them by age; only folders so named
are ever pruned, anything else put under the root is left alone.
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path

from matting.files import atomic_write_bytes

#: ``20240501-093012-123456``: a job's folder, to the microsecond.
FOLDER_FORMAT = "%Y%m%d-%H%M%S-%f"
FOLDER_PATTERN = re.compile(r"\d{8}-\d{6}-\d{6}")


def check_file_name(name: str) -> None:
    """Refuse a name that is not one plain file in the folder: empty, with a path separator or NUL, or
    starting with a dot ("..", and hidden names that listings and ZIPs skip)."""
    if not name or name.startswith(".") or any(character in name for character in "/\\\0"):
        raise ValueError(f"{name!r} is not a plain file name: no path separators, and no leading dot")


class KeptResults:
    def __init__(self, root: Path, limit: int = 200):
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        self.root = Path(root)
        self.limit = limit

    def keep(self, files: dict[str, bytes]) -> Path:
        """Write ``files`` (name → bytes) atomically into a fresh folder ``root/<YYYYmmdd-HHMMSS-ffffff>/``,
        prune to the newest ``limit`` folders and return the new one.

        A failed write removes the folder, so the history never points at half a job.
        """
        if not files:
            raise ValueError("nothing to keep")
        for name in files:
            check_file_name(name)
        folder = self._fresh_folder()
        try:
            for name, data in files.items():
                atomic_write_bytes(folder / name, data)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._prune(keeping=folder)
        return folder

    def folders(self) -> list[Path]:
        """The kept job folders, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(path for path in self.root.iterdir() if FOLDER_PATTERN.fullmatch(path.name) and path.is_dir())

    def _fresh_folder(self) -> Path:
        """A new folder named by the current time; a name taken in the same microsecond (another session)
        is retried with the next reading of the clock."""
        self.root.mkdir(parents=True, exist_ok=True)
        while True:
            folder = self.root / datetime.now().strftime(FOLDER_FORMAT)
            try:
                folder.mkdir()
                return folder
            except FileExistsError:
                continue

    def _prune(self, keeping: Path) -> None:
        """Remove all but the newest ``limit`` folders, never ``keeping`` (the one just written, even if
        the clock went back); another session pruning at the same time may have removed some already."""
        others = [folder for folder in self.folders() if folder != keeping]
        for folder in others[: max(len(others) - (self.limit - 1), 0)]:
            shutil.rmtree(folder, ignore_errors=True)
