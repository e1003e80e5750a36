"""Report files are written atomically and a bad --out is one clear error."""

import pytest

from cnnarch import files
from cnnarch.errors import CnnarchError
from cnnarch.files import atomic_write_text, ensure_dir


def test_atomic_write_replaces_and_leaves_no_temporary_file(tmp_path) -> None:
    target = tmp_path / "sub" / "index.html"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["index.html"]


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch) -> None:
    target = tmp_path / "report.md"
    atomic_write_text(target, "old")

    def no_space(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", no_space)
    with pytest.raises(files.WriteError, match="No space"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_out_that_is_a_file_is_a_clear_error(tmp_path) -> None:
    blocker = tmp_path / "report"
    blocker.write_text("not a folder")
    with pytest.raises(CnnarchError, match="not a folder"):
        ensure_dir(blocker)
