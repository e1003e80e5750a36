"""cnnarch.files: folders swapped in whole, failed writes that leave the old files as they were
and say why, written files that take the umask, and a folder path that is a file."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from cnnarch import files
from cnnarch.errors import CnnarchError
from cnnarch.files import WriteError, atomic_write_text, ensure_dir, shown_path, staged_folder


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under `folder`: its inode (a rewrite makes a new one) and its bytes."""
    return {
        str(p.relative_to(folder)): (p.stat().st_ino, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def write_tree(stage: Path, version: str) -> None:
    atomic_write_text(stage / "index.html", f"<p>{version}</p>")
    atomic_write_text(stage / "figures" / "a.svg", f"<svg>{version}</svg>")


def test_a_staged_folder_replaces_its_entries_and_keeps_the_others(tmp_path: Path) -> None:
    out = tmp_path / "report"
    with staged_folder(out) as stage:
        write_tree(stage, "old")
        atomic_write_text(stage / "figures" / "gone.svg", "<svg/>")
    (out / "notes.txt").write_text("mine")  # not the report's: must survive
    with staged_folder(out) as stage:
        assert not (out / "index.html").read_text().endswith("new</p>")
        write_tree(stage, "new")
    assert (out / "index.html").read_text() == "<p>new</p>"
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["a.svg"]  # whole folder
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == ["figures", "index.html", "notes.txt"]


def no_space_for(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes of files called `name` fail as on a full disk."""
    new_temp = files._new_temp

    def full(path: Path) -> tuple[int, Path]:
        if path.name == name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return new_temp(path)

    monkeypatch.setattr(files, "_new_temp", full)


def test_a_full_disk_leaves_the_previous_folder_untouched_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "report"
    with staged_folder(out) as stage:
        write_tree(stage, "old")
    before = snapshot(out)
    no_space_for("index.html", monkeypatch)  # the last file: the figures are already new
    with pytest.raises(WriteError) as caught, staged_folder(out, "the report") as stage:
        atomic_write_text(stage / "figures" / "a.svg", "<svg>new</svg>" * 1000)
        atomic_write_text(stage / "index.html", "<p>new</p>")
    message = str(caught.value)
    assert caught.value.errno == errno.ENOSPC
    assert message.startswith("no space left on device: ")
    assert " free in " in message and "the report needs more: it had written 14.00 KB" in message
    assert "the folder it replaces holds 24 B" in message  # "<p>old</p>", "<svg>old</svg>"
    assert f"{out} is left as it was" in message
    assert snapshot(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["figures", "index.html"]  # no staging


def test_another_failure_also_leaves_the_previous_folder(tmp_path: Path) -> None:
    out = tmp_path / "report"
    with staged_folder(out) as stage:
        write_tree(stage, "old")
    before = snapshot(out)
    with pytest.raises(ZeroDivisionError), staged_folder(out) as stage:
        write_tree(stage, "new")
        _ = 1 / 0
    assert snapshot(out) == before and sorted(os.listdir(out)) == ["figures", "index.html"]


def test_a_failed_write_names_the_file_and_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_space_for("big.bin", monkeypatch)
    with pytest.raises(WriteError, match=r"cannot write .*big\.bin: No space left on device \("):
        atomic_write_text(tmp_path / "big.bin", "x")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o007])
def test_files_and_folders_take_the_umask(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "file.txt", "x")
        with staged_folder(tmp_path / "out") as stage:
            atomic_write_text(stage / "sub" / "index.html", "x")
    finally:
        os.umask(previous)
    assert (tmp_path / "file.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "out" / "sub" / "index.html").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "out" / "sub").stat().st_mode & 0o777 == 0o777 & ~umask


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


def test_shown_path_keeps_a_relative_path_as_given() -> None:
    assert shown_path(Path("runs/degradation/results.json")) == "runs/degradation/results.json"


def test_shown_path_makes_a_path_under_the_current_folder_relative(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert shown_path(tmp_path / "runs" / "r.json") == "runs/r.json"


def test_shown_path_names_only_the_file_elsewhere(tmp_path, monkeypatch) -> None:
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    assert shown_path(tmp_path / "elsewhere" / "results.json") == "results.json"
