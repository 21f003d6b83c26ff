"""Every run under a folder as one row of a pandas DataFrame: config keys, status, metrics.

A table row is one *setting*: every config value that varies among the done runs of a data set
(at a ratio) takes part, except the seed and the keys that do not change the science (folders,
names, device, workers, progress). Runs that differ in anything but the seed are never merged.
Rows and columns are named by :mod:`lt_bench.report.labels`: short automatic labels, or the
study's own names (``labels.json`` in the runs folder).

Collecting imports no torch: the option defaults the labels compare with are read from the
methods', losses' and stages' source files (:mod:`lt_bench.source_defaults`).

Model selection is explicit: a run's metrics are those of its last epoch (the long-tail
convention, ``selection = "last"``); nothing here ever picks a checkpoint by test accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from lt_bench import rundir
from lt_bench.config import NOT_SETTINGS, flatten, run_defaults, to_dict
from lt_bench.errors import UserError
from lt_bench.report.checks import (
    check_run_files,
    current_choices,
    earlier_search,
    run_folders,
    separability_columns,
    split_disagreement,
    tuning_record,
)
from lt_bench.report.labels import display_names, setting_labels, setting_text
from lt_bench.rundir import RunDir
from lt_bench.study.labels import read_labels

METRICS = ("top1", "top5", "balanced", "many", "medium", "few", "ece")
SHOT_GROUPS = ("many", "medium", "few")  # lt_bench.data.groups.GROUPS (importing it imports torch)


def _config_values(run: RunDir) -> dict:
    """The run's flattened config, completed with the defaults it ran with (schema keys added
    later, method and loss options left unset), so that equal settings compare equal."""
    try:
        values = to_dict(run.config())
    except UserError as err:  # a config from another version of the schema: take it as written
        try:
            values = run.raw_config()
        except yaml.YAMLError:
            raise err from None  # not YAML at all: config()'s one-line error names the file
        sections = (
            [values.get(k) or {} for k in ("method", "loss", "stage")]
            if isinstance(values, dict)
            else []
        )
        if not sections or not all(isinstance(section, dict) for section in sections):
            raise UserError(
                f"{run / rundir.CONFIG} is damaged (not a run config); "
                "delete the run folder and run it again"
            ) from err
    method = (values.get("method") or {}).get("name")
    loss = (values.get("loss") or {}).get("name")
    stage = (values.get("stage") or {}).get("name")
    flat = flatten(values)
    if flat.get("stage") == "{}":
        flat.pop("stage")  # a training run has no stage options
    defaults = run_defaults(str(method), str(loss), stage)
    prefixes = ("method.", "loss.", *(("stage.",) if stage else ()))
    for key, value in defaults.items():
        if key.startswith(prefixes):
            flat.setdefault(key, value)
    return flat


def _final(run: RunDir) -> dict:
    """The run's final record; a damaged one (RunDir: incomplete, it can resume) becomes the row's
    error, so the report lists it with the unfinished runs."""
    try:
        return run.final()
    except UserError as err:
        return {"error": str(err)}


def _final_columns(final: dict) -> dict:
    tuned = final.get("tuned")
    values = tuned.get("values") if isinstance(tuned, dict) else None
    return {
        "error": final.get("error"),
        "run_id": final.get("run_id"),
        "stage": final.get("stage"),
        "parent": final.get("parent"),
        "selection": (final.get("selection") or {}).get("mode", "last"),
        "warnings": json.dumps(final.get("warnings") or []),  # sentences, as a JSON list
        # The values the study's search chose for this run's arm (never in a label), as JSON.
        "tuned": json.dumps(values if isinstance(values, dict) else {}, sort_keys=True),
        **{key: final.get(key) for key in (*METRICS, "grouping", "wall_time_s", "train_images")},
        **_group_sizes(final),
    }


def _group_sizes(final: dict) -> dict:
    """``group_size.many`` ... : the classes in each shot group of the run's grouping (None when
    not recorded), so a table can tell an empty group (–, with a note) from a missing value."""
    sizes = final.get("group_sizes")
    sizes = sizes if isinstance(sizes, dict) else {}
    return {f"group_size.{group}": sizes.get(group) for group in SHOT_GROUPS}


def read_run(run_dir: Path, runs_dir: Path, choices: set[str] | None = None) -> dict:
    """One run folder as one row: its config's settings, status, metrics and separability.
    A run whose files cannot be trusted is ``damaged``, a final run of an earlier tuning search
    ``superseded`` (``choices``: the tuning record's current choices); ``error`` says why."""
    run = RunDir(run_dir)
    row = {"run_dir": run_dir.relative_to(runs_dir).as_posix(), "seed": None, "dataset": "?"}
    row.update(settings="{}", baseline_key="{}", **_final_columns({}))  # what every row has
    try:
        _fill_row(row, run, choices)
    except UserError as err:
        row.update(status="damaged", error=str(err))
    return row


def _fill_row(row: dict, run: RunDir, choices: set[str] | None) -> None:
    """``row`` filled in place, so that a damaged file leaves the values read before it."""
    config = _config_values(run)
    row.update(config)
    final = _final(run)
    row["status"] = run.status()
    row.update(_final_columns(final))
    # The split's own ratio: list-file data sets (ImageNet-LT) ignore data.ratio and keep their list's.
    split = run.split() if (run / rundir.SPLIT).exists() else {}
    ratio = split.get("ratio") if split else row.get("data.ratio")
    row["split_ratio"] = ratio
    row["dataset"] = (
        f"{row.get('data.name')}@{ratio:g}"
        if isinstance(ratio, (int, float))
        else str(row.get("data.name"))
    )
    settings = {k: setting_text(v) for k, v in config.items() if k not in NOT_SETTINGS}
    row["settings"] = json.dumps(settings, sort_keys=True)
    # A row's baseline matches it in every setting but the method's and, in a tuned study, the
    # values each arm tuned for itself (learning rate, weight decay, ...).
    tuned = set(json.loads(row["tuned"]))
    row["baseline_key"] = json.dumps(
        {k: v for k, v in settings.items() if not k.startswith("method.") and k not in tuned},
        sort_keys=True,
    )
    if row["status"] != "done":
        return
    disagreement = split_disagreement(run, split, config)
    if disagreement:
        raise UserError(disagreement)
    row.update(separability_columns(run))
    check_run_files(run)
    superseded = earlier_search(final, choices)
    if superseded:
        row.update(status="superseded", error=superseded)


def check_one_run_per_seed(frame: pd.DataFrame) -> None:
    """A row's seeds are its replicates: two done runs of one row with the same seed is an error."""
    done = frame[frame.status == "done"]
    for (dataset, label, seed), runs in done.groupby(["dataset", "label", "seed"], sort=False):
        if len(runs) > 1:
            folders = ", ".join(runs.run_dir)
            raise UserError(
                f"row {label!r} on {dataset} has {len(runs)} done runs of seed {seed} ({folders}); "
                "they differ only in keys the report ignores: remove all but one"
            )


def check_one_grouping(frame: pd.DataFrame) -> str | None:
    """The one shot grouping of the done runs (``final.json["grouping"]``; None: not recorded).
    Runs of two or more are refused with one line naming them, rather than split into tables per
    grouping: a column of Few never holds two meanings, and a report has one set of table files,
    so such a study is reported one grouping (one runs folder) at a time."""
    done = frame[frame.status == "done"]
    if done.empty or "grouping" not in done:
        return None
    recorded = done["grouping"].map(lambda g: g if isinstance(g, str) and g else None)
    names = recorded.fillna("not recorded")
    if names.nunique() == 1:
        return recorded.iloc[0]
    parts = []
    for name, runs in done.groupby(names.to_numpy(), sort=True):
        folders = sorted(runs["run_dir"])
        more = f" and {len(folders) - 5} more" if len(folders) > 5 else ""
        parts.append(f"{name}: {', '.join(folders[:5])}{more}")
    raise UserError(
        f"the done runs use {names.nunique()} shot groupings ({'; '.join(parts)}) and one table "
        "never mixes them; move each grouping's runs to a runs folder of its own and report each"
    )


def _names(frame: pd.DataFrame, runs_dir: Path) -> dict:
    """The display names: the study's (``labels.json``), and for runs it does not name, the
    ``label`` their config was trained with (``lt-bench train ... label=NAME``; a second stage's
    run adds its stage, as the study's names do)."""
    names = read_labels(runs_dir)
    if "label" not in frame:
        return names
    from lt_bench.stages import display_name  # torch-free: read from the stage's file

    given = {}
    stages = frame["stage.name"] if "stage.name" in frame else [None] * len(frame)
    for run_dir, label, stage in zip(frame.run_dir, frame.label, stages):
        if isinstance(label, str) and label:
            given[run_dir] = f"{label} + {display_name(stage)}" if isinstance(stage, str) else label
    return {**names, "rows": {**given, **names.get("rows", {})}}


def collect(runs_dir: str | Path) -> pd.DataFrame:
    """One row per run folder (any depth below ``runs_dir``; :func:`run_folders` says which),
    sorted by data set, label, seed. Only ``done`` rows make the tables; the others (failed,
    incomplete, damaged, superseded) are listed with their ``error``."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise UserError(f"runs folder {runs_dir} does not exist; pass the --runs-dir of a sweep")
    choices = current_choices(tuning_record(runs_dir))
    rows = [read_run(folder, runs_dir, choices) for folder in run_folders(runs_dir)[0]]
    if not rows:
        raise UserError(
            f"no runs under {runs_dir} (no */{rundir.CONFIG}); run lt-bench train or sweep first"
        )
    frame = pd.DataFrame(rows)
    frame["auto_label"] = setting_labels(frame)
    frame["label"], frame["dataset_label"] = display_names(frame, _names(frame, runs_dir))
    check_one_run_per_seed(frame)
    check_one_grouping(frame)
    return frame.sort_values(["dataset", "label", "seed", "run_dir"], kind="stable").reset_index(
        drop=True
    )
