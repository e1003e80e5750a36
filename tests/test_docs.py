"""The documentation site builds with warnings as errors (a broken link, a page left out of the
navigation, a docstring the API reference cannot read), and the reference documents the API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_docs_build_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    pages = {p.stem for p in (ROOT / "docs").glob("*.md")}
    built = {p.parent.name if p.parent != site else "index" for p in site.rglob("index.html")}
    assert pages <= built
    reference = (site / "reference" / "index.html").read_text(encoding="utf-8")
    # Each function documented, its docstring's Args section a table of its parameters.
    for name in ("cnnarch.analyze", "cnnarch.planner.search.plan", "cnnarch.diagram"):
        section = reference.split(f'id="{name}"', 1)[1].split("<h2 ", 1)[0]
        assert "Parameters:" in section, name
