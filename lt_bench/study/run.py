"""A study run end to end, as ``lt-bench sweep`` and ``lt-bench demo`` do it.

An untuned study is one phase: its points. A tuned study is two: the tuning trials under
``<runs>/tune``, then, once every trial is scored on validation, the final points with each arm's
chosen values. Without a launcher nothing is run (``--status``, ``--dry-run``): the phases say
what is done, and why the final runs wait. The study's display names are saved beside the runs
(``labels.json``, :mod:`lt_bench.study.labels`) once the points they name are known.

Nothing here prints: the caller is told of each phase before it launches (``on_phase``) and of
the tuning's choice (``on_chosen``), and prints what it likes (``lt-bench sweep``'s lines).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lt_bench.provenance import code_difference
from lt_bench.rundir import RunDir
from lt_bench.study.file import Study, combinations, point_labels, resolve
from lt_bench.study.labels import write_labels
from lt_bench.study.points import Point, expand, move_aside, point_status, stale, unique
from lt_bench.study.tune import (
    Trial,
    arm_key,
    arm_labels,
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
    labels: dict[Path, str] = field(default_factory=dict)  # run folder -> the study's name for it
    trials: list[Trial] = field(default_factory=list)  # the tuning phase's trials
    select: str = ""  # the tuning phase's trials are scored at this epoch: last | best_val

    @property
    def submitted(self) -> list[str]:
        """The slurm job ids launching submitted."""
        return [r["job_id"] for r in self.results if r.get("status") == "submitted"]

    def trial_scores(self, run_dir: str | Path) -> list[tuple[Trial, float | None]]:
        """The trials a finished tuning run serves (trials with equal draws share one run), each
        with its validation score (None until the run is done)."""
        trials = [t for t in self.trials if t.point.run_dir == Path(run_dir)]
        score = trial_score(run_dir, self.select) if trials else None
        return [(trial, score) for trial in trials]


def other_code(run_dirs: list[Path]) -> Counter:
    """How many of these done runs were made by code other than the code now, by how it differs
    (:func:`lt_bench.provenance.code_difference`); runs that record no code are not counted."""
    found = Counter()
    for run_dir in run_dirs:
        difference = code_difference(RunDir(run_dir).final().get("versions"))
        if difference is not None:
            found[difference] += 1
    return found


def run_study(
    study: Study,
    runs_dir: str | Path,
    launcher: Launcher | None = None,
    rerun_stale: bool = False,
    on_phase: Callable[[Phase], None] | None = None,
    on_chosen: Callable[[dict], None] | None = None,
) -> list[Phase]:
    """Run (with a launcher) every phase of the study that can run now; return the phases.
    A stale run (done with other settings) is refused, or with ``rerun_stale`` moved aside and
    run again. With a launcher, ``on_phase(phase)`` is called before each phase launches and
    ``on_chosen(record)`` once the tuning has chosen (the ``tuning.json`` record)."""
    runs_dir = Path(runs_dir)
    if study.tune is None:
        points = expand(study, runs_dir)
        _save_labels(study, runs_dir, points, launcher)
        phase = Phase("", points, runs_dir, labels=_labels(study, points))
        return [_run_phase(phase, launcher, rerun_stale, on_phase)]
    return _run_tuned(study, runs_dir, launcher, rerun_stale, on_phase, on_chosen)


def _labels(study: Study, points: list[Point]) -> dict[Path, str]:
    """Each labelled point's run folder with its arm's display name (the study's ``label``)."""
    named = zip(points, point_labels(study))
    return {point.run_dir: label for point, label in named if label is not None}


def _save_labels(study: Study, runs_dir: Path, points: list[Point], launcher) -> None:
    """labels.json, when the sweep launches or its runs folder exists (a first status pass writes
    nothing, as for the tuning record)."""
    if launcher is not None or runs_dir.exists():
        write_labels(study, runs_dir, points)


def _run_phase(phase: Phase, launcher: Launcher | None, rerun_stale: bool, on_phase) -> Phase:
    if launcher is None or not phase.points:
        return phase
    if on_phase is not None:
        on_phase(phase)
    if rerun_stale:
        phase.moved = [move_aside(point) for point, _ in stale(phase.points)]
    phase.results = launcher(phase.points)  # refuses stale points left in place
    return phase


def _run_tuned(
    study: Study, runs_dir: Path, launcher: Launcher | None, rerun_stale: bool, on_phase, on_chosen
) -> list[Phase]:
    """Tuning trials, the choice on validation, then the final points with the chosen values."""
    trials = trial_points(study, runs_dir)
    select = resolve(study, {}, runs_dir).train.select
    names = arm_labels(study)
    tuning = Phase(  # trials with equal draws share one run: it is launched once
        "tuning",
        unique([t.point for t in trials]),
        tuning_dir(runs_dir),
        labels={t.point.run_dir: names.get(t.arm, t.arm) for t in trials},
        trials=trials,
        select=select,
    )
    _run_phase(tuning, launcher, rerun_stale, on_phase)
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
    if launcher is not None and on_chosen is not None:
        on_chosen(record)
    at = study.tune.at
    finals = expand(study, runs_dir, tuned=lambda o: chosen[arm_key(o, at)].values)
    _save_labels(study, runs_dir, finals, launcher)
    final = Phase("final", finals, runs_dir, labels=_labels(study, finals))
    _run_phase(final, launcher, rerun_stale, on_phase)
    if record is not None:
        choices = {arm["arm"]: arm["chosen"] for arm in record["arms"]}
        for combination, point in zip(combinations(study), finals):
            record_source(point.run_dir, choices[arm_key(combination, at)])
    return [tuning, final]
