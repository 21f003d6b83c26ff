"""A study's display names, saved in its runs folder so that the report finds them there alone:
``<runs_dir>/labels.json``, written atomically by every sweep of a study that names anything
(an arm's ``label``, the ``labels`` section: :mod:`lt_bench.study.file`), removed by a sweep of a
study that names nothing::

    {"study": "fashion_mnist_lt",
     "rows": {"<run folder>": "SAR (no pull)", "<run folder>__crt": "SAR (no pull) + cRT"},
     "columns": {"fashion_mnist@100": "Fashion-MNIST-LT ρ=100"}}

A row's key is its run folder relative to the runs folder (every seed and data set of a labelled
arm, and its second stages' child folders); a column's key is ``<data.name>@<ratio>`` as the report
shows it. Labels live here for the report (a point's config carries its arm's label too, as the
non-identity key ``label``: it names the run folder); they change no run id.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lt_bench import atomic
from lt_bench.errors import UserError
from lt_bench.study.file import Study, point_labels

LABELS_FILE = "labels.json"


def labels_record(study: Study, runs_dir: str | Path, points: list) -> dict | None:
    """What :func:`write_labels` writes for ``points`` (the study's points, in their order); None
    when the study names nothing."""
    if not study.arm_labels and not study.column_labels:
        return None
    from lt_bench.stages import display_name  # torch-free: read from the stage's file

    rows = {}
    for point, label in zip(points, point_labels(study)):
        if label is None:
            continue
        rows[_relative(point.run_dir, runs_dir)] = label
        for stage, child in zip(point.stages, point.child_dirs()):
            rows[_relative(child, runs_dir)] = f"{label} + {display_name(stage)}"
    return {"study": study.name, "rows": rows, "columns": dict(study.column_labels)}


def write_labels(study: Study, runs_dir: str | Path, points: list) -> None:
    """``<runs_dir>/labels.json`` for the study's ``points``; an earlier one is removed when the
    study names nothing now."""
    path = Path(runs_dir) / LABELS_FILE
    record = labels_record(study, runs_dir, points)
    if record is None:
        path.unlink(missing_ok=True)
    else:
        atomic.write_json(path, record)


def read_labels(runs_dir: str | Path) -> dict:
    """``{"rows": {...}, "columns": {...}}`` from ``<runs_dir>/labels.json`` (both empty without
    one); a damaged file is named in one line."""
    path = Path(runs_dir) / LABELS_FILE
    if not path.exists():
        return {"rows": {}, "columns": {}}
    try:
        record = json.loads(path.read_text())
        sections = [record.get(key, {}) for key in ("rows", "columns")]
        if not all(
            isinstance(section, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in section.items())
            for section in sections
        ):
            raise ValueError("not a labels record")
    except (OSError, ValueError, AttributeError) as err:
        raise UserError(
            f"{path} is damaged ({type(err).__name__}); run the study's sweep again to rewrite "
            "it, or delete it for the automatic names"
        ) from err
    return {"rows": sections[0], "columns": sections[1]}


def _relative(folder: Path, runs_dir: str | Path) -> str:
    return Path(os.path.relpath(folder, runs_dir)).as_posix()
