"""Folder walks and output names (pure file-system logic, no server)."""

from __future__ import annotations

from matting.files import find_images, output_paths


def test_folder_walk_mirrors_tree_and_resolves_name_clashes(tmp_path):
    for relative in ["a.jpg", "a.png", "b.JPEG", "notes.txt", ".hidden.jpg", "sub/c.webp", "sub/deeper/d.TIFF"]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x")
    flat = [path.relative_to(tmp_path).as_posix() for path in find_images(tmp_path)]
    assert flat == ["a.jpg", "a.png", "b.JPEG"]
    found = find_images(tmp_path, recursive=True)
    mapping = {source.relative_to(tmp_path).as_posix(): target.relative_to(tmp_path / "out").as_posix()
               for source, target in output_paths(found, tmp_path, tmp_path / "out", "png").items()}
    assert mapping == {"a.jpg": "a.jpg.png", "a.png": "a.png.png", "b.JPEG": "b.png",
                       "sub/c.webp": "sub/c.png", "sub/deeper/d.TIFF": "sub/deeper/d.png"}


def test_confined_walk_skips_links_that_leave_the_folder(tmp_path):
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    (outside / "private").mkdir(parents=True)
    (outside / "secret.jpg").write_bytes(b"x")
    (outside / "private" / "more.png").write_bytes(b"x")
    inside.mkdir()
    (inside / "own.jpg").write_bytes(b"x")
    (inside / "link.jpg").symlink_to(outside / "secret.jpg")
    (inside / "linked-folder").symlink_to(outside / "private", target_is_directory=True)
    def names(paths):
        return sorted(path.relative_to(inside).as_posix() for path in paths)

    assert names(find_images(inside, recursive=True, confine=True)) == ["own.jpg"]
    assert names(find_images(inside, recursive=True)) == ["link.jpg", "own.jpg"]
