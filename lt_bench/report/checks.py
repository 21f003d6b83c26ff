"""Which run folders the report reads, and which runs it leaves out and why.

Nothing is dropped silently: a folder moved aside by ``sweep --rerun-stale`` (``<name>.stale-<n>``)
is skipped and counted; a done run with a damaged file, or whose ``split.json`` disagrees with its
``config.yaml``, is ``damaged``; a tuned study's final run whose tuned values are no longer the
choice in ``tune/tuning.json`` (its search space was edited and the sweep rerun) is ``superseded``.
Every one of them is named, with its reason, in report.md and by ``lt-bench report``.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lt_bench import rundir
from lt_bench.errors import UserError
from lt_bench.rundir import RunDir

STALE_COPY = re.compile(r"\.stale-\d+$")  # lt_bench.study.points.move_aside's names
PER_CLASS_COLUMNS = ("class", "n_train", "accuracy")  # what the per-class figure reads


@contextmanager
def naming_damage(path: Path) -> Iterator[None]:
    """A run file that cannot be read becomes a one-line error naming it, as :class:`RunDir`'s
    reads do (for the files RunDir has no reader for: separability, per-class, features)."""
    try:
        yield
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as err:
        raise UserError(
            f"{path} is damaged ({type(err).__name__}); delete the run folder and run it again"
        ) from err


def run_folders(runs_dir: Path) -> tuple[list[Path], list[Path]]:
    """The run folders below ``runs_dir`` (any depth; a run folder holds a config.yaml), and the
    stale copies skipped. Never read: ``tune/`` (a tuned study's trials, shown in tuning.md),
    hidden folders (``.submitit``, temporary folders) and what lies below them."""
    runs, stale = [], []
    for path in sorted(runs_dir.rglob(rundir.CONFIG)):
        parts = path.parent.relative_to(runs_dir).parts
        if not path.is_file() or not parts or parts[0] == "tune":
            continue
        if any(part.startswith(".") for part in parts):
            continue
        if any(STALE_COPY.search(part) for part in parts):
            stale.append(path.parent)
        else:
            runs.append(path.parent)
    return runs, stale


def check_run_files(run: RunDir) -> None:
    """Read every file a done run's figures read; the first damaged one is named (UserError)."""
    if any(not isinstance(row, dict) for row in run.metrics()):
        raise UserError(
            f"{run / rundir.METRICS} is damaged (a line is not a JSON object); "
            "delete the run folder and run it again"
        )
    per_class = run / rundir.PER_CLASS
    if per_class.exists():
        import pandas as pd

        with naming_damage(per_class):
            frame = pd.read_csv(per_class)
            missing = [c for c in PER_CLASS_COLUMNS if c not in frame.columns]
            if missing:
                raise KeyError(f"no column {missing[0]}")
    features = run / rundir.FEATURES
    if features.exists():
        import numpy as np

        with naming_damage(features), np.load(features) as arrays:
            for key in ("features", "labels"):
                if key not in arrays.files:
                    raise KeyError(key)


def separability_columns(run: RunDir) -> dict:
    """separability.json's summary and its per-group values (``knn_accuracy.few``, ...)."""
    path = run / rundir.SEPARABILITY
    if not path.exists():
        return {}
    with naming_damage(path):
        separability = json.loads(path.read_text())
        columns = dict(separability["summary"])
        for group, values in separability["groups"].items():
            columns.update({f"{name}.{group}": value for name, value in values.items()})
    return columns


def split_disagreement(run: RunDir, split: dict, config: dict) -> str | None:
    """For a split drawn from a profile, the sentence saying how ``split.json`` differs from the
    config that draws it (ratio, profile, seed); None when they agree. A list-file split (no
    profile) keeps its list's ratio, and a ``data.split_file`` run its file's, whatever data.ratio says."""
    if split.get("profile") is None or split.get("split_file"):
        return None  # a list file's ratio, or a split file's split, whatever data.ratio says
    pairs = (("ratio", "data.ratio"), ("profile", "data.profile"), ("seed", "data.split_seed"))
    for key, config_key in pairs:
        saved, wanted = split.get(key), config.get(config_key)
        if not _same(saved, wanted):
            return (
                f"{run / rundir.SPLIT} disagrees with config.yaml ({key} {_shown(saved)} vs "
                f"{_shown(wanted)}); delete the run folder and rerun it"
            )
    return None


def _same(a, b) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return math.isclose(float(a), float(b))
    return a == b


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# ----------------------------------------------------------------------------- tuned studies


def tuning_record(runs_dir: Path) -> dict | None:
    """``<runs_dir>/tune/tuning.json`` (None: not a tuned study); a damaged one is named."""
    path = Path(runs_dir) / "tune" / "tuning.json"  # lt_bench.study.tune.tuning_dir
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or not isinstance(record.get("arms"), list):
            raise ValueError("not a tuning record")
    except (OSError, ValueError) as err:
        raise UserError(
            f"{path} is damaged ({type(err).__name__}); run the study's tuning again"
        ) from err
    return record


def current_choices(record: dict | None) -> set[str] | None:
    """Each arm's current choice in the tuning record, as comparable keys (None: not tuned)."""
    if record is None:
        return None
    return {_choice_key(arm["chosen"]) for arm in record["arms"] if arm.get("chosen")}


def earlier_search(final: dict, choices: set[str] | None) -> str | None:
    """Why a final run of a tuned study is left out: its tuned values (``final.json["tuned"]``,
    :func:`lt_bench.study.tune.record_source`) are not the tuning record's current choice."""
    tuned = final.get("tuned")
    if choices is None or not isinstance(tuned, dict) or _choice_key(tuned) in choices:
        return None
    values = ", ".join(f"{k}={_shown(v)}" for k, v in (tuned.get("values") or {}).items())
    return (
        f"tuned in an earlier search (trial {tuned.get('trial')}: {values}); "
        "tune/tuning.json now chooses other values"
    )


def _choice_key(choice: dict) -> str:
    """A choice is its trial's run id and values (the trial's config: same id, same trial)."""
    return json.dumps([choice.get("run_id"), choice.get("values")], sort_keys=True)
