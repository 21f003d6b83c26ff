"""The report's output folder holds one report, whole, and only what that report wrote.

A report is written into a fresh temporary folder beside ``--out`` and renamed into place: a
table the runs no longer give never lingers from an earlier report, and a reader sees the old
report or the new one, never a mix. Each report leaves a manifest, :data:`MANIFEST`, listing its
files. An existing ``--out`` is replaced only when it is empty or holds exactly a previous report
(its manifest's files; or, for reports written before manifests, only file names a report
writes); anything else in it is the user's, and the report is refused rather than delete it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from lt_bench import atomic
from lt_bench.errors import UserError

MANIFEST = ".lt-bench-report.json"


def previous_report_files(out_dir: Path, report_names: set[str]) -> list[str]:
    """The files in ``out_dir`` an earlier report wrote ([] when it is missing or empty). Refuses
    a folder holding anything else (a one-line :class:`UserError` naming a foreign entry).
    ``report_names``: file names a report writes, which a folder without a manifest (an earlier
    version's report) may hold."""
    if not out_dir.exists():
        return []
    if not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file, not a folder; pass a folder for the report")
    entries = sorted(entry.name for entry in out_dir.iterdir())
    manifest = out_dir / MANIFEST
    if manifest.is_file():
        allowed = set(_manifest_files(manifest)) | {MANIFEST}
    else:
        legacy = "report.md" in entries  # a report written before manifests: known names only
        allowed = ({"runs.csv", "report.md"} | report_names) if legacy else set()
    foreign = [name for name in entries if name not in allowed or not (out_dir / name).is_file()]
    if foreign:
        shown = ", ".join(foreign[:3]) + (
            f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        )
        raise UserError(
            f"--out {out_dir} holds files no report wrote ({shown}); "
            "move them away or pass an empty or new folder"
        )
    return entries


def _manifest_files(path: Path) -> list[str]:
    try:
        files = json.loads(path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(
            f"{path} is damaged ({type(err).__name__}); delete that report folder or pass another --out"
        ) from err
    return [name for name in files if isinstance(name, str)]


def fresh_folder(out_dir: Path) -> Path:
    """An empty temporary folder beside ``out_dir`` (same file system, so a rename moves it)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder = Path(
            tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".report", dir=out_dir.parent)
        )
    except OSError as err:
        raise UserError(
            f"cannot write a report beside {out_dir} ({err.strerror}); pass a writable --out"
        ) from err
    folder.chmod(atomic.folder_mode())  # mkdtemp's folder is private; a report folder is not
    return folder


def swap_in(folder: Path, out_dir: Path, written: list[str], report_names: set[str]) -> None:
    """Write ``folder``'s manifest and put ``folder`` at ``out_dir``, replacing an empty folder or
    a previous report (checked again now, so nothing that arrived meanwhile is deleted)."""
    atomic.write_json(folder / MANIFEST, {"written_by": "lt-bench report", "files": written})
    previous = previous_report_files(out_dir, report_names)
    if not previous:
        os.rename(folder, out_dir)  # onto a missing or empty folder: one atomic rename
    elif _exchange(folder, out_dir):
        shutil.rmtree(folder)  # it now holds the previous report
    else:  # no atomic exchange here: the previous report is moved aside for a moment
        aside = Path(
            tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent)
        )
        os.rename(out_dir, aside / out_dir.name)
        os.rename(folder, out_dir)
        shutil.rmtree(aside)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    system or the file system cannot."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_cwd, exchange = -100, 2  # AT_FDCWD, RENAME_EXCHANGE
    return renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), exchange) == 0
