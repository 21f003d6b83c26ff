"""Studies: a base config times a grid of overrides, one run directory per point.

- :mod:`~lt_bench.study.file`: the study file (``load_study``), its grid and resolved configs
- :mod:`~lt_bench.study.points`: points, their run folders and status (stale included)
- :mod:`~lt_bench.study.tune`: equal-budget random search selected on validation
- :mod:`~lt_bench.study.launch`: running points here, in worker processes, or through submitit
- :mod:`~lt_bench.study.run`: the two-phase study (tuning trials, then finals) the CLI runs

Nothing here imports torch until a point is trained (:func:`run_point`).
"""

from lt_bench.study.file import Study, Tuning, combinations, load_study, resolve
from lt_bench.study.launch import EXECUTORS, launch, run_point
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
)
from lt_bench.study.run import Phase, run_study
from lt_bench.study.tune import (
    Trial,
    arm_key,
    choose,
    draw,
    record_frame,
    record_markdown,
    record_source,
    trial_points,
    trial_score,
    tuning_dir,
    write_record,
)

__all__ = [
    "EXECUTORS",
    "POINT_STATUSES",
    "Phase",
    "Point",
    "Study",
    "Trial",
    "Tuning",
    "arm_key",
    "choose",
    "combinations",
    "draw",
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
    "stale",
    "stale_keys",
    "status_counts",
    "trial_points",
    "trial_score",
    "tuning_dir",
    "write_record",
]
