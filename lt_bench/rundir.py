"""A run's on-disk format, written atomically and read in one place (no torch here).

A run directory holds::

    config.yaml        the resolved config                 split.json       the long-tailed split
    metrics.jsonl      one JSON line per epoch             final.json       status, metrics, facts
    checkpoint.pt      the last epoch's full state         best.pt          the best validation epoch
    per_class.csv      per-class accuracy and statistics   separability.json
    features.npz       test features, logits, classifier   error.log        a failed run's traceback
    .lock              held by the process training the run (an OS file lock)

``final.json["status"]`` is ``running``, ``done`` or ``failed``; :meth:`RunDir.status` maps a folder
to one of :data:`STATUSES`. Every write goes through :mod:`lt_bench.atomic` (temporary file, then
rename), so a reader never sees half a file; every read names the damaged file in a one-line
:class:`UserError` instead of a traceback. Engine, stages, trackers, study and report read and
write runs only through this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import traceback
from collections.abc import Iterator
from pathlib import Path

from lt_bench import atomic
from lt_bench.errors import UserError

CONFIG = "config.yaml"
SPLIT = "split.json"
METRICS = "metrics.jsonl"
FINAL = "final.json"
CHECKPOINT = "checkpoint.pt"
PREVIOUS_CHECKPOINT = "checkpoint.prev.pt"  # kept while a run trains: a damaged checkpoint falls back to it
BEST = "best.pt"
PER_CLASS = "per_class.csv"
SEPARABILITY = "separability.json"
FEATURES = "features.npz"
ERROR_LOG = "error.log"
LOCK = ".lock"

# What a folder can be: finished, failed (its error kept), started but not finished (running, or
# killed: resumable), or not started.
STATUSES = ("done", "failed", "incomplete", "pending")


class RunLocked(UserError):
    """Another process holds the run's lock: it is being trained elsewhere."""


def check_writable(folder: str | os.PathLike) -> None:
    """Refuse an output folder that cannot be created or written, before any work is done."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(
            f"cannot write runs under {folder}: {existing} is not a writable folder; set out_dir=... to one"
        )


def run_path(cfg) -> Path:
    """Where a config's run lives: ``<out_dir>/<name>``, the name defaulting to
    ``<data>_<readable label>_<run id>`` (:func:`lt_bench.config.folder_label`), or the folder of
    ``out_dir`` that already ends in ``_<run id>``: the id alone says which run it is, so a run
    made before (under the older ``<data>_<method>_<run id>``, or under another label) is found,
    never trained again."""
    from lt_bench.config import folder_label, run_id

    if cfg.name:
        return Path(cfg.out_dir) / cfg.name
    rid = run_id(cfg)
    existing = existing_run_folder(cfg.out_dir, rid)
    return existing or Path(cfg.out_dir) / f"{cfg.data.name}_{folder_label(cfg)}_{rid}"


def source_run(config_file: str | os.PathLike, cfg) -> Path | None:
    """The run folder ``config_file`` was saved in (``<run>/config.yaml``), when ``cfg`` (that file
    plus any overrides) still computes the same thing and writes under the same ``out_dir``: then
    ``lt-bench train <run>/config.yaml`` is that run. (Its config.yaml holds the method's and
    loss's defaults written out, so it would hash to another run id than the config it was made
    from.) None for any other file, a changed config, or a config that sets ``name``."""
    path = Path(config_file)
    if cfg.name or path.name != CONFIG or not (path.parent / FINAL).exists():
        return None
    run = RunDir(path.parent)
    if Path(cfg.out_dir).resolve() != run.path.parent.resolve():
        return None
    try:
        return run.path if not run.config_differences(cfg) else None
    except UserError:  # a damaged folder is not this run
        return None


def existing_run_folder(out_dir: str | os.PathLike, rid: str) -> Path | None:
    """The folder of ``out_dir`` whose name ends in ``_<rid>`` (the first by name if several);
    None when there is none."""
    try:
        with os.scandir(out_dir) as entries:
            names = sorted(e.name for e in entries if e.name.endswith(f"_{rid}") and e.is_dir())
    except OSError:  # no runs folder yet
        return None
    return Path(out_dir) / names[0] if names else None


def child_path(parent: str | os.PathLike, stage: str) -> Path:
    """Where a second stage's child run of ``parent`` goes: beside it, ``<parent>__<stage>``."""
    parent = Path(parent)
    return parent.parent / f"{parent.name}__{stage}"


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(
            f"{path} is damaged ({type(err).__name__}); delete the run folder and run it again"
        ) from err
    if not isinstance(value, dict):
        raise UserError(f"{path} is damaged (not a JSON object); delete the run folder and run it again")
    return value


class RunDir:
    """One run's folder: ``RunDir(path)``; every file of a run is read and written through it."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def name(self) -> str:
        return self.path.name

    # ------------------------------------------------------------------ the lock

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's lock for a block: an OS file lock on ``<run>/.lock`` (``flock``), which the
        kernel releases when the process dies, however it dies. Raises :class:`RunLocked` at once
        if another process holds it, so one run is never trained twice at the same time."""
        import fcntl  # POSIX; lt-bench runs on Linux and macOS

        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            raise RunLocked(
                f"{self.path} is being trained by another process (its lock is held); "
                "wait for it to finish, or stop it and rerun"
            ) from err
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def is_locked(self) -> bool:
        """Whether another process holds the run's lock right now (it is training)."""
        if not (self.path / LOCK).exists():
            return False
        try:
            with self.lock():
                return False
        except RunLocked:
            return True

    # ------------------------------------------------------------------ status and final.json

    def final(self) -> dict:
        """``final.json`` as a dict; ``{}`` when the run has none yet."""
        path = self.path / FINAL
        return _read_json(path) if path.exists() else {}

    def status(self) -> str:
        """One of :data:`STATUSES`. A damaged ``final.json`` counts as incomplete (it can resume)."""
        if not (self.path / FINAL).exists():
            return "incomplete" if self.path.exists() else "pending"
        try:
            status = self.final().get("status")
        except UserError:
            return "incomplete"
        return status if status in ("done", "failed") else "incomplete"

    def is_done(self) -> bool:
        return self.status() == "done"

    def error(self) -> str:
        """A failed run's one-line error ("" when none was recorded)."""
        try:
            return str(self.final().get("error") or "")
        except UserError as err:
            return str(err)

    def write_final(self, final: dict) -> None:
        atomic.write_json(self.path / FINAL, final)

    def update_final(self, **fields) -> dict:
        """Merge ``fields`` into ``final.json`` and write it back; returns the new record."""
        final = {**self.final(), **fields}
        self.write_final(final)
        return final

    def mark_running(self, run_id: str, **fields) -> None:
        """The run (re)starts: a failed attempt's ``error.log`` goes, the status is ``running``."""
        (self.path / ERROR_LOG).unlink(missing_ok=True)
        self.write_final({"status": "running", "run_id": run_id, **fields})

    def mark_failed(self, error: str, run_id: str | None, with_traceback: bool = True) -> None:
        """Keep a failure's one-line error in ``final.json`` and, when asked, the current
        exception's traceback in ``error.log``."""
        self.path.mkdir(parents=True, exist_ok=True)
        if with_traceback:
            atomic.write_text(self.path / ERROR_LOG, traceback.format_exc())
        self.write_final({"status": "failed", "error": error, "run_id": run_id})

    # ------------------------------------------------------------------ config and split

    @property
    def has_config(self) -> bool:
        return (self.path / CONFIG).is_file()

    def config(self):
        """The saved config merged with today's schema (keys added later get their defaults)."""
        from lt_bench.config import load_config

        return load_config(self.path / CONFIG)

    def raw_config(self) -> dict:
        """The saved config as written, without the schema (for configs of another version)."""
        import yaml

        return yaml.safe_load((self.path / CONFIG).read_text()) or {}

    def write_config(self, cfg) -> None:
        from omegaconf import OmegaConf

        self.path.mkdir(parents=True, exist_ok=True)
        atomic.write_text(self.path / CONFIG, OmegaConf.to_yaml(cfg, resolve=True))

    def split(self) -> dict:
        path = self.path / SPLIT
        return _read_json(path) if path.exists() else {}

    def separability(self) -> dict:
        """``separability.json`` ({} without one): ``summary`` and per-group values."""
        path = self.path / SEPARABILITY
        return _read_json(path) if path.exists() else {}

    def write_split(self, manifest: dict) -> None:
        atomic.write_json(self.path / SPLIT, manifest)

    def copy_split_from(self, other: RunDir) -> None:
        atomic.write_text(self.path / SPLIT, (other.path / SPLIT).read_text())

    def check_split(self, manifest: dict) -> None:
        """Refuse a saved ``split.json`` that is not the split the config draws (edited, or drawn
        by another version): ratio, profile, seed, class counts and the indices' sha256."""
        saved = self.split()
        keys = ("ratio", "profile", "seed", "counts", "sha256")
        diff = [k for k in keys if saved.get(k) != manifest.get(k)]
        if diff:
            shown = "; ".join(f"{k}: {saved.get(k)!r} vs {manifest.get(k)!r}" for k in diff[:2])
            raise UserError(
                f"{self.path / SPLIT} is not the split its config draws ({shown}); "
                "delete the run folder and rerun it"
            )

    def config_differences(self, cfg) -> list[str]:
        """``key: saved -> wanted`` for every key, other than those that do not change results
        (:data:`lt_bench.config.NON_IDENTITY_KEYS`), where the saved config differs from ``cfg``."""
        from lt_bench.config import identity_values

        try:
            saved = identity_values(self.config())
        except UserError:  # a config of another schema version: compare as written
            from omegaconf import OmegaConf

            from lt_bench.config import Config

            saved = identity_values(OmegaConf.merge(OmegaConf.structured(Config), self.raw_config()))
        wanted = identity_values(cfg)
        return [
            f"{k}: {saved.get(k)!r} -> {wanted.get(k)!r}"
            for k in sorted(set(saved) | set(wanted))
            if saved.get(k) != wanted.get(k)
        ]

    def check_same_config(self, cfg, doing: str = "resume") -> None:
        """Refuse to continue a run whose saved config differs from the requested one."""
        diff = self.config_differences(cfg)
        if diff:
            raise UserError(
                f"cannot {doing} {self.path}: its config differs ({'; '.join(diff)}); "
                "rerun with the saved config or choose another run name"
            )

    # ------------------------------------------------------------------ metrics and checkpoints

    def metrics(self) -> list[dict]:
        """The ``metrics.jsonl`` rows ([] when absent); a damaged line is named."""
        path = self.path / METRICS
        if not path.exists():
            return []
        rows = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise UserError(
                    f"{path} line {number} is damaged; delete the run folder and run it again"
                ) from err
        return rows

    def write_metrics(self, rows: list[dict]) -> None:
        atomic.write_text(self.path / METRICS, "".join(json.dumps(row) + "\n" for row in rows))

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def previous_checkpoint(self) -> Path:
        return self.path / PREVIOUS_CHECKPOINT

    @property
    def best(self) -> Path:
        return self.path / BEST

    def selected_checkpoint(self) -> Path:
        """The weights a run reports: ``best.pt`` when it selected on validation, else the last."""
        return self.best if self.best.exists() else self.checkpoint

    def remove_temporary_files(self) -> None:
        """A kill during an atomic write leaves only its temporary file behind: remove those."""
        for stale in self.path.glob(".*.tmp"):
            stale.unlink()


def status(path: str | os.PathLike) -> str:
    """The status of the run folder at ``path`` (one of :data:`STATUSES`)."""
    return RunDir(path).status()
