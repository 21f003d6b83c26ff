"""A study run end to end, as ``lt-bench sweep`` and ``lt-bench demo`` do it.

An untuned study is one phase: its points. A tuned study is two: the tuning trials under
``<runs>/tune``, then, once every trial is scored on validation, the final points with each arm's
chosen values. Without a launcher nothing is run (``--status``, ``--dry-run``): the phases say
what is done, and why the final runs wait. The study's display names are saved beside the runs
(``labels.json``, :mod:`lt_bench.study.labels`) once the points they name are known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lt_bench.study.file import Study, combinations, resolve
from lt_bench.study.labels import write_labels
from lt_bench.study.points import Point, expand, move_aside, point_status, stale, unique
from lt_bench.study.tune import (
    arm_key,
    choose,
    record_source,
    trial_points,
    trial_score,
    tuning_dir,
    write_record,
)

# launcher(points) -> results: runs the points not yet done (e.g. functools.partial(launch, ...)).
Launcher = Callable[[list[Point]], list[dict]]


@dataclass
class Phase:
    """One phase of a study: its points and where they run; what launching returned."""

    name: str  # "" for an untuned study, else "tuning" or "final"
    points: list[Point]
    where: Path
    waiting: str = ""  # the tuning phase of a study whose final runs wait: "2 of 4 done"
    results: list[dict] = field(default_factory=list)
    moved: list[Path] = field(default_factory=list)  # stale folders moved aside (--rerun-stale)

    @property
    def submitted(self) -> list[str]:
        """The slurm job ids launching submitted."""
        return [r["job_id"] for r in self.results if r.get("status") == "submitted"]


def run_study(
    study: Study,
    runs_dir: str | Path,
    launcher: Launcher | None = None,
    rerun_stale: bool = False,
) -> list[Phase]:
    """Run (with a launcher) every phase of the study that can run now; return the phases.
    A stale run (done with other settings) is refused, or with ``rerun_stale`` moved aside and
    run again."""
    runs_dir = Path(runs_dir)
    if study.tune is None:
        points = expand(study, runs_dir)
        _save_labels(study, runs_dir, points, launcher)
        return [_run_phase("", points, runs_dir, launcher, rerun_stale)]
    return _run_tuned(study, runs_dir, launcher, rerun_stale)


def _save_labels(study: Study, runs_dir: Path, points: list[Point], launcher) -> None:
    """labels.json, when the sweep launches or its runs folder exists (a first status pass writes
    nothing, as for the tuning record)."""
    if launcher is not None or runs_dir.exists():
        write_labels(study, runs_dir, points)


def _run_phase(
    name: str, points: list[Point], where: Path, launcher: Launcher | None, rerun_stale: bool
) -> Phase:
    phase = Phase(name, points, where)
    if launcher is None or not points:
        return phase
    if rerun_stale:
        phase.moved = [move_aside(point) for point, _ in stale(points)]
    phase.results = launcher(points)  # refuses stale points left in place
    return phase


def _run_tuned(
    study: Study, runs_dir: Path, launcher: Launcher | None, rerun_stale: bool
) -> list[Phase]:
    """Tuning trials, the choice on validation, then the final points with the chosen values."""
    trials = trial_points(study, runs_dir)
    tuning = _run_phase(  # trials with equal draws share one run: it is launched once
        "tuning", unique([t.point for t in trials]), tuning_dir(runs_dir), launcher, rerun_stale
    )
    select = resolve(study, {}, runs_dir).train.select
    scores = {  # a stale trial has no score: it was run with other settings
        i: trial_score(t.point.run_dir, select) if point_status(t.point) == "done" else None
        for i, t in enumerate(trials)
    }
    chosen = choose(trials, scores)
    record = None
    if launcher is not None or tuning_dir(runs_dir).exists():
        record = write_record(study, runs_dir, trials, scores, chosen)
    if chosen is None:
        done = sum(score is not None for score in scores.values())
        tuning.waiting = f"{done} of {len(trials)} done"
        return [tuning]
    at = study.tune.at
    finals = expand(study, runs_dir, tuned=lambda o: chosen[arm_key(o, at)].values)
    _save_labels(study, runs_dir, finals, launcher)
    final = _run_phase("final", finals, runs_dir, launcher, rerun_stale)
    if record is not None:
        choices = {arm["arm"]: arm["chosen"] for arm in record["arms"]}
        for combination, point in zip(combinations(study), finals):
            record_source(point.run_dir, choices[arm_key(combination, at)])
    return [tuning, final]
