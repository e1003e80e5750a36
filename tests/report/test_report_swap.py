"""`cnnarch report` on a full disk: the previous report stays whole, and the message says why."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from cnnarch import files
from cnnarch.cli import main


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_ino, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_full_disk_leaves_the_previous_report_whole(
    report_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "report"
    shutil.copytree(report_dir, out)  # a previous report (the session's)
    before = snapshot(out)
    assert "index.html" in before and any(name.startswith("figures/") for name in before)
    new_temp = files._new_temp

    def full_at_index(path: Path) -> tuple[int, Path]:
        # The disk fills when index.html, the last file, is written: the figures are new.
        if path.name == "index.html":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return new_temp(path)

    monkeypatch.setattr(files, "_new_temp", full_at_index)
    argv = ["report", "--models", "resnet18", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnarch: error: no space left on device: ")
    assert "the report needs more: it had written " in err and "B when the disk filled" in err
    assert f"{out} is left as it was" in err
    assert "Traceback" not in err
    assert snapshot(out) == before  # every file the same, none rewritten, none added
