"""Turning runs into the tables and figures of a paper: ``write_report(runs_dir, out_dir)``.

The tables and the figures are registries (:mod:`lt_bench.report.tables`,
:mod:`lt_bench.report.figures`): the report writes every registered table and figure that has
something to show, so adding a table or a figure never touches this file. The output folder then
holds this report only (:mod:`lt_bench.report.output`), every run the tables leave out is named
with why (:mod:`lt_bench.report.checks`), and so is every figure left out or drawn in part."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lt_bench import atomic, rundir
from lt_bench.report.checks import naming_damage, run_folders
from lt_bench.report.collect import collect
from lt_bench.report.figures import FigureContext, FigureInputs, NothingToShow, registered_figures
from lt_bench.report.loaders import read_run_tables
from lt_bench.report.notes import warnings_section
from lt_bench.report.output import fresh_folder, previous_report_files, swap_in
from lt_bench.report.tables import ReportContext, Shown, registered_tables
from lt_bench.rundir import RunDir

SELECTIONS = {"last": "the last epoch", "best_val": "the best validation epoch"}
FIGURES = tuple(entry.name for entry in registered_figures())  # stems, as .png and .pdf


def write_report(
    runs_dir: str | Path,
    out_dir: str | Path,
    figures: bool = True,
    baseline: str | None = None,
    tsne: bool = False,
) -> dict:
    """runs.csv, every registered table (md, tex, csv), report.md and the figures (png, pdf) in
    ``out_dir``, which then holds this report and nothing else (:mod:`lt_bench.report.output`).
    ``baseline`` is the row every other row is compared with (default: each row's own ``none``
    row with the same loss and settings). ``tsne``: draw the t-SNE figure too (a minute or more;
    without it the report takes seconds). Returns the runs, the files ``written``, the runs not
    in the tables (``unfinished``) and one line per run or group of runs left out, or figure not
    drawn (``skipped``)."""
    runs_dir, out_dir = Path(runs_dir), Path(os.path.realpath(out_dir))  # a link: its target
    runs = collect(runs_dir)
    stale = [folder.relative_to(runs_dir).as_posix() for folder in run_folders(runs_dir)[1]]
    context = ReportContext(runs_dir, baseline)
    done = runs[runs.status == "done"]
    # Everything is read and every table built before anything is written: an unknown baseline,
    # a damaged file or a foreign file in out_dir is refused with the output folder untouched.
    built = [(entry.name, entry.make(runs, context)) for entry in registered_tables()]
    previous_report_files(out_dir, report_file_names())
    inputs = read_figure_inputs(done, runs_dir) if figures and not done.empty else None
    drawn = draw_figures(done, inputs, baseline=baseline, tsne=tsne) if inputs else None
    notes = drawn.notes if drawn is not None else []
    folder = fresh_folder(out_dir)
    try:
        written = _write_files(folder, runs_dir, runs, built, stale, notes)
        if drawn is not None:
            written += write_figures(drawn, folder)
        swap_in(folder, out_dir, written, report_file_names() | set(written))
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # gone after a swap; a failure leaves nothing
    return {
        "runs": runs,
        "written": written,
        "unfinished": incomplete_runs(runs),
        "skipped": skipped_lines(runs, stale) + notes,
    }


def figure_notes(
    done: pd.DataFrame,
    inputs: FigureInputs | None,
    baseline: str | None = None,
    tsne: bool = False,
) -> list[str]:
    """The figures a report that draws figures leaves out, or draws without part of what they
    could show, each with why (never silently): the lines of report.md's "Figures left out",
    which ``lt-bench report`` prints. [] with ``--no-figures`` (``inputs`` None)."""
    if inputs is None:
        return []
    drawn = draw_figures(done, inputs, baseline=baseline, tsne=tsne)
    drawn.close()
    return drawn.notes


def report_file_names() -> set[str]:
    """The names a report writes (for recognising an earlier report without a manifest)."""
    tables = {f"{t.name}.{suffix}" for t in registered_tables() for suffix in ("md", "tex", "csv")}
    figures = {f"{stem}.{suffix}" for stem in FIGURES for suffix in ("png", "pdf")}
    return {"runs.csv", "report.md", "comparison_aggregate.csv"} | tables | figures


def _write_files(
    folder: Path, runs_dir: Path, runs: pd.DataFrame, built, stale, notes=()
) -> list[str]:
    """runs.csv, the tables that have something to show and report.md; returns their names."""
    written = ["runs.csv"]
    _write_csv(folder / "runs.csv", runs)
    sections = []
    for name, table in built:
        if table is not None:
            written += _write_table(folder, name, table)
            sections.append(f"## {table.title}\n\n{table.markdown()}")
    sections += _unfinished_section(runs) + _left_out_section(runs, stale)
    done = runs[runs.status == "done"]
    sections += warnings_section(done)
    if notes:
        sections.append("## Figures left out\n\n" + "\n".join(f"- {n}" for n in notes) + "\n")
    modes = done["selection"].value_counts().to_dict()
    selection = (
        "Model selection: "
        + ", ".join(f"{SELECTIONS.get(m, m)} ({n} runs)" for m, n in modes.items())
        + "; never the test set."
    )
    left_out = runs.status[runs.status != "done"].value_counts().to_dict()
    if left_out or stale:  # said at the top: the tables are not every run on disk
        counts = [f"{n} {status}" for status, n in left_out.items()]
        counts += [f"{len(stale)} stale {'copies' if len(stale) > 1 else 'copy'}"] if stale else []
        selection += f"\n\nNot in the tables: {', '.join(counts)} (each named below)."
    atomic.write_text(
        folder / "report.md",
        "\n".join([f"# Report: {runs_dir.name}\n", selection + "\n", *sections]),
    )
    return [*written, "report.md"]


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
    """Every run the tables leave out: failed, incomplete, damaged or superseded."""
    return runs[runs.status != "done"][["run_dir", "label", "dataset", "seed", "status", "error"]]


def _unfinished_section(runs: pd.DataFrame) -> list[str]:
    unfinished = runs[runs.status.isin(["failed", "incomplete"])]
    if unfinished.empty:
        return []
    lines = [
        f"- `{r.run_dir}` ({r.label}, {r.dataset}, seed {r.seed}): {r.status}"
        + (f": {r.error}" if isinstance(r.error, str) else "")
        for r in unfinished.itertuples()
    ]
    return ["## Incomplete or failed runs\n\n" + "\n".join(lines) + "\n"]


def _left_out_section(runs: pd.DataFrame, stale: list[str]) -> list[str]:
    """Damaged runs, finals of an earlier tuning search and stale copies, each named with why."""
    lines = [f"- `{r.run_dir}`: damaged: {r.error}" for r in _with_status(runs, "damaged")]
    lines += [f"- {line}" for line in _group_lines(runs, stale)]
    return ["## Runs left out\n\n" + "\n".join(lines) + "\n"] if lines else []


def skipped_lines(runs: pd.DataFrame, stale: list[str]) -> list[str]:
    """What ``lt-bench report`` prints about the runs not in the tables: one line per failed,
    incomplete or damaged run, one per group of superseded runs or stale copies."""
    lines = [
        f"  {r.status}: {r.run_dir}" + (f": {r.error}" if isinstance(r.error, str) else "")
        for r in runs[runs.status.isin(["failed", "incomplete", "damaged"])].itertuples()
    ]
    return lines + _group_lines(runs, stale)


def _group_lines(runs: pd.DataFrame, stale: list[str]) -> list[str]:
    lines = []
    superseded = sorted(r.run_dir for r in _with_status(runs, "superseded"))
    if superseded:
        lines.append(
            f"{len(superseded)} final{'s' if len(superseded) > 1 else ''} from an earlier search "
            f"left out: {', '.join(superseded)} (tuned values that tune/tuning.json no longer "
            "chooses; rerun the sweep for the current finals, or delete these folders)"
        )
    if stale:
        lines.append(
            f"{len(stale)} stale cop{'ies' if len(stale) > 1 else 'y'} skipped: {', '.join(stale)} "
            "(moved aside by sweep --rerun-stale; delete them when no longer wanted)"
        )
    return lines


def _with_status(runs: pd.DataFrame, status: str):
    return runs[runs.status == status].itertuples()


# ----------------------------------------------------------------------------- figures


def read_figure_inputs(done: pd.DataFrame, runs_dir: str | Path) -> FigureInputs:
    """What the figures read from the run folders of the done runs ``done`` (rows of
    :func:`collect` of ``runs_dir``): per run, its per-class table and training epochs; the
    focus data set and its test features per row (t-SNE, cosine heatmaps)."""
    runs_dir = Path(runs_dir)
    # Training epochs only: a second stage without epochs (tau_norm's curve, ncm) has none.
    per_class, histories = read_run_tables(done, runs_dir, training_only=True)
    focus = sorted(pd.unique(done["dataset"]), key=lambda d: -float(str(d).split("@")[-1]))[0]
    return FigureInputs(per_class, histories, focus, _features_per_method(done, runs_dir, focus))


@dataclass
class DrawnFigures:
    """Every registered figure that had something to show (stem -> matplotlib Figure, in report
    order), and the notes on those left out or drawn in part."""

    figures: dict
    notes: list[str]

    def close(self) -> None:
        """Let the figures go (nothing else to free: they were drawn without pyplot)."""
        self.figures.clear()  # no pyplot: a figure is freed with its last reference


def draw_figures(
    done: pd.DataFrame, inputs: FigureInputs, baseline: str | None = None, tsne: bool = False
) -> DrawnFigures:
    """Every registered figure of the done runs, each row in one style across them all; a figure
    with nothing to show is left out with its reason."""
    context = FigureContext.of(done, baseline, tsne)
    figures, left_out = {}, []
    for entry in registered_figures():
        try:
            figures[entry.name] = entry.make(done, inputs, context)
        except NothingToShow as why:
            left_out.append(f"{entry.name} not drawn: {why}")
    return DrawnFigures(figures, left_out + context.notes)


def write_figures(drawn: DrawnFigures, out_dir: Path) -> list[str]:
    """The drawn figures as PNG and PDF in ``out_dir``; returns the file names."""
    from lt_bench.report.figures.style import save_png_and_pdf  # matplotlib: only when drawn

    written = []
    for stem, fig in drawn.figures.items():
        written += save_png_and_pdf(fig, out_dir, stem)
    drawn.close()
    return written


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
