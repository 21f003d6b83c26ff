"""Atomic file writes: write a temporary file beside the target, then rename it into place.

A reader (a sweep, a report) therefore never sees a half-written file. The file ends up with the
mode any ordinary write would give it, 0666 less the umask (0644 under umask 022), not the 0600 of
the private temporary file that ``tempfile.mkstemp`` makes.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read fresh on every call (a test or a caller may change it).

    Linux shows it in ``/proc/self/status``, which reads it without changing it. Elsewhere the only
    way is ``os.umask``, which sets it: that is done under a lock, and the value held for that
    instant is 0o077, so a file another thread creates meanwhile is at worst more private, never
    more open."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _UMASK_LOCK:
        umask = os.umask(0o077)
        os.umask(umask)
    return umask


def file_mode() -> int:
    """The mode a newly written file gets: 0666 less the umask."""
    return 0o666 & ~current_umask()


def folder_mode() -> int:
    """The mode a newly made folder gets: 0777 less the umask."""
    return 0o777 & ~current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    The temporary file is made with the final mode (0666 less the umask) before anything is
    written, so the renamed file has it too; a writer that replaces the temporary file (e.g. one
    that unlinks and recreates it) gets the umask's mode by itself."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp)
    try:
        os.fchmod(fd, file_mode())  # mkstemp's file is 0600 whatever the umask
    finally:
        os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
