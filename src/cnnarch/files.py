"""Safe file writes: atomic files, report folders swapped in whole, one run per folder.

A reader sees the old file or the new one, never a half-written one. Written files get the
permissions a plain `open()` would give them (the umask's, or those of the file replaced). A
write that fails (a full disk, a read-only folder) ends in a `WriteError` naming the file, the
reason and, for a full disk, the free space.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from cnnarch.errors import CnnarchError
from cnnarch.units import byte_size

LOCK_NAME = "cnnarch.lock"
STAGING_PREFIX = ".cnnarch-staging-"
REPLACED_PREFIX = ".cnnarch-replaced-"


def shown_path(path: Path | str) -> str:
    """`path` as a page or message may show it: as given when relative, relative to the current
    folder when inside it, else its file name alone (never the absolute path of the machine
    that wrote the page, which means nothing to its reader).

    Args:
        path: the path as the user gave it.
    """
    path = Path(path)
    if not path.is_absolute():
        return path.as_posix()
    with suppress(ValueError, OSError):
        return path.relative_to(Path.cwd()).as_posix()
    return path.name


class WriteError(CnnarchError):
    """A file or folder could not be written; `errno` says why (e.g. `errno.ENOSPC`)."""

    def __init__(self, message: str, errno_: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno_


def free_bytes(folder: Path) -> int | None:
    """Free bytes on the file system of `folder` (or of its nearest existing parent)."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def os_error_in(err: BaseException) -> OSError | None:
    """The `OSError` that caused `err`: `err` itself or one in its chain (torch.save raises a
    RuntimeError whose context is the OSError of the failed write)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno is not None:
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def write_error(path: Path, err: OSError) -> WriteError:
    """A `WriteError` for the failed write of `path`: the reason, and the free space when the
    disk is full."""
    reason = (err.strerror or os.strerror(err.errno)) if err.errno else str(err)
    message = f"cannot write {path}: {reason}"
    if err.errno == errno.ENOSPC:
        free = free_bytes(Path(path).parent)
        if free is not None:
            message += f" ({byte_size(free)} free there)"
    return WriteError(message, err.errno)


def ensure_dir(path: Path) -> Path:
    """Create `path` (and parents); a clear error when it exists as a file or cannot be made."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CnnarchError(f"{path} exists and is not a folder; choose another --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CnnarchError(f"cannot create folder {path}: {err.strerror or err}") from None
    return path


def fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable (a no-op on Windows, which cannot open folders)."""
    if sys.platform.startswith("win"):
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_temp(path: Path) -> tuple[int, Path]:
    """A new, empty file next to `path`, opened for writing. Created with mode 0o666 like
    `open()` does, so the umask applies (`tempfile.mkstemp` would force 0o600); when it will
    replace an existing file, it takes that file's mode, as rewriting the file would keep it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            return fd, tmp
        if hasattr(os, "fchmod"):
            with suppress(OSError):  # a file system without modes keeps its default
                os.fchmod(fd, mode)
        return fd, tmp


def write_synced_temp(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """A new temporary file next to `path`, filled by `write` and fsynced; the caller moves it
    into place with `os.replace`. On failure the temporary file is removed, and a failed
    write (full disk, read-only folder, ...) raises `WriteError`."""
    path = Path(path)
    ensure_dir(path.parent)
    try:
        fd, tmp = _new_temp(path)
    except OSError as err:
        raise write_error(path, err) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        cause = os_error_in(err) if isinstance(err, Exception) else None
        if cause is not None:
            raise write_error(path, cause) from None
        raise
    return tmp


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` through a synced temporary file in the same folder."""
    path = Path(path)
    tmp = write_synced_temp(path, lambda handle: handle.write(data))
    try:
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise write_error(path, err) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


# --- folders swapped in whole --------------------------------------------------------------------


def _new_dir(parent: Path, prefix: str) -> Path:
    """A new empty folder in `parent` (mode 0o777 less the umask, as `mkdir` gives)."""
    while True:
        folder = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue


def tree_bytes(folder: Path) -> int:
    """The size of the files under `folder` (0 when it does not exist)."""
    total = 0
    for root, _dirs, names in os.walk(folder):
        for name in names:
            with suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _swap_entries(stage: Path, final: Path) -> None:
    """Move every entry of `stage` into `final`, replacing entries of the same name; on a
    failure, put the replaced ones back. Entries of `final` that `stage` lacks stay."""
    replaced_dir = _new_dir(final, REPLACED_PREFIX)
    set_aside: list[str] = []
    moved_in: list[str] = []
    try:
        for entry in sorted(stage.iterdir()):
            target = final / entry.name
            if target.exists() or target.is_symlink():
                os.rename(target, replaced_dir / entry.name)
                set_aside.append(entry.name)
            os.rename(entry, target)
            moved_in.append(entry.name)
    except BaseException:
        for name in moved_in:
            _remove(final / name)
        for name in set_aside:
            os.rename(replaced_dir / name, final / name)
        shutil.rmtree(replaced_dir, ignore_errors=True)
        raise
    fsync_dir(final)
    shutil.rmtree(replaced_dir, ignore_errors=True)


@contextmanager
def staged_folder(final: Path, what: str = "the output") -> Iterator[Path]:
    """Yield an empty staging folder inside `final`; once the block completes, its entries
    replace those of the same name in `final` (each with one rename, so a reader sees the
    complete old entry or the complete new one). If the block fails, the staging folder is
    removed and `final` keeps what it held, with a `WriteError` saying why for a failed write.

    The staging folder lies inside `final` rather than beside it, so that the renames stay on
    one file system even when `final` is a mount point, and no write is needed in its parent.
    """
    final = ensure_dir(Path(final))
    try:
        stage = _new_dir(final, STAGING_PREFIX)
    except OSError as err:
        raise write_error(final, err) from None
    try:
        yield stage
        _swap_entries(stage, final)
        stage.rmdir()
    except Exception as err:
        written = tree_bytes(stage)
        shutil.rmtree(stage, ignore_errors=True)
        cause = err if isinstance(err, WriteError) else os_error_in(err)
        if cause is None:
            raise
        kept = f"{final} is left as it was"
        if cause.errno == errno.ENOSPC:
            free, held = free_bytes(final), tree_bytes(final)
            previous = f", and the folder it replaces holds {byte_size(held)}" if held else ""
            raise WriteError(
                f"no space left on device: {byte_size(free or 0)} free in {final}, and "
                f"{what} needs more: it had written {byte_size(written)} when the disk "
                f"filled{previous}; {kept}",
                errno.ENOSPC,
            ) from None
        detail = str(cause) if isinstance(cause, WriteError) else str(write_error(final, cause))
        raise WriteError(f"{detail}; {kept}", cause.errno) from None
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


# --- one run per folder ----------------------------------------------------------------------


_HELD_HERE: set[Path] = set()  # lock files this process holds


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


class FolderLock:
    """`folder/cnnarch.lock`, created exclusively and holding the owner's PID, host and start
    time: a second run on the same folder fails at once, naming the holder. The lock creates
    the folder if needed, and removes it again on release if nothing was written there. A lock whose
    process is gone (killed with -9, say) is reported and taken over; a lock held from another
    host cannot be checked and must be removed by hand."""

    def __init__(self, folder: Path, purpose: str = "run") -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.purpose = purpose
        self.held = False
        self.created_folder = False
        self.stale_note: str | None = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        self.created_folder = not self.folder.exists()
        ensure_dir(self.folder)
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "purpose": self.purpose,
        }
        for _attempt in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            except OSError as err:
                raise write_error(self.path, err) from None
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(record, handle)
            self.held = True
            _HELD_HERE.add(self.path.absolute())
            return
        raise CnnarchError(f"{self.folder} is in use: could not take {self.path}")

    def _take_over_if_stale(self) -> None:
        """Remove the lock if its process is gone (noting it); otherwise say who holds it."""
        try:
            holder = json.loads(self.path.read_text("utf-8"))
            pid, host = int(holder["pid"]), str(holder["host"])
        except FileNotFoundError:
            return  # released meanwhile: try again
        except (OSError, ValueError, KeyError, TypeError):
            raise CnnarchError(
                f"{self.path} exists but is unreadable; if no cnnarch run uses {self.folder}, "
                "delete it and try again"
            ) from None
        started = holder.get("started", "?")
        if host != socket.gethostname():
            raise CnnarchError(
                f"{self.folder} is in use by a {holder.get('purpose', 'run')} on host {host} "
                f"(PID {pid}, started {started}); wait for it or choose another --out (if "
                f"that run is gone, delete {self.path})"
            )
        ours = pid == os.getpid()
        if (ours and self.path.absolute() in _HELD_HERE) or (not ours and _pid_alive(pid)):
            raise CnnarchError(
                f"{self.folder} is in use by another {holder.get('purpose', 'run')} (PID "
                f"{pid} on {host}, started {started}); wait for it to end or choose another "
                "--out"
            )
        self.stale_note = (
            f"removed a stale lock in {self.folder}: PID {pid} on {host} (started {started}) "
            "is no longer running"
        )
        self.path.unlink(missing_ok=True)

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            _HELD_HERE.discard(self.path.absolute())
            self.held = False
            if self.created_folder:  # a run that wrote nothing leaves no empty folder behind
                with suppress(OSError):
                    self.folder.rmdir()
