"""Safe file I/O: atomic files, output folders that hold only what cnnarch wrote, report folders
swapped in whole, one run per folder, and files read field by field.

A reader sees the old file or the new one, never a half-written one. Written files get the
permissions a plain `open()` would give them (the umask's, or those of the file replaced). A
write that fails (a full disk, a read-only folder) ends in a `WriteError` naming the file, the
reason and, for a full disk, the free space.

An output folder (a run, an experiment, a report) lists what cnnarch wrote there in its
`.cnnarch-manifest.json`; a folder holding anything else is refused before anything is
written (`check_output_folder`), so a user's own files are never overwritten or deleted.
Files cnnarch reads are opened only when they are regular files (`open_regular`: a FIFO would
block the reader forever) and checked field by field (`Fields`); every string taken from a file
is shown through `printable`, so that it cannot move the terminal's cursor or change its colors.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import re
import secrets
import shutil
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

from cnnarch.errors import CnnarchError
from cnnarch.units import byte_size

LOCK_NAME = "cnnarch.lock"
MANIFEST_NAME = ".cnnarch-manifest.json"
MANIFEST_FORMAT = "cnnarch-manifest-1"
STAGING_PREFIX = ".cnnarch-staging-"
REPLACED_PREFIX = ".cnnarch-replaced-"
# A temporary file of `_new_temp`: ".NAME.<8 hex digits>.tmp" beside the file NAME it replaces.
_TEMP_NAME = re.compile(r"\.(.+)\.[0-9a-f]{8}\.tmp")


def printable(text: str) -> str:
    """`text` with every character a terminal would act on (escape codes, newlines, other
    control characters) written as a Python escape: what a file holds is shown, never obeyed.

    Args:
        text: a string taken from a file or a folder listing.
    """
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


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


_FILE_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _not_regular(path: Path, mode: int, what: str) -> CnnarchError:
    kind = next((f"{name}, not" for test, name in _FILE_KINDS if test(mode)), "not")
    return CnnarchError(f"{path} is {kind} a regular file; cnnarch reads a {what} only from one")


def open_regular(path: Path, what: str = "file") -> BinaryIO:
    """`path` opened for reading in binary mode, if it is a regular file (or a link to one).

    The check is made on the opened file (`fstat`), and the open itself does not wait: a named
    pipe, a device or a folder with a file's name is refused instead of blocking the reader or
    reading without end.

    Args:
        path: the file to read.
        what: what the file should be, for the message ("checkpoint", "image", ...).
    """
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError:
        raise _not_regular(path, stat.S_IFDIR, what) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode, what)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def is_regular_file(path: Path) -> bool:
    """Whether `path` is a regular file or a link to one (not a folder, pipe or device)."""
    try:
        return stat.S_ISREG(Path(path).stat().st_mode)
    except OSError:
        return False


class FormatError(CnnarchError):
    """A file that was read but does not hold what its format says; the message names the file
    and the field."""


def _shown_value(value: object) -> str:
    """A short, printable description of a value found in a file."""
    if hasattr(value, "dtype") and hasattr(value, "shape"):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"  # type: ignore[attr-defined]
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{printable(text)} ({type(value).__name__})"


class Fields:
    """The fields of one file, checked as they are read. Each check returns the value it was
    given, or raises `FormatError`: "SOURCE: FIELD must be EXPECTED, got VALUE".

    Args:
        source: the file, as messages name it.
    """

    def __init__(self, source: Path | str) -> None:
        self.source = str(source)

    def error(self, field: str, text: str) -> FormatError:
        """The error "SOURCE: FIELD TEXT" (either part left out when empty)."""
        where = ": ".join(part for part in (self.source, field) if part)
        return FormatError(f"{where} {text}" if where else text)

    def fail(self, field: str, expected: str, value: object) -> NoReturn:
        """Raise the error for `field`, which should be `expected`."""
        raise self.error(field, f"must be {expected}, got {_shown_value(value)}")

    def mapping(self, value: object, field: str, keys: Iterable[str] = ()) -> dict[str, Any]:
        """A dict (a JSON object) holding at least `keys`."""
        if not isinstance(value, dict):
            self.fail(field, "a mapping", value)
        missing = [key for key in keys if key not in value]
        if missing:
            raise self.error(field, f"has no field {missing[0]!r}")
        return value

    def sequence(self, value: object, field: str, min_length: int = 0) -> Sequence[Any]:
        """A list or tuple of at least `min_length` items."""
        if not isinstance(value, (list, tuple)):
            self.fail(field, "a list", value)
        if len(value) < min_length:
            self.fail(field, f"a list of at least {min_length} items", value)
        return value

    def integer(
        self, value: object, field: str, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        """An int (not a bool) within [minimum, maximum]."""
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(field, "an integer", value)
        if minimum is not None and value < minimum:
            self.fail(field, f"an integer >= {minimum}", value)
        if maximum is not None and value > maximum:
            self.fail(field, f"an integer <= {maximum}", value)
        return value

    def number(self, value: object, field: str, minimum: float | None = None) -> float:
        """A finite int or float (not a bool), at least `minimum`."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(field, "a number", value)
        if value != value or value in (float("inf"), float("-inf")):
            self.fail(field, "a finite number", value)
        if minimum is not None and value < minimum:
            self.fail(field, f"a number >= {minimum:g}", value)
        return float(value)

    def text(self, value: object, field: str, choices: Sequence[str] = ()) -> str:
        """A string, one of `choices` when given."""
        if not isinstance(value, str):
            self.fail(field, "a string", value)
        if choices and value not in choices:
            self.fail(field, f"one of {', '.join(map(repr, choices))}", value)
        return value

    def boolean(self, value: object, field: str) -> bool:
        if not isinstance(value, bool):
            self.fail(field, "true or false", value)
        return value


def read_json(path: Path, what: str = "file") -> object:
    """The JSON value in the regular file `path`; a `FormatError` naming the file when it is not
    JSON, a `CnnarchError` when it cannot be read.

    Args:
        path: the file.
        what: what the file should be, for the messages.
    """
    try:
        with open_regular(path, what) as handle:
            text = handle.read().decode("utf-8")
    except OSError as err:
        raise CnnarchError(f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise FormatError(f"{path} is not a {what}: not UTF-8 text") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise FormatError(f"{path} is not a {what}: not JSON ({printable(reason)})") from None


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
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Fill `path` with what `write` writes to the handle it is given, through a synced
    temporary file in the same folder (`torch.save` can write straight into it).

    Args:
        path: the file to write.
        write: called with the open temporary file.
    """
    path = Path(path)
    tmp = write_synced_temp(path, write)
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


# --- output folders: only what cnnarch wrote ------------------------------------------------------


def read_manifest(folder: Path) -> tuple[str, ...]:
    """What cnnarch wrote in `folder`, as its manifest lists it (empty without one): file paths
    relative to the folder, "name/" for a sub-folder that is an output folder of its own,
    with its own manifest (a run of an experiment), and patterns with "*" for files whose
    names their writer chooses (TensorBoard's event files).

    Args:
        folder: an output folder.
    """
    path = Path(folder) / MANIFEST_NAME
    if not path.exists() and not path.is_symlink():
        return ()
    fields = Fields(path)
    data = fields.mapping(read_json(path, "cnnarch manifest"), "", ("format", "written"))
    fields.text(data["format"], "format", (MANIFEST_FORMAT,))
    written = fields.sequence(data["written"], "written")
    for i, entry in enumerate(written):
        name = fields.text(entry, f"written[{i}]")
        parts = name.removesuffix("/").split("/")
        if name.startswith("/") or any(part in ("", ".", "..") for part in parts):
            fields.fail(f"written[{i}]", "a path inside the folder", name)
    return tuple(written)


def _always_ours(name: str) -> bool:
    """Top-level names of an output folder that only cnnarch makes."""
    return name in (MANIFEST_NAME, LOCK_NAME) or name.startswith((STAGING_PREFIX, REPLACED_PREFIX))


def first_foreign(folder: Path, written: Iterable[str]) -> str | None:
    """The first path under `folder` (in sorted order, relative) that `written` does not list,
    nor cnnarch's own lock, manifest, staging folders and temporary files; None if none. A
    sub-folder listed as "name/" is checked against its own manifest.

    Args:
        folder: the folder to look through.
        written: what cnnarch wrote there (`read_manifest`).
    """
    owned = set(written)
    patterns = [entry for entry in owned if "*" in entry]

    def walk(directory: Path, prefix: str) -> str | None:
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            rel = prefix + entry.name
            if (not prefix and _always_ours(entry.name)) or rel in owned:
                continue
            if any(fnmatch.fnmatchcase(rel, pattern) for pattern in patterns):
                continue
            temp = _TEMP_NAME.fullmatch(entry.name)
            if temp and (prefix + temp.group(1) in owned or _always_ours(temp.group(1))):
                continue  # left by a write that was killed before its rename
            is_dir = entry.is_dir(follow_symlinks=False)
            if is_dir and f"{rel}/" in owned:  # an output folder of its own
                inner = Path(entry.path)
                found = first_foreign(inner, read_manifest(inner))
                found = None if found is None else f"{rel}/{found}"
            elif is_dir and any(o.startswith(f"{rel}/") for o in owned):
                found = walk(Path(entry.path), f"{rel}/")
            elif is_dir:  # a folder of the user's: name its first file
                inside = files_under(Path(entry.path))
                return f"{rel}/{inside[0]}" if inside else f"{rel}/"
            else:
                return rel
            if found is not None:
                return found
        return None

    return walk(Path(folder), "")


def check_output_folder(folder: Path) -> tuple[str, ...]:
    """What cnnarch wrote in `folder` before (`read_manifest`), after checking that the folder
    holds nothing else: a `CnnarchError` names the first foreign file. A folder that does not
    exist yet passes.

    Args:
        folder: the output folder a command is about to write into.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return ()
    written = read_manifest(folder)
    foreign = first_foreign(folder, written)
    if foreign is not None:
        shown = printable(foreign)
        raise CnnarchError(
            f"{folder} holds {shown}, which cnnarch did not write; cnnarch writes only into a "
            f"new or empty folder, or one that lists what it wrote there in {MANIFEST_NAME}: "
            f"choose another --out, or move {shown} away"
        )
    return written


def record_output(folder: Path, entries: Iterable[str]) -> None:
    """Add `entries` (file paths relative to `folder`, "name/" for a sub-folder with its own
    manifest) to the manifest of `folder` before they are written, so that a write killed
    halfway leaves only listed files; entries whose files are gone are dropped.

    Args:
        folder: the output folder.
        entries: what is about to be written there.
    """
    folder = Path(folder)
    written = read_manifest(folder)
    kept = {e for e in written if "*" in e or os.path.lexists(folder / e.removesuffix("/"))}
    updated = sorted(kept | set(entries))
    if updated != sorted(written):
        document = {"format": MANIFEST_FORMAT, "written": updated}
        atomic_write_text(folder / MANIFEST_NAME, json.dumps(document, indent=1) + "\n")


def written_files(folder: Path | str) -> list[str]:
    """The files under `folder` that its manifest lists (and those its listed sub-folders'
    manifests list), relative to it, sorted: what cnnarch wrote there.

    Args:
        folder: an output folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    listed = read_manifest(folder)
    patterns = [entry for entry in listed if "*" in entry]
    found = []
    for name in files_under(folder):
        if name in listed or any(fnmatch.fnmatchcase(name, p) for p in patterns):
            found.append(name)
    for entry in listed:
        if entry.endswith("/"):
            found += [entry + name for name in written_files(folder / entry)]
    return sorted(found)


def files_under(folder: Path) -> list[str]:
    """The paths of every file under `folder`, relative to it, sorted."""
    folder = Path(folder)
    return sorted(
        (Path(root) / name).relative_to(folder).as_posix()
        for root, _dirs, names in os.walk(folder)
        for name in names
    )


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

    `final` must hold nothing but what cnnarch wrote there (`check_output_folder`), checked
    before the block and again before the swap; the entries swapped in are added to its
    manifest. So a user's own files, even in a folder of the same name (`figures/`), are never
    replaced: the folder is refused instead.

    The staging folder lies inside `final` rather than beside it, so that the renames stay on
    one file system even when `final` is a mount point, and no write is needed in its parent.

    Args:
        final: the output folder.
        what: what is written, for the messages ("the report").
    """
    final = Path(final)
    check_output_folder(final)
    final = ensure_dir(final)
    try:
        stage = _new_dir(final, STAGING_PREFIX)
    except OSError as err:
        raise write_error(final, err) from None
    try:
        yield stage
        check_output_folder(final)  # nothing foreign arrived while the block ran
        record_output(final, files_under(stage))
        _swap_entries(stage, final)
        stage.rmdir()
        record_output(final, ())  # forget the files the swap replaced
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
    the folder if needed, and removes it again on release if nothing was written there. A lock
    whose process is gone (killed with -9, say) is reported and taken over; a lock held from
    another host cannot be checked and must be removed by hand.

    The lock file appears whole or not at all (written beside it, then hard-linked into place):
    a full disk when a run starts leaves no empty lock that would block every later run.

    Args:
        folder: the folder to hold.
        purpose: what holds it, as messages name it ("training run").
    """

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
        try:
            for _attempt in range(2):
                if self._create():
                    self.held = True
                    _HELD_HERE.add(self.path.absolute())
                    return
                self._take_over_if_stale()
            raise CnnarchError(f"{self.folder} is in use: could not take {self.path}")
        except BaseException:
            self._remove_folder_if_created()
            raise

    def _record(self) -> bytes:
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "purpose": self.purpose,
        }
        return json.dumps(record).encode()

    def _create(self) -> bool:
        """Put the lock file in place with its whole record; False if one exists already."""
        record = self._record()
        tmp = write_synced_temp(self.path, lambda handle: handle.write(record))
        try:
            os.link(tmp, self.path)  # fails if the lock exists, like O_EXCL
        except FileExistsError:
            return False
        except OSError as err:
            if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise write_error(self.path, err) from None
            return self._create_in_place(record)  # a file system without hard links
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(self.folder)
        return True

    def _create_in_place(self, record: bytes) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        except OSError as err:
            raise write_error(self.path, err) from None
        try:
            os.write(fd, record)
            os.fsync(fd)
        except OSError as err:
            self.path.unlink(missing_ok=True)
            raise write_error(self.path, err) from None
        finally:
            os.close(fd)
        return True

    def _holder(self) -> dict[str, Any] | None:
        """The lock's record, checked field by field; None once it is gone, or when it is an
        empty file (left by a cnnarch that created the lock before writing it)."""
        try:
            if self.path.stat().st_size == 0 and is_regular_file(self.path):
                return None
        except FileNotFoundError:
            return {}
        fields = Fields(self.path)
        try:
            data = read_json(self.path, "cnnarch lock file")
        except CnnarchError as err:
            if not self.path.exists():
                return {}
            raise CnnarchError(
                f"{err}; if no cnnarch run uses {self.folder}, delete {self.path} and try again"
            ) from None
        holder = fields.mapping(data, "", ("pid", "host"))
        fields.integer(holder["pid"], "pid", minimum=1)
        for key in ("host", "started", "purpose"):
            if key in holder:
                holder[key] = printable(fields.text(holder[key], key))
        return holder

    def _take_over_if_stale(self) -> None:
        """Remove the lock if its process is gone (noting it); otherwise say who holds it."""
        holder = self._holder()
        if holder == {}:
            return  # released meanwhile: try again
        if holder is None:
            self.stale_note = f"removed an empty lock file in {self.folder}, left by a failed start"
            self.path.unlink(missing_ok=True)
            return
        pid, host = holder["pid"], holder["host"]
        started, purpose = holder.get("started", "?"), holder.get("purpose", "run")
        if host != printable(socket.gethostname()):
            raise CnnarchError(
                f"{self.folder} is in use by a {purpose} on host {host} "
                f"(PID {pid}, started {started}); wait for it or choose another --out (if "
                f"that run is gone, delete {self.path})"
            )
        ours = pid == os.getpid()
        if (ours and self.path.absolute() in _HELD_HERE) or (not ours and _pid_alive(pid)):
            raise CnnarchError(
                f"{self.folder} is in use by another {purpose} (PID {pid} on {host}, started "
                f"{started}); wait for it to end or choose another --out"
            )
        self.stale_note = (
            f"removed a stale lock in {self.folder}: PID {pid} on {host} (started {started}) "
            "is no longer running"
        )
        self.path.unlink(missing_ok=True)

    def _remove_folder_if_created(self) -> None:
        if self.created_folder:  # a run that wrote nothing leaves no empty folder behind
            with suppress(OSError):
                self.folder.rmdir()

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            _HELD_HERE.discard(self.path.absolute())
            self.held = False
            self._remove_folder_if_created()
