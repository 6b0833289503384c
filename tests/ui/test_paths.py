"""The batch tab's folder confinement: only paths inside the allowed roots, after resolving links."""

from __future__ import annotations

import pytest

from ui.paths import PathNotAllowed, resolve_in_roots


@pytest.fixture
def roots(tmp_path):
    data, outputs = tmp_path / "data", tmp_path / "outputs"
    (data / "shop").mkdir(parents=True)
    outputs.mkdir()
    return data, outputs


def test_paths_inside_roots_are_resolved(roots, tmp_path):
    data, outputs = roots
    assert resolve_in_roots(str(data / "shop"), roots) == (data / "shop").resolve()
    assert resolve_in_roots("data/shop", roots, base=tmp_path) == (data / "shop").resolve()
    assert resolve_in_roots(str(outputs), roots) == outputs.resolve()
    assert resolve_in_roots("data/shop/../shop", roots, base=tmp_path) == (data / "shop").resolve()


@pytest.mark.parametrize("text", ["/etc", "data/../..", "data/shop/../../outside", "", "   "])
def test_paths_outside_roots_are_refused(roots, tmp_path, text):
    with pytest.raises(PathNotAllowed):
        resolve_in_roots(text, roots, base=tmp_path)


def test_symlink_escape_is_refused(roots, tmp_path):
    data, _ = roots
    outside = tmp_path / "secret"
    outside.mkdir()
    (data / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathNotAllowed, match="outside the allowed folders"):
        resolve_in_roots(str(data / "link"), roots)


def test_sibling_with_common_prefix_is_refused(roots, tmp_path):
    (tmp_path / "data-private").mkdir()
    with pytest.raises(PathNotAllowed):
        resolve_in_roots(str(tmp_path / "data-private"), roots)
