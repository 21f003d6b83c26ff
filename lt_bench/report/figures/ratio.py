"""Accuracy against the imbalance ratio: how each row degrades as the tail thins."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lt_bench.report import compare
from lt_bench.report.figures import style
from lt_bench.report.figures.face import (
    FigureContext,
    FigureInputs,
    NothingToShow,
    context_for,
    figure,
)
from lt_bench.report.figures.style import styled

GROUP_TITLES = {
    "few": "few-shot classes",
    "medium": "medium-shot classes",
    "many": "many-shot classes",
}
DODGE = 0.012  # decades between neighbouring rows' error bars at one ratio


def group_across_ratios(subset: pd.DataFrame) -> tuple[str | None, str | None]:
    """The rarest shot group with accuracies at two or more ratios of one data set, and, when a
    rarer group has them at one ratio only, that group (a line needs two points)."""
    skipped = None
    for group in compare.GROUPS:
        if group not in subset:
            continue
        values = pd.to_numeric(subset[group], errors="coerce")
        ratios = subset.loc[values.notna(), "split_ratio"].nunique()
        if ratios >= 2:
            return group, skipped
        if ratios == 1 and skipped is None:
            skipped = group
    return None, skipped


def ratios_by_data_set(done: pd.DataFrame) -> dict[str, list[float]]:
    """Each data set's imbalance ratios (of its done runs), in order."""
    ratios = {}
    for name, subset in done.groupby("data.name", sort=True):
        values = pd.to_numeric(subset["split_ratio"], errors="coerce").dropna().unique()
        ratios[str(name)] = sorted(float(v) for v in values)
    return ratios


@figure("accuracy_vs_ratio", position=20)
@styled
def accuracy_vs_ratio(
    done: pd.DataFrame, inputs: FigureInputs | None = None, context: FigureContext | None = None
):
    """Top-1 and the rarest non-empty shot group's accuracy (%) against imbalance ratio (log), mean
    and ± std error bars over seeds, for each data set run at two or more ratios."""
    context = context_for(done, context)
    ratios = ratios_by_data_set(done)
    names = [name for name, values in ratios.items() if len(values) >= 2]
    if not names:
        shown = ", ".join(f"{n} at {', '.join(f'{r:g}' for r in v)}" for n, v in ratios.items())
        raise NothingToShow(f"every data set ran at one imbalance ratio ({shown})")
    single = sorted(set(ratios) - set(names))
    if single:
        context.note("accuracy_vs_ratio", f"drawn without {', '.join(single)}: one imbalance ratio")
    layout = []  # (data set, metric, rows of the panel, panel index, panels)
    for name in names:
        subset = done[done["data.name"] == name]
        rows = [r for r in context.styles if r in set(subset.label)]
        panels = style.split_rows(rows, context.family)
        group, one_ratio = group_across_ratios(subset)
        if one_ratio is not None:
            context.note(
                "accuracy_vs_ratio",
                f"shows {name}'s {group or 'no'} shot group rather than {one_ratio}: "
                f"{one_ratio}-shot classes exist at one imbalance ratio only",
            )
        for metric in ("top1", group):
            if metric is not None:
                layout += [(name, metric, panel, j, len(panels)) for j, panel in enumerate(panels)]
    grid_rows = list(dict.fromkeys((name, metric) for name, metric, *_ in layout))
    counts = [sum(1 for nm, me, *_ in layout if (nm, me) == key) for key in grid_rows]
    rows_n, cols_n, places = style.panel_grid(counts, columns=2)
    fig, axes = style.new_figure(rows_n, cols_n)
    entries = {}
    for (name, metric), where in zip(grid_rows, places):
        subset = done[done["data.name"] == name]
        stats = subset.groupby(["label", "split_ratio"])[metric].agg(["mean", "std"]).mul(100)
        stats = stats.dropna(subset=["mean"])
        panels = [(rows, j, n) for nm, me, rows, j, n in layout if (nm, me) == (name, metric)]
        for (rows, j, count), (gr, gc) in zip(panels, where):
            ax = axes[gr][gc]
            for label in stats.index.get_level_values(0).unique():
                if label not in rows:
                    points = stats.loc[label]
                    style.context_line(ax, points.index, points["mean"])
            for k, label in enumerate(r for r in rows if r in stats.index.get_level_values(0)):
                points, series = stats.loc[label], context.styles[label]
                shift = 10 ** (DODGE * (k - (len(rows) - 1) / 2))
                bars = ax.errorbar(
                    np.asarray(points.index, dtype=float) * shift,
                    points["mean"],
                    yerr=points["std"].fillna(0).to_numpy(),
                    **series.line(),
                    zorder=3,
                    label=label,
                )
                entries.setdefault(label, bars)
            ax.set_xscale("log")
            ax.set_xticks(ratios[name], [f"{r:g}" for r in ratios[name]])
            ax.minorticks_off()
            low, high = min(ratios[name]), max(ratios[name])
            ax.set_xlim(low / (high / low) ** 0.12, high * (high / low) ** 0.12)
            style.percent_axis(
                ax,
                pd.concat(
                    [stats["mean"] - stats["std"].fillna(0), stats["mean"] + stats["std"].fillna(0)]
                ),
            )
            what = "all classes" if metric == "top1" else GROUP_TITLES.get(metric, metric)
            ax.set_title(f"{name}: {what}" + (f" ({j + 1}/{count})" if count > 1 else ""))
            ax.set_xlabel("imbalance ratio")
            if j == 0:
                ax.set_ylabel(
                    "top-1 accuracy (%)" if metric == "top1" else f"{metric}-shot accuracy (%)"
                )
    style.hide_empty(axes)
    style.finish(fig, {label: entries[label] for label in context.styles if label in entries})
    return fig
