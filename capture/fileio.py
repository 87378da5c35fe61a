"""File utilities every writer in the kit uses: whole files and whole folders, never half of one.

A reader (or a crash) sees either the old file/folder or the complete new one: data goes to a
hidden temporary beside the target, is fsynced, then renamed over it. Hidden temporaries left by a
kill (``.NAME.*.tmp``) are skipped by the readers (``capture.takes.read_takes``) and cleaned up by
the next write of the same folder.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()  # read once at import: os.umask can only be read by setting it


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; a take or a sketch is an ordinary file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


# ----------------------------------------------------------------------------- whole folders

_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system or kernel cannot do it
        return False
    raise OSError(err, os.strerror(err), str(a))


def stale_temporaries(folder: Path) -> list[Path]:
    """Hidden temporaries a killed :func:`write_folder` of ``folder`` left beside it."""
    return sorted(folder.parent.glob(f".{folder.name}.*.tmp"))


def _check_relative(name: str) -> tuple[str, ...]:
    parts = tuple(name.split("/"))
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        raise ValueError(f"{name!r}: a relative file name inside the folder (no '', '.', '..' or hidden parts)")
    return parts


@contextlib.contextmanager
def building_folder(folder: str | Path) -> Iterator[Path]:
    """Build a folder's new content in a hidden sibling, then put it in ``folder``'s place at once.

    ``with building_folder(out) as tmp:`` write everything into ``tmp``; on a normal exit the
    files are fsynced and ``tmp`` takes the folder's place in one rename (an atomic exchange when
    the folder exists; the old content is then removed); on any exception (a full disk, Ctrl-C)
    ``tmp`` is removed and ``folder`` is as it was. A kill leaves a ``.NAME.*.tmp`` sibling that
    the next build of the same folder removes.
    """
    folder = Path(folder)
    if folder.is_symlink() and folder.is_dir():
        folder = folder.resolve()  # replace the folder it names, not the link
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder")
    for stale in stale_temporaries(folder):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        os.chmod(tmp, 0o777 & ~_UMASK)
        yield tmp
        for d, _dirs, names in os.walk(tmp):
            for name in names:
                path = Path(d) / name
                if not path.is_symlink():
                    fd = os.open(path, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            _fsync_dir(Path(d))
        if folder.is_dir() and _exchange(tmp, folder):
            shutil.rmtree(tmp)  # now holds the old folder
        elif folder.is_dir():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
            os.rmdir(old)
            os.rename(folder, old)
            os.rename(tmp, folder)
            shutil.rmtree(old)
        else:
            os.rename(tmp, folder)
        _fsync_dir(folder.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_folder(folder: str | Path, files: dict[str, bytes], *, carry: Iterable[str] = ()) -> None:
    """Replace ``folder`` by a folder holding exactly ``files`` (relative name -> content), as a whole.

    Names may hold sub-folders (``src/tflm/x.cc``). ``carry``: relative names of files already in
    ``folder`` to keep in the new one (hard-linked, else copied), e.g. a user's own files beside
    a generated sketch. The files are written into a hidden sibling and fsynced; then the sibling
    takes the folder's place in one rename (see :func:`building_folder`), so a kill or a full disk
    at any moment leaves the old folder or the new one, never a mix.
    """
    folder = Path(folder)
    checked = {name: _check_relative(name) for name in files}
    with building_folder(folder) as tmp:
        for name in carry:
            if name in files:
                continue
            src, dst = folder / name, tmp / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_symlink():
                os.symlink(os.readlink(src), dst)
                continue
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
        for name, data in files.items():
            path = tmp.joinpath(*checked[name])
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, 0o666 & ~_UMASK)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks (archives and source trees are checked against pinned digests)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
