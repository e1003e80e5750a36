"""`cnnarch summary mymodels:build` finds mymodels.py in the current folder, as `python -m`
does, also from the installed `cnnarch` script (whose sys.path lacks the current folder)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cnnarch.cli import main

FACTORY = """
from torch import nn

def build():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
"""


def test_a_factory_in_the_current_folder_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "mymodels_here.py").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)
    # As for the `cnnarch` script: neither "" nor the current folder on the path.
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "mymodels_here", raising=False)
    assert main(["summary", "mymodels_here:build", "--input", "3x8x8", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert "Conv2d" in out and "112" in out  # 3*4*3*3 weights + 4 biases
    sys.modules.pop("mymodels_here", None)
