"""Turning runs into the tables and figures of a paper: ``write_report(runs_dir, out_dir)``.

The tables are a registry (:mod:`lt_bench.report.tables`): the report writes every registered table
that has something to show, so adding a table never touches this file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lt_bench import atomic, rundir
from lt_bench.report.collect import collect, naming_damage
from lt_bench.report.tables import ReportContext, Shown, registered_tables
from lt_bench.rundir import RunDir

SELECTIONS = {"last": "the last epoch", "best_val": "the best validation epoch"}


def write_report(
    runs_dir: str | Path, out_dir: str | Path, figures: bool = True, baseline: str | None = None
) -> dict:
    """runs.csv, every registered table (md, tex, csv), report.md and the figures (png, pdf) in
    ``out_dir``. ``baseline`` is the row every other row is compared with (default: each row's own
    ``none`` row with the same loss and settings)."""
    runs_dir, out_dir = Path(runs_dir), Path(out_dir)
    runs = collect(runs_dir)
    context = ReportContext(runs_dir, baseline)
    done = runs[runs.status == "done"]
    # Everything is read and every table built before anything is written: an unknown baseline or
    # a damaged file is refused with the output folder untouched.
    built = [(entry.name, entry.make(runs, context)) for entry in registered_tables()]
    drawn = read_figure_inputs(done, runs_dir) if figures and not done.empty else None
    out_dir.mkdir(parents=True, exist_ok=True)
    written = ["runs.csv"]
    _write_csv(out_dir / "runs.csv", runs)
    sections = []
    for name, table in built:
        if table is not None:
            written += _write_table(out_dir, name, table)
            sections.append(f"## {table.title}\n\n{table.markdown()}")
    unfinished = incomplete_runs(runs)
    sections += _unfinished_section(unfinished) + _warnings_section(done)
    modes = done["selection"].value_counts().to_dict()
    selection = (
        "Model selection: "
        + ", ".join(f"{SELECTIONS.get(m, m)} ({n} runs)" for m, n in modes.items())
        + "; never the test set."
    )
    atomic.write_text(
        out_dir / "report.md",
        "\n".join([f"# Report: {runs_dir.name}\n", selection + "\n", *sections]),
    )
    written.append("report.md")
    if drawn is not None:
        written += write_figures(done, drawn, out_dir)
    return {"runs": runs, "written": written, "unfinished": unfinished}


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    with atomic.atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def _write_table(out_dir: Path, name: str, table: Shown) -> list[str]:
    """``<name>.md``, ``<name>.tex`` (when the table has one), ``<name>.csv`` and its extra CSVs."""
    atomic.write_text(out_dir / f"{name}.md", table.markdown())
    written = [f"{name}.md"]
    latex = table.latex()
    if latex is not None:
        atomic.write_text(out_dir / f"{name}.tex", latex)
        written.append(f"{name}.tex")
    csvs = {f"{name}.csv": table.frame(), **table.extra_csv()}
    for file_name, frame in csvs.items():
        _write_csv(out_dir / file_name, frame)
    return written + list(csvs)


def incomplete_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs.status != "done"][["run_dir", "label", "dataset", "seed", "status", "error"]]


def _unfinished_section(unfinished: pd.DataFrame) -> list[str]:
    if unfinished.empty:
        return []
    lines = [
        f"- `{r.run_dir}` ({r.label}, {r.dataset}, seed {r.seed}): {r.status}"
        + (f": {r.error}" if isinstance(r.error, str) else "")
        for r in unfinished.itertuples()
    ]
    return ["## Incomplete or failed runs\n\n" + "\n".join(lines) + "\n"]


def _warnings_section(done: pd.DataFrame) -> list[str]:
    """Every warning sentence of every done run (the tables mark its row †)."""
    warned = [
        (r.run_dir, r.label, r.dataset, r.seed, json.loads(r.warnings))
        for r in done.itertuples()
        if isinstance(r.warnings, str) and json.loads(r.warnings)
    ]
    if not warned:
        return []
    lines = [
        f"- `{run_dir}` ({label}, {dataset}, seed {seed}): {sentence}"
        for run_dir, label, dataset, seed, sentences in warned
        for sentence in sentences
    ]
    return [
        f"## Warnings ({len(warned)} of {len(done)} runs; rows marked † in the tables)\n\n"
        + "\n".join(lines)
        + "\n"
    ]


# ----------------------------------------------------------------------------- figures


@dataclass
class FigureInputs:
    """What the figures read from the run folders, beside the runs DataFrame."""

    per_class: dict  # run folder -> its per-class table
    histories: dict  # run folder -> its metrics, epoch by epoch
    focus: str  # the data set @ ratio with the largest ratio: t-SNE and cosine heatmaps
    features: dict  # row label -> (test features, labels) of its lowest-seed run on ``focus``


def read_figure_inputs(done: pd.DataFrame, runs_dir: Path) -> FigureInputs:
    per_class, histories = _load_per_run(done, runs_dir)
    focus = sorted(pd.unique(done["dataset"]), key=lambda d: -float(str(d).split("@")[-1]))[0]
    return FigureInputs(per_class, histories, focus, _features_per_method(done, runs_dir, focus))


def write_figures(done: pd.DataFrame, drawn: FigureInputs, out_dir: Path) -> list[str]:
    """The study figures of the done runs, as PNG and PDF."""
    from lt_bench.report import plots  # matplotlib: only when figures are drawn

    written = plots.per_class_accuracy_plot(done, drawn.per_class, out_dir)
    written += plots.accuracy_vs_ratio_plot(done, out_dir)
    written += plots.training_curves_plot(done, drawn.histories, out_dir)
    focus, features = drawn.focus, drawn.features
    if features:
        written += plots.cosine_heatmaps_plot(
            features, out_dir, f"{focus}: cosine of centred class means"
        )
        written += plots.tsne_plot(features, out_dir, f"{focus}: t-SNE of test features")
    written += plots.separability_by_group_plot(done, out_dir, focus)
    return written


def _load_per_run(runs: pd.DataFrame, runs_dir: Path) -> tuple[dict, dict]:
    """Per run folder: its per-class table and its metrics history (where it has them)."""
    per_class, histories = {}, {}
    for name in runs.run_dir:
        run = RunDir(runs_dir / name)
        path = run / rundir.PER_CLASS
        if path.exists():
            with naming_damage(path):
                per_class[name] = pd.read_csv(path)
        rows = run.metrics()
        if rows:
            histories[name] = pd.DataFrame(rows)
    return per_class, histories


def _features_per_method(runs: pd.DataFrame, runs_dir: Path, dataset: str) -> dict:
    """Test features of the lowest-seed run of each method on ``dataset``."""
    out = {}
    subset = runs[runs.dataset == dataset].sort_values("seed", kind="stable")
    for label, group in subset.groupby("label", sort=False):
        path = RunDir(runs_dir / group.run_dir.iloc[0]) / rundir.FEATURES
        if path.exists():
            with naming_damage(path), np.load(path) as arrays:
                out[label] = (arrays["features"].astype(np.float32), arrays["labels"])
    return out
