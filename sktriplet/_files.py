"""Files that sktriplet writes: replaced whole or not at all, checked before work.

A model file or a CSV of embeddings is written to a temporary file beside its
target, flushed to disk and then renamed over the target (:func:`replacing`),
as SQLite and Git write theirs: a save that fails or is interrupted, even by
Ctrl-C, leaves the old file as it was and no stray file behind.  Writes go
through the target's real path: a symbolic link to a file keeps pointing to
it (the file it names is the one replaced), and a target that is not a regular
file (a device such as ``/dev/null``, a pipe or ``/dev/stdout``) is written
directly, never replaced.  This module never imports Keras.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from typing import IO

__all__ = ["check_output_path", "replacing", "writing"]


def check_output_path(path: str | os.PathLike) -> None:
    """Raise the ``OSError`` that writing ``path`` would raise, before any work.

    A folder where the file goes, a folder that does not exist, or one this
    process may not write into (for a symbolic link, the folder of the file it
    names); a device or pipe that this process may not write.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", path)
    if os.path.exists(path) and not os.path.isfile(path):  # written directly
        if not os.access(path, os.W_OK):
            raise PermissionError(errno.EACCES, "cannot write", path)
        return
    folder = os.path.dirname(os.path.realpath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, "no such folder", folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "cannot write into the folder", folder)


@contextmanager
def replacing(path: str | os.PathLike, mode: str = "wb", **open_args) -> Iterator[IO]:
    """Open a new file that replaces ``path`` only once the block completes.

    The file is created beside ``path`` (so that the rename stays on one file
    system), written by the block, flushed and synced, then renamed over
    ``path`` with ``os.replace``, which is atomic.  When the block raises
    (``KeyboardInterrupt`` included) the new file is removed and ``path`` is
    untouched.  A replaced file keeps its permission bits.  A target that is a
    symbolic link replaces the file the link names; one that exists but is no
    regular file (a device, a pipe) is opened and written directly.

    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with replacing(target, "w") as f:
    ...     _ = f.write("kept")
    >>> try:
    ...     with replacing(target, "w") as f:
    ...         _ = f.write("half")
    ...         raise OSError("disk full")
    ... except OSError:
    ...     pass
    >>> open(target).read(), os.listdir(os.path.dirname(target))
    ('kept', ['notes.txt'])
    """
    path = os.fspath(path)
    check_output_path(path)
    if os.path.exists(path) and not os.path.isfile(path):
        # A device, a pipe or a socket (a folder was refused above): renaming
        # a file over it would take it away from every program on the machine.
        with open(path, mode, **open_args) as f:
            yield f
        return
    path = os.path.realpath(path)  # a link stays, and the file it names is new
    folder = os.path.dirname(path)
    temporary = os.path.join(
        folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp"
    )
    # Created with the user's umask applied, as a plain open() would.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, mode, **open_args) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(path):
            shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_folder(folder)


def writing(target, mode: str = "wb", **open_args):
    """A context that writes ``target``: a path through :func:`replacing`, or
    an open file object (``sys.stdout.buffer``, say) as it is, left open."""
    if hasattr(target, "write"):
        return nullcontext(target)
    return replacing(target, mode, **open_args)


def _sync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be
    opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
