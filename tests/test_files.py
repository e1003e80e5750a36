"""cnnarch.files: folders swapped in whole, failed writes that leave the old files as they were
and say why, written files that take the umask, and a folder path that is a file."""

from __future__ import annotations

import errno
import json
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


def test_a_staged_folder_replaces_what_it_wrote_before(tmp_path: Path) -> None:
    out = tmp_path / "report"
    with staged_folder(out) as stage:
        write_tree(stage, "old")
        atomic_write_text(stage / "figures" / "gone.svg", "<svg/>")
    with staged_folder(out) as stage:
        assert not (out / "index.html").read_text().endswith("new</p>")
        write_tree(stage, "new")
    assert (out / "index.html").read_text() == "<p>new</p>"
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["a.svg"]  # whole folder
    assert files.read_manifest(out) == ("figures/a.svg", "index.html")
    assert sorted(p.name for p in out.iterdir()) == [files.MANIFEST_NAME, "figures", "index.html"]


@pytest.mark.parametrize("foreign", ["notes.txt", "figures/thesis.png", "index.html", "empty/"])
def test_a_staged_folder_refuses_a_folder_holding_anything_it_did_not_write(
    tmp_path: Path, foreign: str
) -> None:
    out = tmp_path / "report"
    if foreign != "index.html":  # a report written before, then the user's own file
        with staged_folder(out) as stage:
            write_tree(stage, "old")
    target = out / foreign
    if foreign.endswith("/"):
        target.mkdir(parents=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("mine")
    before = snapshot(out)
    with pytest.raises(CnnarchError) as caught, staged_folder(out) as stage:
        write_tree(stage, "new")
    message = str(caught.value)
    assert f"holds {foreign}, which cnnarch did not write" in message
    assert "\n" not in message
    assert snapshot(out) == before and target.exists()
    assert not [p for p in out.iterdir() if p.name.startswith(files.STAGING_PREFIX)]


def test_a_file_arriving_during_the_build_stops_the_swap(tmp_path: Path) -> None:
    out = tmp_path / "report"
    with pytest.raises(CnnarchError, match=r"holds figures/thesis\.png"), staged_folder(out) as s:
        write_tree(s, "new")
        (out / "figures").mkdir()
        (out / "figures" / "thesis.png").write_text("mine")
    assert (out / "figures" / "thesis.png").read_text() == "mine"
    assert not (out / "index.html").exists()


def test_leftovers_of_a_killed_write_are_not_foreign(tmp_path: Path) -> None:
    out = tmp_path / "report"
    with staged_folder(out) as stage:
        write_tree(stage, "old")
    (out / ".index.html.0123abcd.tmp").write_text("half")  # an atomic write killed midway
    (out / f"{files.STAGING_PREFIX}89abcdef").mkdir()  # a build killed midway
    (out / files.LOCK_NAME).write_text("{}")
    assert files.check_output_folder(out) == ("figures/a.svg", "index.html")
    (out / ".notes.txt.0123abcd.tmp").write_text("not ours: notes.txt is not listed")
    with pytest.raises(CnnarchError, match=r"holds \.notes\.txt\.0123abcd\.tmp"):
        files.check_output_folder(out)


@pytest.mark.parametrize(
    ("manifest", "field"),
    [
        ("[1, 2]", "must be a mapping"),
        ('{"format": "cnnarch-manifest-1"}', "has no field 'written'"),
        ('{"format": "other", "written": []}', "format must be one of"),
        ('{"format": "cnnarch-manifest-1", "written": "abc"}', "written must be a list"),
        ('{"format": "cnnarch-manifest-1", "written": [3]}', r"written\[0\] must be a string"),
        ('{"format": "cnnarch-manifest-1", "written": ["../x"]}', "must be a path inside"),
        ("{", "not JSON"),
    ],
)
def test_a_malformed_manifest_is_named_with_its_field(
    tmp_path: Path, manifest: str, field: str
) -> None:
    (tmp_path / files.MANIFEST_NAME).write_text(manifest)
    with pytest.raises(files.FormatError, match=field) as caught:
        files.check_output_folder(tmp_path)
    assert str(caught.value).startswith(str(tmp_path / files.MANIFEST_NAME))


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
    # "<p>old</p>", "<svg>old</svg>" and the manifest that lists them
    assert f"the folder it replaces holds {files.tree_bytes(out)} B" in message
    assert f"{out} is left as it was" in message
    assert snapshot(out) == before
    assert sorted(p.name for p in out.iterdir()) == [files.MANIFEST_NAME, "figures", "index.html"]


def test_another_failure_also_leaves_the_previous_folder(tmp_path: Path) -> None:
    out = tmp_path / "report"
    with staged_folder(out) as stage:
        write_tree(stage, "old")
    before = snapshot(out)
    with pytest.raises(ZeroDivisionError), staged_folder(out) as stage:
        write_tree(stage, "new")
        _ = 1 / 0
    assert snapshot(out) == before
    assert sorted(os.listdir(out)) == [files.MANIFEST_NAME, "figures", "index.html"]


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


# --- files read: regular files only, strings printable ------------------------------------------


def test_open_regular_refuses_pipes_and_folders_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "checkpoint.pt"
    os.mkfifo(fifo)  # opening it for reading the usual way would wait for a writer forever
    with pytest.raises(CnnarchError, match=r"checkpoint\.pt is a named pipe, not a regular file"):
        files.open_regular(fifo, "checkpoint")
    with pytest.raises(CnnarchError, match="is a folder, not a regular file"):
        files.open_regular(tmp_path, "checkpoint")
    (tmp_path / "real").write_bytes(b"abc")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with files.open_regular(tmp_path / "link") as handle:
        assert handle.read() == b"abc"


def test_printable_escapes_what_a_terminal_would_obey() -> None:
    assert files.printable("\x1b[2J\x1b[31mred\nline\x07") == "\\x1b[2J\\x1b[31mred\\nline\\x07"
    assert files.printable("Ünïcode and spaces") == "Ünïcode and spaces"


# --- the lock ------------------------------------------------------------------------------------


def test_a_full_disk_when_the_lock_is_taken_leaves_no_lock_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_space_for(files.LOCK_NAME, monkeypatch)
    with pytest.raises(WriteError, match=r"cannot write .*cnnarch\.lock: No space left on device"):
        files.FolderLock(tmp_path / "run").acquire()
    assert not (tmp_path / "run").exists()  # the folder it made is gone too
    monkeypatch.undo()
    with files.FolderLock(tmp_path / "run") as lock:  # the next run is not blocked
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()


def test_an_empty_lock_file_left_by_an_older_failed_start_is_taken_over(tmp_path: Path) -> None:
    (tmp_path / files.LOCK_NAME).write_bytes(b"")
    lock = files.FolderLock(tmp_path)
    lock.acquire()
    try:
        assert lock.stale_note is not None and "empty lock file" in lock.stale_note
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    finally:
        lock.release()


def test_a_lock_is_read_field_by_field_and_its_strings_escaped(tmp_path: Path) -> None:
    path = tmp_path / files.LOCK_NAME
    path.write_text(json.dumps({"pid": "1", "host": "h"}))
    with pytest.raises(CnnarchError, match=r"cnnarch\.lock: pid must be an integer, got '1'"):
        files.FolderLock(tmp_path).acquire()
    hostile = {"pid": 1, "host": "\x1b]0;owned\x07elsewhere", "started": "\x1b[2J", "purpose": "x"}
    path.write_text(json.dumps(hostile))
    with pytest.raises(CnnarchError) as caught:
        files.FolderLock(tmp_path).acquire()
    message = str(caught.value)
    assert "\x1b" not in message and "\x07" not in message
    assert "on host \\x1b]0;owned\\x07elsewhere" in message and "started \\x1b[2J" in message
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(CnnarchError, match=r"is a named pipe, not a regular file; .* delete"):
        files.FolderLock(tmp_path).acquire()
