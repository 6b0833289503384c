"""Where a batch's photos come from: uploaded photos and ZIPs gathered into one folder (ZIPs extracted
safely), and the folders under the allowed roots offered as a list instead of a typed server path.

A ZIP is untrusted input: a member named ``../x`` or ``/etc/x`` is refused, not written; directories and
files that are not photos are not extracted but listed; the number of members and the total size they
declare are capped before anything is written (zipfile stops reading a member at its declared size).
Windows writes Chinese member names in GBK without the UTF-8 flag, so those names are re-decoded.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from matting.files import is_image_name, unique_path

MAX_ZIP_MEMBERS = 2000
MAX_ZIP_TOTAL_BYTES = 2 * 1024**3
#: ZipInfo.flag_bits: the member's name is UTF-8 (else it is cp437, or in practice the maker's code page).
UTF8_FLAG = 0x800
#: Encodings tried, in order, for a name stored without the UTF-8 flag: many tools write UTF-8 without
#: setting it; Windows in China writes GBK (GB18030 is its superset).
LEGACY_NAME_ENCODINGS = ("utf-8", "gb18030")
#: Folders an archiver adds for its own bookkeeping (macOS resource forks), never the user's photos.
SYSTEM_FOLDERS = ("__MACOSX",)
WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
#: How deep under an allowed root the folder list goes (the root itself is depth 0).
FOLDER_DEPTH = 2


class ArchiveRefused(ValueError):
    """A ZIP not extracted at all; ``reason`` is "damaged", "too_many" or "too_big" (the tab words it)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


@dataclass
class Gathered:
    """What the uploads gave, names relative to ``folder`` (photos) or as uploaded ("a.zip/b/c.txt")."""

    folder: Path
    photos: list[str] = field(default_factory=list)
    #: Not photos (left out): files of another type, ZIP members that are not pictures.
    skipped: list[str] = field(default_factory=list)
    #: ZIP members whose names lead outside the folder (``..``, absolute): never written.
    unsafe: list[str] = field(default_factory=list)
    #: Photos over the per-photo size limit.
    too_large: list[str] = field(default_factory=list)
    #: ZIP members that could not be read (damaged, encrypted, an unknown compression).
    unreadable: list[str] = field(default_factory=list)
    #: Uploaded ZIP name → ArchiveRefused.reason.
    refused_archives: dict[str, str] = field(default_factory=dict)


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as its maker meant it: zipfile decodes names without the UTF-8 flag as cp437,
    which turns GBK-encoded Chinese into symbols; the original bytes are recovered and decoded again."""
    if info.flag_bits & UTF8_FLAG:
        return info.filename
    raw = info.filename.encode("cp437")
    for encoding in LEGACY_NAME_ENCODINGS:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def safe_relative_path(name: str) -> PurePosixPath | None:
    """``name`` as a path that stays inside the folder it is extracted to; None when it would not
    (absolute, a Windows drive, a ``..`` part) or names nothing."""
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or WINDOWS_DRIVE.match(normalized):
        return None
    parts = [part for part in normalized.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return PurePosixPath(*parts)


def _is_bookkeeping(path: PurePosixPath) -> bool:
    """Hidden files (``.DS_Store``, ``._photo.jpg``) and archiver folders: not the user's, not listed."""
    return any(part.startswith(".") or part in SYSTEM_FOLDERS for part in path.parts)


def extract_zip(data: bytes, archive_name: str, gathered: Gathered, photo_limit_bytes: int) -> None:
    """Extract the photos of one ZIP (its bytes) into ``gathered.folder``, its folders mirrored, and list the rest.

    Raises ArchiveRefused, writing nothing, for a ZIP that is not one, has over MAX_ZIP_MEMBERS members
    or declares over MAX_ZIP_TOTAL_BYTES in all.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ArchiveRefused("damaged", f"{archive_name}: {exc}") from exc
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise ArchiveRefused("too_many", f"{archive_name}: {len(members)} members, at most {MAX_ZIP_MEMBERS}")
        declared = sum(info.file_size for info in members)
        if declared > MAX_ZIP_TOTAL_BYTES:
            raise ArchiveRefused("too_big", f"{archive_name}: {declared} bytes uncompressed, at most {MAX_ZIP_TOTAL_BYTES}")
        for info in members:
            if info.is_dir():
                continue
            name = member_name(info)
            listed = f"{archive_name}/{name}"
            relative = safe_relative_path(name)
            if relative is None:
                gathered.unsafe.append(listed)
            elif _is_bookkeeping(relative):
                continue
            elif not is_image_name(Path(relative.name)):
                gathered.skipped.append(listed)
            elif info.file_size > photo_limit_bytes:
                gathered.too_large.append(listed)
            else:
                _extract_member(archive, info, relative, listed, gathered)


def _extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, relative: PurePosixPath, listed: str,
                    gathered: Gathered) -> None:
    try:
        data = archive.read(info)
        target = unique_path(gathered.folder.joinpath(*relative.parts))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, ValueError):
        # damaged data or CRC, an encrypted member, an unknown compression, a name clashing with a folder
        gathered.unreadable.append(listed)
        return
    gathered.photos.append(target.relative_to(gathered.folder).as_posix())


def is_zip_name(name: str) -> bool:
    return name.lower().endswith(".zip")


def gather_uploads(uploads: list[tuple[str, bytes]], folder: Path, photo_limit_bytes: int) -> Gathered:
    """Photos (``(name, data)``) written into ``folder`` under their own names; ZIPs extracted into it.

    Same names get ``-2``, ``-3``… rather than overwriting one another.
    """
    gathered = Gathered(folder)
    for name, data in uploads:
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        if is_zip_name(base):
            try:
                extract_zip(data, base, gathered, photo_limit_bytes)
            except ArchiveRefused as exc:
                gathered.refused_archives[base] = exc.reason
        elif not is_image_name(Path(base)):
            gathered.skipped.append(base)
        elif len(data) > photo_limit_bytes:
            gathered.too_large.append(base)
        else:
            target = unique_path(folder / base)
            target.write_bytes(data)
            gathered.photos.append(target.name)
    return gathered


@dataclass(frozen=True)
class FolderChoice:
    """A folder a batch can read: ``photos`` directly in it, ``photos_below`` in it and all its sub-folders."""

    path: Path
    root: Path
    photos: int
    photos_below: int

    @property
    def label(self) -> str:
        """The root's name and the path under it, e.g. "data/shoes" (the roots are listed in full nearby)."""
        return PurePosixPath(self.root.name, *self.path.relative_to(self.root).parts).as_posix()


def _photo_counts(root: Path) -> dict[Path, int]:
    """Photos directly in each folder under ``root``; hidden folders and symlinked folders are not entered."""
    counts: dict[Path, int] = {}
    for current, folders, files in os.walk(root):
        here = Path(current)
        folders[:] = sorted(name for name in folders if not name.startswith(".") and not (here / name).is_symlink())
        counts[here] = sum(1 for name in files if not name.startswith(".") and is_image_name(Path(name)))
    return counts


def folder_choices(roots: tuple[Path, ...], depth: int = FOLDER_DEPTH) -> list[FolderChoice]:
    """The folders at most ``depth`` levels under each root (the roots included) with photos in them or
    below them, each root's in path order."""
    choices: dict[Path, FolderChoice] = {}
    for root in roots:
        root = root.resolve()
        if not root.is_dir():
            continue
        counts = _photo_counts(root)
        below: dict[Path, int] = dict.fromkeys(counts, 0)
        for folder, count in counts.items():
            for ancestor in (folder, *folder.parents):
                if ancestor in below:
                    below[ancestor] += count
                if ancestor == root:
                    break
        for folder in sorted(counts):
            if len(folder.relative_to(root).parts) <= depth and below[folder] and folder not in choices:
                choices[folder] = FolderChoice(folder, root, counts[folder], below[folder])
    return list(choices.values())
