"""Results at a glance, as plain text for a terminal or a log: ``lt-bench show RUN_OR_RUNS_DIR``.

A runs folder (a study's ``--runs-dir``) gives one row per run: its label (the study's name from
``labels.json``, else the report's automatic label), seed, status, top-1 and shot-group accuracy,
a few separability figures, wall time and its number of warnings; ``group=True`` gives one row per
label and data set @ ratio instead, as mean ± std over its seeds (the report's own cells:
:func:`lt_bench.report.tables.grid.aggregate_cells`, so the numbers are the main table's). Under
the table: each distinct warning once with its rows (:mod:`lt_bench.report.notes`), the errors of
failed and left-out runs, and a line for done runs made by other code than now
(:func:`lt_bench.provenance.code_difference`). One run folder gives a key: value summary.

Accuracies are in % with one decimal throughout, as in the report's tables (final.json stores
fractions). Everything here is read through :func:`lt_bench.report.collect.collect` and
:mod:`lt_bench.rundir`: no torch, so it takes about as long as reading the configs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from lt_bench import rundir
from lt_bench.config import run_defaults
from lt_bench.errors import UserError
from lt_bench.provenance import code_difference
from lt_bench.report.checks import run_folders
from lt_bench.report.collect import collect, read_run
from lt_bench.report.labels import setting_labels, setting_text, short_value
from lt_bench.report.notes import grouped_warnings, run_warnings
from lt_bench.report.tables.grid import (
    Table,
    aggregate_cells,
    column_names,
    dataset_order,
    row_order,
    table_caption,
)
from lt_bench.report.typeset import DASH, number
from lt_bench.rundir import RunDir
from lt_bench.study.labels import read_labels

# Shown columns: metric key -> (header, scale, decimals). Accuracies in %, as the report's tables.
ACCURACIES = {
    "top1": ("top-1 %", 100, 1),
    "many": ("many %", 100, 1),
    "medium": ("medium %", 100, 1),
    "few": ("few %", 100, 1),
}
SEPARABILITY = {  # separability.json's summary; decimals as the report's separability table
    "nc1": ("NC1", 1, 3),
    "knn_accuracy": ("kNN %", 100, 1),
    "silhouette": ("silhouette", 1, 3),
}
# --sort KEY -> (column of the runs, best first is descending); missing values go last.
SORT_KEYS = {
    "top1": ("top1", True),
    "many": ("many", True),
    "medium": ("medium", True),
    "few": ("few", True),
    "knn": ("knn_accuracy", True),
    "nc1": ("nc1", False),
    "silhouette": ("silhouette", True),
    "time": ("wall_time_s", False),
    "warnings": ("warnings_count", True),
    "label": ("label", False),
    "seed": ("seed", False),
    "seeds": ("seeds", True),
    "status": ("status", False),
}
GAP = "  "  # between columns: two spaces, so a label with spaces stays one column
SHOWN_FOLDERS = 3  # run folders named in a line before "and N more"


def show(path: str | Path, group: bool = False, sort: str | None = None) -> str:
    """The results under ``path`` as text: a table of the runs of a runs folder (``group``: mean
    ± std over seeds per label; ``sort``: one of :data:`SORT_KEYS`, best first), or the summary
    of one run folder (one holding config.yaml). A missing path, or one holding no runs, is a
    one-line UserError."""
    path = Path(path)
    if path.is_file() and path.name in (rundir.CONFIG, rundir.FINAL):
        path = path.parent  # `lt-bench show run/final.json` means the run
    if not path.exists():
        raise UserError(
            f"{path} does not exist; pass a run folder (it holds {rundir.CONFIG}) or a runs "
            "folder (a sweep's --runs-dir)"
        )
    if not path.is_dir():
        raise UserError(
            f"{path} is a file, not a folder; pass a run folder (it holds {rundir.CONFIG}) or a "
            "runs folder (a sweep's --runs-dir)"
        )
    if sort is not None and sort not in SORT_KEYS:
        raise UserError(f"unknown sort key {sort!r}; choose one of: {', '.join(SORT_KEYS)}")
    if (path / rundir.CONFIG).is_file():
        if group or sort:
            raise UserError(
                f"{path} is one run: --group and --sort apply to a runs folder; "
                f"pass its parent {path.parent} for a table"
            )
        return run_summary(path)
    return runs_table(path, group=group, sort=sort)


# ----------------------------------------------------------------------------- a runs folder


def runs_table(runs_dir: Path, group: bool = False, sort: str | None = None) -> str:
    """A runs folder's table (one row per run, or per label with ``group``) and the lines under it."""
    runs = collect(runs_dir)  # UserError: no runs, or runs the report refuses
    runs["warnings_count"] = runs["warnings"].map(_count_warnings)
    runs = _report_order(runs)
    several = runs["dataset"].nunique() > 1
    cells = {}
    if group:
        if sort == "seed":
            raise UserError(
                "--sort seed has no meaning with --group (a row holds every seed); "
                "sort by another key"
            )
        header, rows, cells = _grouped_rows(runs, several, sort)
    else:
        header, rows = _run_rows(runs, several, sort)
    lines = [
        f"{runs_dir}: {_plural(len(runs), 'run')} ({_status_counts(runs)})",
        "",
        *aligned(header, rows),
        "",
    ]
    lines += _captions(runs, cells)
    lines += _warning_lines(runs)
    lines += _error_lines(runs)
    lines += _code_lines(runs_dir, runs)
    lines += _folder_lines(runs_dir)
    return "\n".join(lines).rstrip() + "\n"


def _report_order(runs: pd.DataFrame) -> pd.DataFrame:
    """The report's order: data set @ ratio (name, then ratio), rows as its tables order them
    (baselines first, SAR last), then seed."""
    datasets = {d: i for i, d in enumerate(dataset_order(runs["dataset"]))}
    labels = {label: i for i, label in enumerate(row_order(runs))}
    key = pd.DataFrame(
        {
            "d": runs["dataset"].map(datasets),
            "l": runs["label"].map(labels),
            "s": pd.to_numeric(runs["seed"], errors="coerce"),
        }
    )
    order = key.sort_values(["d", "l", "s"], kind="stable").index
    return runs.loc[order].reset_index(drop=True)


def _sorted(frame: pd.DataFrame, sort: str | None) -> pd.DataFrame:
    if sort is None:
        return frame
    column, descending = SORT_KEYS[sort]
    if column not in frame:
        return frame
    return frame.sort_values(column, ascending=not descending, na_position="last", kind="stable")


def _shown_separability(runs: pd.DataFrame) -> dict:
    """The separability columns some done run has (none without separability.json)."""
    done = runs[runs.status == "done"]
    return {k: v for k, v in SEPARABILITY.items() if k in done and done[k].notna().any()}


def _run_rows(runs: pd.DataFrame, several: bool, sort: str | None):
    """One row per run."""
    separability = _shown_separability(runs)
    header = (["data"] if several else []) + ["label", "seed", "status"]
    header += [h for h, _, _ in ACCURACIES.values()] + [h for h, _, _ in separability.values()]
    header += ["time", "warnings", "run folder"]
    rows = []
    for run in _sorted(runs, sort).to_dict("records"):
        row = ([run["dataset_label"]] if several else []) + [run["label"], _seed(run["seed"])]
        row.append(run["status"])
        for key, (_, scale, digits) in {**ACCURACIES, **separability}.items():
            row.append(_number(run.get(key), scale, digits))
        row += [duration(run.get("wall_time_s")), str(run["warnings_count"]), run["run_dir"]]
        rows.append(row)
    return header, rows


def _grouped_rows(runs: pd.DataFrame, several: bool, sort: str | None):
    """One row per data set @ ratio and label: mean ± std over the done runs' seeds, the report's
    cells (:func:`aggregate_cells`) formatted as its tables format them (:meth:`Table.text`)."""
    done = runs[runs.status == "done"]
    separability = _shown_separability(runs)
    metrics = {**ACCURACIES, **separability}
    cells = aggregate_cells(done, "dataset", list(metrics)) if not done.empty else {}
    times = aggregate_cells(done, "dataset", ["wall_time_s"]) if not done.empty else {}
    text = {
        (scale, digits): Table("", [], [], [], cells, {}, scale=scale, digits=digits)
        for _, scale, digits in metrics.values()
    }
    records = []
    for (dataset, label), members in runs.groupby(["dataset", "label"], sort=False):
        key = (label, str(dataset))
        seeds = int((members.status == "done").sum())
        record = {
            "dataset_label": members["dataset_label"].iloc[0],
            "label": label,
            "seeds": seeds,
            "status": "done" if seeds == len(members) else _status_counts(members),
            "wall_time_s": times.get((*key, "wall_time_s"), (math.nan,))[0],
            "warnings_count": len(grouped_warnings(run_warnings(members))),
        }
        for metric, (_, scale, digits) in metrics.items():
            record[metric] = cells.get((*key, metric), (math.nan,))[0]
            record[f"{metric} text"] = text[(scale, digits)].text(label, str(dataset), metric)
        records.append(record)
    frame = _sorted(pd.DataFrame(records), sort)
    header = (["data"] if several else []) + ["label", "seeds", "status"]
    header += [h for h, _, _ in metrics.values()] + ["time/run", "warnings"]
    rows = []
    for record in frame.to_dict("records"):
        row = ([record["dataset_label"]] if several else []) + [record["label"]]
        row += [str(record["seeds"]), record["status"]]
        row += [record[f"{metric} text"] for metric in metrics]
        row += [duration(record["wall_time_s"]), str(record["warnings_count"])]
        rows.append(row)
    return header, rows, cells


def _captions(runs: pd.DataFrame, cells: dict) -> list[str]:
    """The report's caption sentences: the shot grouping, why a group shows "–", and (grouped:
    ``cells``) what ± is."""
    done = runs[runs.status == "done"]
    if done.empty:
        return []
    columns = [(key, header) for key, (header, _, _) in ACCURACIES.items()]
    caption = table_caption(done, cells, columns, "dataset", column_names(done))["caption"]
    return caption + [""]


def _warning_lines(runs: pd.DataFrame) -> list[str]:
    """Each distinct warning once, with the rows it concerns and how many of their runs."""
    warnings = grouped_warnings(run_warnings(runs))
    if not warnings:
        return []
    warned = int((runs["warnings_count"] > 0).sum())
    lines = [f"Warnings ({len(warnings)} distinct, on {warned} of {len(runs)} runs):"]
    for warning in warnings:
        rows = ", ".join(f"{row}: {_plural(warning.runs[row], 'run')}" for row in warning.rows)
        lines.append(f"- {warning.sentence} ({rows})")
    return lines + [""]


def _error_lines(runs: pd.DataFrame) -> list[str]:
    """Each failed, damaged or superseded run's error, naming its folder."""
    erred = [
        run
        for run in runs.to_dict("records")
        if run["status"] != "done" and isinstance(run.get("error"), str) and run["error"]
    ]
    if not erred:
        return []
    lines = ["Errors:"]
    for run in erred:
        lines.append(
            f"- {run['run_dir']} ({run['label']}, {run['dataset_label']}, seed "
            f"{_seed(run['seed'])}): {run['status']}: {run['error']}"
        )
    return lines + [""]


def _code_lines(runs_dir: Path, runs: pd.DataFrame) -> list[str]:
    """A line per way in which done runs' code differs from the code now."""
    differing: dict[str, list[str]] = {}
    for folder in runs.loc[runs.status == "done", "run_dir"]:
        difference = code_difference(_versions(runs_dir / folder))
        if difference:
            differing.setdefault(difference, []).append(folder)
    done = int((runs.status == "done").sum())
    return [
        f"Code: {len(folders)} of {done} done runs were made by other code than now: "
        f"{difference} ({_some(folders)}); rerun them where the change may matter"
        for difference, folders in differing.items()
    ] + ([""] if differing else [])


def _folder_lines(runs_dir: Path) -> list[str]:
    """What the table does not show: stale copies, and a tuned study's trials."""
    lines = []
    stale = run_folders(runs_dir)[1]
    if stale:
        names = [folder.relative_to(runs_dir).as_posix() for folder in stale]
        lines.append(
            f"Skipped {_plural(len(stale), 'stale copy', 'stale copies')} ({_some(names)}), "
            "moved aside by sweep --rerun-stale"
        )
    tune = runs_dir / "tune"
    trials = len(run_folders(tune)[0]) if tune.is_dir() else 0
    if trials:
        lines.append(f"Not shown: {_plural(trials, 'tuning trial')}: lt-bench show {tune}")
    return lines


# ----------------------------------------------------------------------------- one run


def run_summary(run_dir: Path) -> str:
    """One run folder as ``key: value`` lines: what it is, how it went, and what it scored."""
    runs_dir = run_dir.parent
    row = read_run(run_dir, runs_dir)
    final = _final(run_dir)
    label = read_labels(runs_dir)["rows"].get(row["run_dir"])
    if label is None:
        label = setting_labels(pd.DataFrame([row])).iloc[0]
    pairs = [("run folder", str(run_dir)), ("label", label)]
    pairs += _config_pairs(row)
    status = row["status"]
    pairs.append(("status", status))
    if isinstance(row.get("error"), str) and row["error"]:
        pairs.append(("error", row["error"]))
    if status in ("done", "superseded"):
        pairs += _score_pairs(row)
    warnings = final.get("warnings") or []
    pairs.append(("warnings", str(len(warnings)) if warnings else "none"))
    pairs += [("", f"- {sentence}") for sentence in warnings]
    pairs.append(("time", duration(row.get("wall_time_s"))))
    if status == "done":
        versions = final.get("versions")
        difference = code_difference(versions)
        code = (
            f"other than now: {difference}; rerun it where the change may matter"
            if difference
            else ("same as now" if versions else "not recorded")
        )
        pairs.append(("code", code))
    width = max(len(key) for key, _ in pairs)
    return "".join(f"{key:<{width}}  {value}".rstrip() + "\n" for key, value in pairs)


def _config_pairs(row: dict) -> list[tuple[str, str]]:
    """The config's highlights: data, model, method, loss, stage, seed, epochs, tuned values."""
    data = f"{row.get('data.name')}, ratio {_value(row.get('split_ratio', row.get('data.ratio')))}"
    if row.get("data.profile"):
        data += f" ({row['data.profile']} profile)"
    if isinstance(row.get("grouping"), str):
        data += f", {row['grouping']} shot groups"
    method, loss = row.get("method.name"), row.get("loss.name")
    stage = row.get("stage.name")
    defaults = run_defaults(str(method), str(loss), stage if isinstance(stage, str) else None)
    loss_text = str(loss) + (
        f", re-weighted {row['loss.reweight']}"
        if row.get("loss.reweight") not in (None, "none")
        else ""
    )
    pairs = [
        ("data", data),
        ("model", str(row.get("model.name"))),
        ("method", _with_options(str(method), row, "method.", defaults)),
        ("loss", _with_options(loss_text, row, "loss.", defaults, skip=("loss.reweight",))),
    ]
    if isinstance(stage, str):
        parent = f", after {row['parent']}" if isinstance(row.get("parent"), str) else ""
        pairs.append(("stage", _with_options(stage, row, "stage.", defaults) + parent))
    pairs += [("seed", _seed(row.get("seed"))), ("epochs", _value(row.get("optim.epochs")))]
    tuned = json.loads(row.get("tuned") or "{}")
    if tuned:
        values = ", ".join(f"{k}={short_value(setting_text(v))}" for k, v in tuned.items())
        pairs.append(("tuned", f"{values} (chosen on validation: tune/tuning.json)"))
    return pairs


def _with_options(name: str, row: dict, prefix: str, defaults: dict, skip=()) -> str:
    """``name`` and its options that differ from their defaults: ``sar (trade_off=0)``."""
    changed = [
        f"{key.removeprefix(prefix)}={short_value(setting_text(value))}"
        for key, value in row.items()
        if key.startswith(prefix)
        and key != f"{prefix}name"
        and key not in skip
        and key in defaults
        and setting_text(value) != setting_text(defaults[key])
    ]
    return name + (f" ({', '.join(changed)})" if changed else "")


def _score_pairs(row: dict) -> list[tuple[str, str]]:
    """Top-1, the shot groups (with their class counts) and the separability figures."""
    groups = []
    for key in ("many", "medium", "few"):
        size = row.get(f"group_size.{key}")
        classes = f" ({_plural(int(size), 'class', 'classes')})" if _is_number(size) else ""
        groups.append(f"{key} {_percent(row.get(key))}{classes}")
    pairs = [
        ("top-1", _percent(row.get("top1"))),
        ("shot groups", ", ".join(groups)),
    ]
    separability = [
        f"{header.removesuffix(' %')} {_number(row.get(key), scale, digits)}"
        + ("%" if scale == 100 else "")
        for key, (header, scale, digits) in SEPARABILITY.items()
        if _is_number(row.get(key))
    ]
    if separability:
        pairs.append(("separability", ", ".join(separability)))
    return pairs


# ----------------------------------------------------------------------------- text helpers


def aligned(header: list[str], rows: list[list[str]]) -> list[str]:
    """A table as lines: text columns left-aligned, number columns right-aligned, two spaces
    between columns (no line ends in spaces)."""
    columns = list(zip(header, *rows)) if rows else [(h,) for h in header]
    widths = [max(len(cell) for cell in column) for column in columns]
    right = [bool(rows) and all(_numeric_text(cell) for cell in column[1:]) for column in columns]
    lines = []
    for cells in [header, *rows]:
        parts = [
            cell.rjust(width) if right[i] else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths))
        ]
        lines.append(GAP.join(parts).rstrip())
    return lines


def _numeric_text(cell: str) -> bool:
    return cell == DASH or (cell[:1].isdigit() or cell[:1] == "\u2212")


def duration(seconds) -> str:
    """Wall time, short: ``0.4s``, ``43s``, ``12m05s``, ``2h03m``; ``–`` when not recorded."""
    if not _is_number(seconds):
        return DASH
    seconds = float(seconds)
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _number(value, scale: float, digits: int) -> str:
    return number(float(value) * scale, digits) if _is_number(value) else DASH


def _percent(value) -> str:
    return f"{_number(value, 100, 1)}%" if _is_number(value) else DASH


def _is_number(value) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not math.isnan(float(value))
    )


def _value(value) -> str:
    return DASH if value is None else short_value(setting_text(value))


def _seed(seed) -> str:
    return str(int(seed)) if _is_number(seed) else DASH


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _some(names: list[str]) -> str:
    more = len(names) - SHOWN_FOLDERS
    return ", ".join(names[:SHOWN_FOLDERS]) + (f" and {more} more" if more > 0 else "")


def _status_counts(runs: pd.DataFrame) -> str:
    """``3 done`` / ``2 done, 1 failed``: run counts by status, in rundir's order."""
    counts = runs["status"].value_counts()
    order = [*rundir.STATUSES, *sorted(set(counts.index) - set(rundir.STATUSES))]
    return ", ".join(f"{counts[s]} {s}" for s in order if s in counts)


def _count_warnings(text) -> int:
    return len(json.loads(text)) if isinstance(text, str) and text else 0


def _final(run_dir: Path) -> dict:
    try:
        return RunDir(run_dir).final()
    except UserError:
        return {}  # read_run has already made the damage the run's error


def _versions(run_dir: Path) -> dict | None:
    return _final(run_dir).get("versions")
