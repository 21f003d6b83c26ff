"""Feature separability per shot group: one dot per row and group, rows as categories."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lt_bench.report.figures import style
from lt_bench.report.figures.face import (
    FigureContext,
    FigureInputs,
    NothingToShow,
    context_for,
    figure,
)
from lt_bench.report.figures.style import styled

METRICS = (  # separability.json's per-group values: (key, axis label, scale)
    ("intra_inter_ratio", "intra / inter distance\n(lower: better separated)", 1.0),
    ("knn_accuracy", "kNN accuracy (%)", 100.0),
    ("centroid_distance", "centroid distance\n(to the true class mean)", 1.0),
)
GROUPS = ("many", "medium", "few")
DODGE = 0.18  # category units between the groups' dots of one row


@figure("separability_by_group", position=50)
@styled
def separability_by_group(
    done: pd.DataFrame, inputs: FigureInputs, context: FigureContext | None = None
):
    """Per row on the focus data set: intra/inter distance ratio, kNN accuracy and centroid distance
    of each shot group, mean with ± std error bars over seeds."""
    context = context_for(done, context)
    subset = done[done.dataset == inputs.focus]
    columns = [f"{m}.{g}" for m, _, _ in METRICS for g in GROUPS]
    present = [
        c
        for c in columns
        if c in subset and pd.to_numeric(subset[c], errors="coerce").notna().any()
    ]
    if not present:
        raise NothingToShow(f"no separability.json in the done runs on {inputs.focus}")
    metrics = [m for m in METRICS if any(c.startswith(m[0] + ".") for c in present)]
    groups = [g for g in GROUPS if any(c.endswith("." + g) for c in present)]
    empty = [g for g in GROUPS if g not in groups]
    if empty:
        context.note(
            "separability_by_group",
            f"drawn without the {' and '.join(empty)} group{'s' if len(empty) > 1 else ''}: "
            f"no class in {'them' if len(empty) > 1 else 'it'} on {inputs.focus}",
        )
    rows = [r for r in context.styles if r in set(subset.label)]
    height = style.category_height(len(rows))
    fig, axes = style.new_figure(1, len(metrics), panel=(2.6, height), sharey=True)
    entries = {}
    for ax, (metric, name, scale) in zip(axes[0], metrics):
        ys = style.category_axis(ax, rows)  # shared: the inner panels hide the labels
        shown = []
        for k, group in enumerate(groups):
            column = f"{metric}.{group}"
            if column not in subset:
                continue
            values = pd.to_numeric(subset[column], errors="coerce") * scale
            stats = values.groupby(subset.label).agg(["mean", "std"]).reindex(rows)
            offset = DODGE * ((len(groups) - 1) / 2 - k)
            colour, marker = style.GROUP_STYLES[group]
            keep = stats["mean"].notna().to_numpy()
            if not keep.any():
                continue
            shown += list(stats["mean"] - stats["std"].fillna(0)) + list(
                stats["mean"] + stats["std"].fillna(0)
            )
            dots = ax.errorbar(
                stats["mean"].to_numpy()[keep],
                (np.asarray(ys) + offset)[keep],
                xerr=stats["std"].fillna(0).to_numpy()[keep],
                color=colour, marker=marker, linestyle="none", markersize=4.5,
                label=f"{group} classes",
            )  # fmt: skip
            entries.setdefault(f"{group} classes", dots)
        ax.set_xlabel(name)
        if scale == 100.0:
            style.percent_axis(ax, shown, axis="x")
    fig.suptitle(f"{inputs.focus}: feature separability by shot group (test features)")
    style.finish(fig, entries)
    return fig
