"""Files written whole or not at all, with the mode a plain write would give them."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

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


def write_bytes_atomically(path: Path, payload: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename: a crash leaves old or new, never half.

    The file gets the mode a plain write would (umask applied); the temporary is ``.<name>.<random>.tmp``,
    the name ``remove_stale_temporaries`` looks for.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_path = create_temporary(path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except OSError as error:
        # A full disk names no file, a failed rename names the temporary too: the caller's message should name
        # the file that was not written, and only that one.
        if error.filename in (None, str(tmp_path)):
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        raise
    finally:
        tmp_path.unlink(missing_ok=True)
