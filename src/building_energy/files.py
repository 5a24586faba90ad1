"""Files written whole or not at all, with the mode a plain write would give them."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

# ``write_bytes_atomically``'s temporaries are ``.<name>.<random>.tmp``: what a clean-up may look for.
TEMPORARY_SUFFIX = ".tmp"


def create_temporary(directory: Path, prefix: str, suffix: str = "") -> tuple[int, Path]:
    """Like ``tempfile.mkstemp`` (a new file, open for writing), but with the mode a plain ``open(path, "w")`` gets.

    mkstemp creates 0600 whatever the umask, and the rename keeps that mode: a model saved by one account
    would be unreadable to an API or MLflow server running as another. Asking the kernel for 0666 lets the
    umask (and any default ACL of ``directory``) apply exactly as to a plain write, without reading the
    process-wide umask, which cannot be read without briefly changing it under other threads' feet.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        candidate = Path(directory) / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            return os.open(candidate, flags, 0o666), candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"{directory}: no free temporary name starting with {prefix!r}")


def check_writable(path: Path) -> None:
    """Refuse a ``path`` this process could not write, before any work towards it.

    A read-only file: an atomic write renames over it whatever its mode, which would silently undo the
    protection its owner gave it. A folder (or, for folders still to be created, the nearest existing one)
    that cannot be written or entered. Only the mode bits and ACLs are judged; a full disk shows at the write.
    """
    path = Path(path)
    # By its mode too: root's os.access allows any write, but a file nobody may write was made read-only on
    # purpose, and replacing it because the job runs as root would undo that.
    if path.is_file() and (not os.access(path, os.W_OK) or not stat.S_IMODE(path.stat().st_mode) & 0o222):
        raise PermissionError(errno.EACCES, "the file is read-only; not replaced", str(path))
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():  # a file where a folder should be: named as creating the folder would name it
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path.parent))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))


# Errors about where a file goes that name no file (a full disk, a quota, a size limit, a read-only or forbidden
# folder): the message should name the file that was not written, as it should for an error naming the
# temporary.
_DESTINATION_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM})


@contextlib.contextmanager
def naming_destination(path: Path) -> Iterator[None]:
    """Around the steps that write ``path`` (or its temporary): their errors about the destination name
    ``path``. Nothing else belongs inside, e.g. a download's reads: a TLS error's errno is EPERM's."""
    try:
        yield
    except OSError as error:
        named = Path(str(error.filename)) if error.filename is not None else None
        names_temporary = named is not None and named.parent == path.parent and named.name.startswith(f".{path.name}.")
        if names_temporary or (error.filename is None and error.errno in _DESTINATION_ERRNOS):
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        raise


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """A new file to fill; on leaving the block it is fsynced and renamed over ``path``, so a crash leaves the
    old file or the new one, never half. On an error nothing is renamed and the temporary is removed.

    The block's own errors pass as they are: its writes belong in ``naming_destination(path)``. The file gets
    the mode a plain write would (umask applied); the temporary is ``.<name>.<random>.tmp``, the name
    ``remove_stale_temporaries`` looks for.
    """
    path = Path(path)
    check_writable(path)
    with naming_destination(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_path = create_temporary(path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            with naming_destination(path):
                handle.flush()
                os.fsync(handle.fileno())
        with naming_destination(path):
            os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes_atomically(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` whole or not at all (``replacing``)."""
    with replacing(path) as handle, naming_destination(path):
        handle.write(payload)
