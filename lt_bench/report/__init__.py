"""Turning runs into the tables and figures of a paper: ``write_report(runs_dir, out_dir)``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from lt_bench import atomic
from lt_bench.report import compare, plots
from lt_bench.report.collect import collect
from lt_bench.report.tables import (
    centroid_table,
    incomplete_runs,
    main_table,
    ratio_table,
    separability_table,
)

TABLES = {
    "main_table": main_table,
    "separability_table": separability_table,
    "centroid_table": centroid_table,
    "ratio_table": ratio_table,
}


def _load_per_run(runs: pd.DataFrame, runs_dir: Path):
    per_class, histories = {}, {}
    for run in runs.run_dir:
        folder = runs_dir / run
        if (folder / "per_class.csv").exists():
            per_class[run] = pd.read_csv(folder / "per_class.csv")
        if (folder / "metrics.jsonl").exists():
            rows = [
                json.loads(line)
                for line in (folder / "metrics.jsonl").read_text().splitlines()
                if line.strip()
            ]
            histories[run] = pd.DataFrame(rows)
    return per_class, histories


def _features_per_method(runs: pd.DataFrame, runs_dir: Path, dataset: str) -> dict:
    """Test features of the lowest-seed run of each method on ``dataset``."""
    out = {}
    subset = runs[runs.dataset == dataset].sort_values("seed", kind="stable")
    for label, group in subset.groupby("label", sort=False):
        path = runs_dir / group.run_dir.iloc[0] / "features.npz"
        if path.exists():
            with np.load(path) as arrays:
                out[label] = (arrays["features"].astype(np.float32), arrays["labels"])
    return out


def write_report(
    runs_dir: str | Path, out_dir: str | Path, figures: bool = True, baseline: str | None = None
) -> dict:
    """runs.csv, the three tables and the paired comparison (md, tex, csv), report.md and the
    figures (png, pdf) in ``out_dir``. ``baseline`` is the row every other row is compared with
    (default: each row's own ``none`` row with the same loss and settings)."""
    runs_dir, out_dir = Path(runs_dir), Path(out_dir)
    runs = collect(runs_dir)
    compared = compare.comparisons(runs, baseline)  # refuses an unknown baseline before writing
    out_dir.mkdir(parents=True, exist_ok=True)
    written = ["runs.csv"]
    with atomic.atomic_path(out_dir / "runs.csv") as tmp:
        runs.to_csv(tmp, index=False)

    done = runs[runs.status == "done"]
    sections = []
    for name, make in TABLES.items():
        if done.empty:
            break
        table = make(runs)
        atomic.write_text(out_dir / f"{name}.md", table.markdown())
        atomic.write_text(out_dir / f"{name}.tex", table.latex())
        with atomic.atomic_path(out_dir / f"{name}.csv") as tmp:
            table.frame().to_csv(tmp, index=False)
        written += [f"{name}.md", f"{name}.tex", f"{name}.csv"]
        sections.append(f"## {table.title}\n\n{table.markdown()}")
    if not done.empty:
        aggregate = compare.aggregate_iqm(runs)
        markdown = compare.comparison_markdown(compared, aggregate)
        atomic.write_text(out_dir / "comparison_table.md", markdown)
        atomic.write_text(out_dir / "comparison_table.tex", compare.comparison_latex(compared))
        with atomic.atomic_path(out_dir / "comparison_table.csv") as tmp:
            compared.to_csv(tmp, index=False)
        with atomic.atomic_path(out_dir / "comparison_aggregate.csv") as tmp:
            aggregate.to_csv(tmp, index=False)
        written += [
            "comparison_table.md",
            "comparison_table.tex",
            "comparison_table.csv",
            "comparison_aggregate.csv",
        ]
        sections.append(f"## Paired comparisons\n\n{markdown}")
    tuning_path = runs_dir / "tune" / "tuning.json"
    if tuning_path.exists():  # a tuned study: its search, trial by trial
        from lt_bench import tune

        record = json.loads(tuning_path.read_text())
        markdown = tune.record_markdown(record)
        atomic.write_text(out_dir / "tuning.md", markdown)
        with atomic.atomic_path(out_dir / "tuning.csv") as tmp:
            tune.record_frame(record).to_csv(tmp, index=False)
        written += ["tuning.md", "tuning.csv"]
        sections.append(f"## Tuning\n\n{markdown}")
    unfinished = incomplete_runs(runs)
    if len(unfinished):
        lines = [
            f"- `{r.run_dir}` ({r.label}, {r.dataset}, seed {r.seed}): {r.status}"
            + (f": {r.error}" if isinstance(r.error, str) else "")
            for r in unfinished.itertuples()
        ]
        sections.append("## Incomplete or failed runs\n\n" + "\n".join(lines) + "\n")
    warned = [
        (r.run_dir, r.label, r.dataset, r.seed, json.loads(r.warnings))
        for r in done.itertuples()
        if isinstance(r.warnings, str) and json.loads(r.warnings)
    ]
    if warned:
        lines = [
            f"- `{run_dir}` ({label}, {dataset}, seed {seed}): {sentence}"
            for run_dir, label, dataset, seed, sentences in warned
            for sentence in sentences
        ]
        sections.append(
            f"## Warnings ({len(warned)} of {len(done)} runs; rows marked † in the tables)\n\n"
            + "\n".join(lines)
            + "\n"
        )
    modes = runs.loc[runs.status == "done", "selection"].value_counts().to_dict()
    names = {"last": "the last epoch", "best_val": "the best validation epoch"}
    selection = (
        "Model selection: "
        + ", ".join(f"{names.get(m, m)} ({n} runs)" for m, n in modes.items())
        + ("; never the test set.")
    )
    atomic.write_text(
        out_dir / "report.md",
        "\n".join([f"# Report: {runs_dir.name}\n", selection + "\n", *sections]),
    )
    written.append("report.md")

    if figures and not done.empty:
        per_class, histories = _load_per_run(done, runs_dir)
        written += plots.per_class_accuracy_plot(done, per_class, out_dir)
        written += plots.accuracy_vs_ratio_plot(done, out_dir)
        written += plots.training_curves_plot(done, histories, out_dir)
        focus = sorted(pd.unique(done["dataset"]), key=lambda d: -float(str(d).split("@")[-1]))[0]
        features = _features_per_method(done, runs_dir, focus)
        if features:
            written += plots.cosine_heatmaps_plot(
                features, out_dir, f"{focus}: cosine of centred class means"
            )
            written += plots.tsne_plot(features, out_dir, f"{focus}: t-SNE of test features")
        written += plots.separability_by_group_plot(done, out_dir, focus)
    return {"runs": runs, "written": written, "unfinished": unfinished}
