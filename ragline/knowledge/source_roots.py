"""Which server folders an index build may read when it is asked for over HTTP.

A caller names a folder on the server's filesystem; without a bound, any readable folder
(a home directory, another service's data) could be indexed and then answered from. The
folder, symlinks resolved, must lie inside one of the configured roots. The refusal never
says whether the folder exists or what it holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ragline.errors import Forbidden, InvalidInput

OUTSIDE = (
    "this folder is outside the server's source roots (RAGLINE_SOURCE_ROOTS): index builds "
    "over the API read only from there"
)


def inside_roots(folder: str, roots: Iterable[Path]) -> Path:
    """The folder, resolved, if one of the roots holds it; else Forbidden."""
    if "\x00" in folder:
        raise InvalidInput("a folder name cannot hold a NUL character", field="folder")
    try:
        resolved = Path(folder).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, an unreadable parent
        raise Forbidden(OUTSIDE) from None
    if _holding_root(resolved, roots) is None:
        raise Forbidden(OUTSIDE)
    return resolved


def shown_source(source: str, roots: Iterable[Path]) -> str:
    """A version's source as callers see it: relative to the root that holds it, never the
    server's absolute path (a folder built from outside the roots, at the command line,
    shows its name only)."""
    path = Path(source)
    base = _holding_root(path, roots)
    return path.name if base is None else str(Path(base.name) / path.relative_to(base))


def _holding_root(path: Path, roots: Iterable[Path]) -> Path | None:
    """The first root, resolved, that holds path (or is it); a root that cannot be
    resolved holds nothing."""
    for root in roots:
        try:
            base = root.resolve()
        except (OSError, RuntimeError, ValueError):
            continue
        if path.is_relative_to(base):
            return base
    return None
