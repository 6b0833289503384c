"""Confine user-typed folder paths to the configured roots (``..`` and symlink escapes included)."""

from __future__ import annotations

from pathlib import Path

from matting.paths import PROJECT_ROOT


class PathNotAllowed(ValueError):
    """The path is outside every allowed root; the message lists the roots."""


def resolve_in_roots(text: str, roots: tuple[Path, ...], base: Path = PROJECT_ROOT) -> Path:
    """Resolve ``text`` (absolute, or relative to ``base``) and require it inside one of ``roots``.

    Symlinks are resolved before the check, so a link inside a root that points elsewhere is refused.
    """
    if not text or not text.strip():
        raise PathNotAllowed("enter a folder path")
    candidate = Path(text.strip()).expanduser()
    resolved = (candidate if candidate.is_absolute() else base / candidate).resolve()
    for root in roots:
        if resolved == root.resolve() or resolved.is_relative_to(root.resolve()):
            return resolved
    raise PathNotAllowed(f"{text.strip()} is outside the allowed folders: {', '.join(str(root) for root in roots)}")
