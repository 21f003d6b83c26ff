"""A study's points: one resolved config and run directory each, and what state each is in.

Each point's run directory is named by a hash of its resolved config, so a sweep is idempotent:
run it again and only the points not yet done are launched. A failed run keeps its error in its
folder and is reported, never skipped silently. A done run whose saved config differs from the
point's (a schema default changed, or an older version wrote it) is *stale*: it is reported with
the differing keys and never silently reused; ``--rerun-stale`` moves it aside and runs it again.
A run whose folder another process has locked (:meth:`RunDir.lock`) is *running* there: counted and
shown as such, and never launched a second time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from omegaconf import DictConfig

from lt_bench.errors import UserError
from lt_bench.rundir import STATUSES, RunDir, child_path, run_path
from lt_bench.study.file import Study, combinations, point_labels, resolve

# What a point can be: a run folder's statuses, plus done with other settings, plus being trained
# by another process right now (its lock is held: "running elsewhere").
POINT_STATUSES = (*STATUSES, "stale", "running")


@dataclass
class Point:
    overrides: dict
    cfg: DictConfig
    stages: tuple = ()

    @cached_property
    def run_dir(self) -> Path:
        """``<out_dir>/<data>_<label>_<run id>`` (:func:`~lt_bench.rundir.run_path`): hashing the
        config costs milliseconds, so once."""
        return run_path(self.cfg)

    def child_dirs(self) -> list[Path]:
        """The folders of the point's second stages."""
        return [child_path(self.run_dir, stage) for stage in self.stages]


def expand(
    study: Study, runs_dir: str | Path, tuned: Callable[[dict], dict] | None = None
) -> list[Point]:
    """Every point as a resolved config writing under ``runs_dir``; run ids must be unique.
    ``tuned(overrides) -> dict`` adds a tuned study's chosen values to each point."""
    points = []
    for overrides, label in zip(combinations(study), point_labels(study)):
        overrides = {**overrides, **(tuned(overrides) if tuned else {})}
        cfg = resolve(study, overrides, runs_dir)
        if label is not None and not cfg.label:  # the arm's label names its folders and tracker runs
            cfg.label = label
        points.append(Point(overrides, cfg, tuple(study.stages)))
    folders = Counter(p.run_dir for p in points)
    shared = next((folder for folder, n in folders.items() if n > 1), None)
    if shared is not None and points[0].cfg.name:
        raise UserError(
            f"study {study.name}: every point would write to {shared} because the config sets "
            "name; remove name from the base config, the study or the command line"
        )
    if shared is not None:
        raise UserError(
            f"study {study.name} has points with identical configs; remove repeated grid values or arms"
        )
    return points


def stale_keys(point: Point) -> list[str]:
    """``key: saved -> wanted`` for a done run whose saved config differs from the point's; []
    for any other run."""
    run = RunDir(point.run_dir)
    if run.status() != "done" or not run.has_config:
        return []
    return run.config_differences(point.cfg)


def point_status(point: Point) -> str:
    """One of :data:`POINT_STATUSES`; a done run whose second stages are not all done counts as
    incomplete."""
    return point_state(point)[0]


def point_state(point: Point) -> tuple[str, list[str]]:
    """The point's status and, when it is stale, the differing keys (one read of each file). A
    folder that another process holds locked is ``running``, whatever its files say."""
    run = RunDir(point.run_dir)
    status = run.status()
    if status != "done":
        return ("running" if status != "pending" and run.is_locked() else status), []
    keys = stale_keys(point)
    if keys:
        return "stale", keys
    children = [RunDir(child) for child in point.child_dirs()]
    if any(child.status() != "done" for child in children):
        return ("running" if any(child.is_locked() for child in children) else "incomplete"), []
    return "done", []


def unique(points: list[Point]) -> list[Point]:
    """The points with distinct run folders, in order: one folder is never launched twice (two
    tuning trials with equal draws share their run)."""
    seen: set[Path] = set()
    return [p for p in points if not (p.run_dir in seen or seen.add(p.run_dir))]


def status_counts(points: list[Point]) -> Counter:
    return Counter(point_status(p) for p in points)


def failures(points: list[Point]) -> list[tuple[Path, str]]:
    """Every failed run folder of the points (second stages included) with its error."""
    out = []
    for point in points:
        for folder in (point.run_dir, *point.child_dirs()):
            run = RunDir(folder)
            if run.status() == "failed":
                out.append((folder, run.error()))
    return out


def stale(points: list[Point]) -> list[tuple[Point, list[str]]]:
    """The stale points, each with its differing keys."""
    found = ((point, stale_keys(point)) for point in points)
    return [(point, keys) for point, keys in found if keys]


def refuse_stale(points: list[Point]) -> None:
    """A one-line UserError when any point is stale: a sweep never reuses a run of other settings."""
    found = stale(points)
    if found:
        point, keys = found[0]
        raise UserError(
            f"{len(found)} done run(s) were run with other settings, e.g. {point.run_dir}: "
            f"{'; '.join(keys)}; pass --rerun-stale to move them aside (<folder>.stale-<n>) and run them again"
        )


def move_aside(point: Point) -> Path:
    """Rename a stale point's folder (and its second stages') to ``<name>.stale-<n>``, the first
    free ``n``, so that nothing is lost; returns the parent's new path."""
    folders = [point.run_dir, *point.child_dirs()]
    number = 1
    while any(_aside(folder, number).exists() for folder in folders):
        number += 1
    for folder in folders:
        if folder.exists():
            folder.rename(_aside(folder, number))
    return _aside(point.run_dir, number)


def _aside(folder: Path, number: int) -> Path:
    return folder.with_name(f"{folder.name}.stale-{number}")
