"""What `pip install .` (the Dockerfile's install) puts in site-packages: every module of the
code the image runs, the console script's cli/ included, and the review page's templates.
Built from a copy of the sources in tmp_path, so the checkout gets no build/ or egg-info."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support.environment import REPO

SHIPPED = ("ragline", "api", "workers", "indexer", "cli")


def test_the_wheel_holds_every_module_and_template(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in SHIPPED:
        shutil.copytree(REPO / package, source / package, ignore=ignore)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
         "--quiet", "--wheel-dir", str(tmp_path / "wheel")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = (tmp_path / "wheel").glob("ragline-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    expected = {
        path.relative_to(REPO).as_posix()
        for package in SHIPPED
        for pattern in ("*.py", "*.html")
        for path in (REPO / package).rglob(pattern)
        if "__pycache__" not in path.parts
    }
    assert expected - names == set()
    assert any(n.startswith("api/routes/") for n in names)
    assert any(n.startswith("api/templates/review/") for n in names)
