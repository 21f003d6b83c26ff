"""Studies: a base config times a grid of overrides, one run directory per point.

- :mod:`~lt_bench.study.file`: the study file (``load_study``), its grid and resolved configs
- :mod:`~lt_bench.study.points`: points, their run folders and status (stale included)
- :mod:`~lt_bench.study.tune`: equal-budget random search selected on validation
- :mod:`~lt_bench.study.launch`: running points in local worker processes or through submitit
- :mod:`~lt_bench.study.workers`: the local worker processes (a dead worker fails only its run;
  SIGINT and SIGTERM stop the workers too)
- :mod:`~lt_bench.study.run`: the two-phase study (tuning trials, then finals) the CLI runs

Nothing here imports torch until a point is trained (:func:`run_point`).
"""

from lt_bench.study.file import Study, Tuning, combinations, load_study, resolve
from lt_bench.study.launch import EXECUTORS, launch, run_point, worker_died
from lt_bench.study.points import (
    POINT_STATUSES,
    Point,
    expand,
    failures,
    move_aside,
    point_state,
    point_status,
    refuse_stale,
    stale,
    stale_keys,
    status_counts,
    unique,
)
from lt_bench.study.run import Phase, run_study
from lt_bench.study.tune import (
    Trial,
    arm_key,
    choose,
    draw,
    edges,
    grid_values,
    record_frame,
    record_markdown,
    record_source,
    trial_points,
    trial_score,
    tuning_dir,
    write_record,
)
from lt_bench.study.workers import SweepInterrupted, run_tasks

__all__ = [
    "EXECUTORS",
    "POINT_STATUSES",
    "Phase",
    "Point",
    "Study",
    "SweepInterrupted",
    "Trial",
    "Tuning",
    "arm_key",
    "choose",
    "combinations",
    "draw",
    "edges",
    "grid_values",
    "expand",
    "failures",
    "launch",
    "load_study",
    "move_aside",
    "point_state",
    "point_status",
    "record_frame",
    "record_markdown",
    "record_source",
    "refuse_stale",
    "resolve",
    "run_point",
    "run_study",
    "run_tasks",
    "stale",
    "stale_keys",
    "status_counts",
    "trial_points",
    "trial_score",
    "tuning_dir",
    "unique",
    "worker_died",
    "write_record",
]
