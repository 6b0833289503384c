"""Gathering a batch's photos: uploads and ZIPs (untrusted: names that escape, bombs, Windows GBK
names) into one folder, and the folders under the allowed roots offered as a list."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from ui import sources
from ui.sources import ArchiveRefused, Gathered, extract_zip, folder_choices, gather_uploads, safe_relative_path

PHOTO = b"\xff\xd8 photo bytes (the batch decodes them, gathering does not)"
LIMIT = 1024 * 1024


class WindowsInfo(zipfile.ZipInfo):
    """A member name stored as Windows in China stores it: GBK bytes, without the UTF-8 flag."""

    def _encodeFilenameFlags(self):
        return self.filename.encode("gbk"), self.flag_bits


def make_zip(members: dict[str, bytes], windows: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(WindowsInfo(name) if name in windows else zipfile.ZipInfo(name), data)
    return buffer.getvalue()


def files_under(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}


def test_zip_keeps_folders_and_chinese_names_utf8_or_gbk(tmp_path):
    data = make_zip({"shoes/": b"", "shoes/商品 1.jpg": PHOTO, "封面.png": PHOTO, "说明.txt": b"notes",
                     "__MACOSX/shoes/._商品 1.jpg": b"fork", ".DS_Store": b"finder"}, windows=("封面.png", "说明.txt"))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert not archive.getinfo("封面.png".encode("gbk").decode("cp437")).flag_bits & sources.UTF8_FLAG

    gathered = gather_uploads([("photos.zip", data)], tmp_path, LIMIT)

    assert sorted(gathered.photos) == ["shoes/商品 1.jpg", "封面.png"]
    assert files_under(tmp_path) == {"shoes/商品 1.jpg", "封面.png"}
    assert (tmp_path / "shoes" / "商品 1.jpg").read_bytes() == PHOTO
    assert gathered.skipped == ["photos.zip/说明.txt"], "non-photos are listed; folders and archiver files are not"
    assert not (gathered.unsafe or gathered.too_large or gathered.unreadable or gathered.refused_archives)


@pytest.mark.parametrize("name", ["../evil.jpg", "a/../../evil.jpg", "/tmp/evil.jpg", "C:\\evil.jpg", "..\\evil.jpg"])
def test_zip_names_leading_outside_are_refused_and_never_written(tmp_path, name):
    folder = tmp_path / "gathered"
    folder.mkdir()
    gathered = gather_uploads([("trap.zip", make_zip({name: PHOTO, "good.jpg": PHOTO}))], folder, LIMIT)

    assert gathered.unsafe == [f"trap.zip/{name}"]
    assert gathered.photos == ["good.jpg"]
    assert files_under(tmp_path) == {"gathered/good.jpg"}, "nothing lands beside or above the folder"
    assert not Path("/tmp/evil.jpg").exists()


@pytest.mark.parametrize("name, expected", [
    ("a/b.jpg", "a/b.jpg"), ("./a//b.jpg", "a/b.jpg"), ("a\\b.jpg", "a/b.jpg"),
    ("../b.jpg", None), ("/b.jpg", None), ("c:b.jpg", None), ("a/..", None), ("./", None),
])
def test_safe_relative_path(name, expected):
    path = safe_relative_path(name)
    assert (path.as_posix() if path else None) == expected


def test_zip_caps_are_checked_before_anything_is_written(tmp_path, monkeypatch):
    members = {f"p{index}.jpg": PHOTO for index in range(5)}
    monkeypatch.setattr(sources, "MAX_ZIP_MEMBERS", 4)
    with pytest.raises(ArchiveRefused) as refused:
        extract_zip(make_zip(members), "many.zip", Gathered(tmp_path), LIMIT)
    assert refused.value.reason == "too_many" and not files_under(tmp_path)

    monkeypatch.setattr(sources, "MAX_ZIP_MEMBERS", 10)
    monkeypatch.setattr(sources, "MAX_ZIP_TOTAL_BYTES", 4 * len(PHOTO))
    gathered = gather_uploads([("big.zip", make_zip(members)), ("ok.jpg", PHOTO)], tmp_path, LIMIT)
    assert gathered.refused_archives == {"big.zip": "too_big"}
    assert gathered.photos == ["ok.jpg"] and files_under(tmp_path) == {"ok.jpg"}


def test_oversized_damaged_and_foreign_uploads_are_listed(tmp_path):
    data = make_zip({"huge.jpg": b"x" * (LIMIT + 1), "fine.jpg": PHOTO})
    damaged = bytearray(make_zip({"bad.jpg": b"y" * 200}))
    damaged[60:80] = b"\x00" * 20  # inside bad.jpg's data: its CRC no longer matches
    uploads = [("set.zip", data), ("bad.zip", bytes(damaged)), ("not-a.zip", b"plain text"), ("big.png", b"z" * (LIMIT + 1)),
               ("phone.heic", b"heic"), ("C:\\Users\\me\\photo.jpg", PHOTO), ("photo.jpg", PHOTO)]

    gathered = gather_uploads(uploads, tmp_path, LIMIT)

    assert gathered.too_large == ["set.zip/huge.jpg", "big.png"]
    assert gathered.unreadable == ["bad.zip/bad.jpg"]
    assert gathered.refused_archives == {"not-a.zip": "damaged"}
    assert gathered.skipped == ["phone.heic"]
    assert gathered.photos == ["fine.jpg", "photo.jpg", "photo-2.jpg"], "same names are kept apart, never overwritten"
    assert files_under(tmp_path) == {"fine.jpg", "photo.jpg", "photo-2.jpg"}


def test_folder_choices_two_levels_deep_with_counts(tmp_path):
    data, outputs, outside = tmp_path / "data", tmp_path / "outputs", tmp_path / "outside"
    for folder, photos in {data: 1, data / "shoes": 2, data / "shoes" / "red": 1, data / "shoes" / "red" / "deep": 3,
                           data / "empty": 0, data / ".hidden": 4, outside: 5}.items():
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(photos):
            (folder / f"{index}.JPG").write_bytes(PHOTO)
    (data / "shoes" / "notes.txt").write_text("not a photo")
    (data / "link").symlink_to(outside, target_is_directory=True)

    choices = folder_choices((data, outputs))

    assert [(choice.label, choice.photos, choice.photos_below) for choice in choices] == [
        ("data", 1, 7), ("data/shoes", 2, 6), ("data/shoes/red", 1, 4)]
    assert choices[1].path == data / "shoes" and choices[1].root == data
