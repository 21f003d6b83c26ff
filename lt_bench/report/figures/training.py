"""Training curves: the base classification loss per epoch.

Rows that add different loss terms (a regularizer's pull, SAR's anchor cross-entropy) have totals
that do not compare; every run logs its base classification term as ``loss/base``, and rows with
the same base loss (cross-entropy, balanced softmax, ...) share a panel, so each panel compares
like with like.
"""

from __future__ import annotations

import pandas as pd

from lt_bench.report.figures import style
from lt_bench.report.figures.face import (
    FigureContext,
    FigureInputs,
    NothingToShow,
    context_for,
    figure,
)
from lt_bench.report.figures.per_class import dataset_order
from lt_bench.report.figures.style import styled
from lt_bench.report.loaders import with_run_columns

BASE_TERM = "loss/base"  # the engine's base classification loss (lt_bench.engine)


LOSS_NAMES = {"ce": "cross-entropy"}


def base_loss(row) -> str:
    """The base loss a run trains with: ``loss.name``, with its re-weighting."""
    name = str(row.get("loss.name", "ce"))
    name = LOSS_NAMES.get(name, name.replace("_", " "))
    reweight = row.get("loss.reweight")
    return name + (
        f" ({reweight} weights)" if isinstance(reweight, str) and reweight != "none" else ""
    )


def loss_curves(done: pd.DataFrame, histories: dict, dataset: str) -> dict[str, pd.DataFrame]:
    """Per row label on ``dataset`` with training epochs: a frame indexed by epoch with the
    ``mean`` and ``std`` over seeds of the base loss (``loss/total`` for runs older than
    ``loss/base``). ``histories``: run folder -> its training epochs (:func:`read_run_tables`)."""
    values = {
        run: f.assign(value=f[BASE_TERM] if BASE_TERM in f else f["loss/total"])[["epoch", "value"]]
        for run, f in histories.items()
    }
    frame = with_run_columns(done[done.dataset == dataset], values)  # = load_curves's frame
    return {
        label: group.groupby("epoch")["value"].agg(["mean", "std"])
        for label, group in frame.groupby("label", sort=False)
    }


@figure("training_curves", position=30)
@styled
def training_curves(done: pd.DataFrame, inputs: FigureInputs, context: FigureContext | None = None):
    """The base classification loss per epoch (log), mean ± std band over seeds; one panel per data
    set and base loss (more when one would carry too many rows)."""
    context = context_for(done, context)
    if not inputs.histories:  # second stages without epochs (tau_norm, ncm) have none
        raise NothingToShow("no done run has training epochs in its metrics.jsonl")
    losses = {
        label: base_loss(row)
        for label, row in done.drop_duplicates("label").set_index("label").iterrows()
    }
    grid = []  # one grid row per data set: [(base loss, rows), ...]
    curves = {}
    for dataset in dataset_order(done.dataset):
        curves[dataset] = loss_curves(done, inputs.histories, dataset)
        rows = [r for r in context.styles if r in curves[dataset]]
        panels = []
        for loss in dict.fromkeys(losses[r] for r in rows):
            mine = [r for r in rows if losses[r] == loss]
            panels += [(loss, part) for part in style.split_rows(mine, context.family)]
        if panels:
            grid.append((dataset, panels))
    rows_n, cols_n, places = style.panel_grid([len(panels) for _, panels in grid])
    fig, axes = style.new_figure(rows_n, cols_n)
    entries = {}
    for (dataset, panels), where in zip(grid, places):
        for (loss, rows), (gr, gc) in zip(panels, where):
            ax = axes[gr][gc]
            same_loss = [label for label in curves[dataset] if losses[label] == loss]
            style.mean_curves(
                ax,
                {label: curves[dataset][label] for label in same_loss},
                rows,
                context.styles,
                entries,
                lambda c: c.index,
            )
            values = pd.concat([curves[dataset][label]["mean"] for label in same_loss])
            if values.min() > 0 and values.max() / values.min() >= 3:  # else log shows nothing more
                style.log_count_axis(ax, values, axis="y")
            style.integer_axis(ax, "x")
            ax.set_title(f"{dataset}: {loss}")
            ax.set_xlabel("epoch")
            if gc == 0:
                ax.set_ylabel("training loss (base term)")
    style.hide_empty(axes)
    style.finish(fig, {label: entries[label] for label in context.styles if label in entries})
    return fig
