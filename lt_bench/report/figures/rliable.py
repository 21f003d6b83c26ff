"""The figures reviewers ask for since Agarwal et al. (NeurIPS 2021, rliable), across the study's
tasks (each data set @ ratio): interval estimates of the mean and IQM, the probability of
improvement over each row's baseline, and performance profiles. The numbers are
:mod:`lt_bench.report.compare`'s (the comparison table's) and :mod:`lt_bench.report.estimates`'."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lt_bench.report import compare, estimates
from lt_bench.report.figures import style
from lt_bench.report.figures.face import (
    FigureContext,
    FigureInputs,
    NothingToShow,
    context_for,
    figure,
)
from lt_bench.report.figures.style import styled

NORMALISED = "normalised top-1\n(per data set @ ratio: 0 worst row, 1 best)"
PROFILE_TAUS = 201  # thresholds of a drawn profile


def _interval_note(stem: str, notes: pd.Series, context: FigureContext, what: str) -> None:
    """One note for the rows drawn without an interval (compare's reason, once)."""
    reasons = sorted({n for n in notes if isinstance(n, str) and n.startswith(compare.NO_INTERVAL)})
    if reasons:
        why = "; ".join(r.removeprefix(f"{compare.NO_INTERVAL}: ") for r in reasons)
        context.note(stem, f"drawn without {what}: {why} ({estimates.interval_rule()})")


def _uneven_note(stem: str, rows: list[str], context: FigureContext) -> None:
    if rows:
        context.note(
            stem,
            f"drawn without rows {', '.join(rows)}: not run with the same number of seeds on every "
            "data set @ ratio",
        )


def _over_tasks(done: pd.DataFrame) -> str:
    tasks = list(pd.unique(done.dataset))
    return f"on {tasks[0]}" if len(tasks) == 1 else f"averaged over {len(tasks)} data sets @ ratio"


def _interval_panel(ax, rows, points, lows, highs, context: FigureContext) -> None:
    """One point per row (its style), with a horizontal 95% interval where there is one."""
    ys = dict(zip(rows, style.category_axis(ax, rows)))
    for row in rows:
        series = context.styles[row]
        point, low, high = points[row], lows[row], highs[row]
        if math.isnan(low):
            ax.plot([point], [ys[row]], **series.point(), markersize=5.5, zorder=3, label=row)
        else:
            ax.errorbar(
                [point], [ys[row]], xerr=[[point - low], [high - point]], **series.point(),
                markersize=5.5, elinewidth=2.2, capsize=3, zorder=3, label=row,
            )  # fmt: skip


@figure("interval_estimates", position=60)
@styled
def interval_estimates(
    done: pd.DataFrame, inputs: FigureInputs | None = None, context: FigureContext | None = None
):
    """Per row, across all runs and tasks: the mean and the IQM of top-1 normalised per task, each
    with its 95% stratified-bootstrap interval (the IQM's is the comparison table's)."""
    context = context_for(done, context)
    if done.dataset.nunique() < 2:  # min-max normalised over one task only ranks the rows
        raise NothingToShow(
            "one data set @ ratio: scores normalised across tasks need two or more (the main "
            "table has each row's mean ± std)"
        )
    table = estimates.interval_estimates(done)
    drawn = table[table["iqm"].notna()]
    if drawn["row"].nunique() < 2:
        raise NothingToShow("fewer than two rows ran the same seeds on every data set @ ratio")
    _uneven_note("interval_estimates", [r for r in table.row if r not in set(drawn.row)], context)
    _interval_note("interval_estimates", drawn["note"], context, "intervals")
    rows = [r for r in context.styles if r in set(drawn.row)]
    by_row = drawn.set_index("row")
    fig, axes = style.new_figure(1, 2, panel=(2.7, style.category_height(len(rows))), sharey=True)
    for ax, (what, title) in zip(axes[0], (("mean", "Mean"), ("iqm", "IQM"))):
        _interval_panel(
            ax, rows, by_row[what], by_row[f"{what}_low"], by_row[f"{what}_high"], context
        )
        ax.set_title(title)
        ends = pd.concat([by_row[what], by_row[f"{what}_low"], by_row[f"{what}_high"]]).dropna()
        low, high = min(0.0, ends.min()), max(1.0, ends.max())
        ax.set_xlim(low - 0.04 * (high - low), high + 0.04 * (high - low))
    fig.supxlabel(NORMALISED.replace("\n", " "), fontsize=8)
    how = "95% stratified-bootstrap intervals" if drawn.mean_low.notna().any() else "no intervals"
    fig.suptitle(
        f"Top-1 over all {len(done)} runs {_over_tasks(done).removeprefix('averaged ')} ({how})"
    )
    style.finish(fig)
    return fig


@figure("probability_of_improvement", position=70)
@styled
def probability_of_improvement(
    done: pd.DataFrame, inputs: FigureInputs | None = None, context: FigureContext | None = None
):
    """Per row: rliable's probability that a run of the row beats a run of its baseline on top-1,
    averaged over tasks, with its 95% stratified independent bootstrap interval (the comparison
    table's numbers)."""
    context = context_for(done, context)
    table = compare.aggregate_improvement(done, context.baseline)
    if table.empty:
        raise NothingToShow(
            "no row has a baseline (a none row with the same settings, or --baseline)"
        )
    drawn = table[table["p_improvement"].notna()]
    _uneven_note(
        "probability_of_improvement", [r for r in table.row if r not in set(drawn.row)], context
    )
    if drawn.empty:
        raise NothingToShow("no row ran the same seeds as its baseline on every data set @ ratio")
    _interval_note("probability_of_improvement", drawn["note"], context, "intervals")
    rows = [r for r in context.styles if r in set(drawn.row)]
    by_row = drawn.set_index("row")
    names = [
        style.wrap(row, style.TICK_WRAP)
        + "\nvs "
        + style.wrap(by_row.loc[row, "baseline"], style.TICK_WRAP)
        for row in rows
    ]
    fig, axes = style.new_figure(1, 1, panel=(4.4, style.category_height(len(rows), lines=2)))
    ax = axes[0][0]
    ax.axvline(0.5, color="#777777", linestyle="--", linewidth=0.9, zorder=1)
    _interval_panel(ax, rows, by_row["p_improvement"], by_row["low"], by_row["high"], context)
    style.category_axis(ax, names)  # the same positions, named with each row's baseline
    ax.set_xlim(-0.03, 1.03)
    ax.set_xlabel("P(a run of the row beats a run of its baseline on top-1)")
    how = "95% stratified-bootstrap intervals" if drawn.low.notna().any() else "no intervals"
    fig.suptitle(f"Probability of improvement {_over_tasks(done)} ({how})")
    style.finish(fig)
    return fig


@figure("performance_profile", position=80)
@styled
def performance_profile(
    done: pd.DataFrame,
    inputs: FigureInputs | None = None,
    context: FigureContext | None = None,
    reps: int = estimates.PROFILE_RESAMPLES,
    seed: int = 0,
):
    """Per row: the fraction of its runs (over all tasks) with top-1 above each threshold tau, with
    a 95% stratified-bootstrap band where there are two or more tasks and runs per task; small
    multiples with the other rows in grey when there are many rows."""
    context = context_for(done, context)
    scores = done.assign(top1=pd.to_numeric(done["top1"], errors="coerce") * 100).dropna(
        subset=["top1"]
    )
    if scores.empty:
        raise NothingToShow("no done run has a top-1 accuracy")
    rows = [r for r in context.styles if r in set(scores.label)]
    low, high = scores.top1.min(), scores.top1.max()
    margin = max(1.0, 0.05 * (high - low))
    taus = np.linspace(max(0.0, low - margin), min(100.0, high + margin), PROFILE_TAUS)
    tasks = list(pd.unique(scores.dataset))
    profiles, bands, banded = {}, {}, []
    rng = np.random.default_rng(seed)
    for row in rows:
        profiles[row] = estimates.performance_profile(scores.loc[scores.label == row, "top1"], taus)
        matrix = compare.score_matrix(scores, row, tasks)
        if matrix is not None and estimates.no_interval(len(matrix), len(tasks)) is None:
            bands[row] = estimates.profile_band(matrix, taus, reps, rng)
            banded.append(row)
    if len(banded) < len(rows):
        fewest = int(scores.groupby(["dataset", "label"]).size().min())
        why = estimates.no_interval(fewest, len(tasks)) or "uneven seeds across data sets @ ratio"
        unbanded = (
            "every row" if not banded else "rows " + ", ".join(r for r in rows if r not in banded)
        )
        why = why.removeprefix(compare.NO_INTERVAL + ": ")
        context.note(
            "performance_profile",
            f"drawn without bands for {unbanded}: {why} ({estimates.interval_rule()})",
        )
    panels = style.split_rows(rows, context.family)
    panel = style.PANEL if len(panels) > 1 else (4.0, style.PANEL[1])  # one: room for its title
    fig, axes = style.new_figure(1, len(panels), panel=panel, sharey=True)
    entries = {}
    for j, (ax, panel) in enumerate(zip(axes[0], panels)):
        for row in rows:
            if row not in panel:
                style.context_line(ax, taus, profiles[row])
        for row in panel:
            series = context.styles[row]
            if row in bands:
                ax.fill_between(
                    taus, *bands[row], color=series.colour, alpha=0.15, linewidth=0, zorder=2
                )
            steps = np.flatnonzero(np.diff(profiles[row]) != 0)  # a marker where a run's score lies
            steps = steps[np.linspace(0, len(steps) - 1, min(len(steps), 8)).round().astype(int)]
            (line,) = ax.plot(
                taus, profiles[row], **series.line(markevery=list(steps)), zorder=3, label=row
            )
            entries[row] = line
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlim(taus[0], taus[-1])
        ax.set_xlabel("τ: top-1 accuracy (%)")
        if j == 0:
            ax.set_ylabel("fraction of runs with top-1 > τ")
        if len(panels) > 1:
            ax.set_title(f"({j + 1}/{len(panels)})")
    fig.suptitle(
        f"Performance profiles: {len(scores)} runs {_over_tasks(done).removeprefix('averaged ')}"
    )
    style.finish(fig, {row: entries[row] for row in rows})
    return fig
