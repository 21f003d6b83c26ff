"""Per-class test accuracy against the class's training-set size: where the long tail hurts."""

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
from lt_bench.report.figures.style import styled
from lt_bench.report.loaders import with_run_columns


def dataset_order(values) -> list[str]:
    """Data sets by name, then by ratio (``cifar10_lt@10`` before ``cifar10_lt@100``)."""

    def ratio(value) -> float:
        try:
            return float(str(value).split("@")[-1])
        except ValueError:
            return float("inf")

    return sorted((str(v) for v in pd.unique(values)), key=lambda v: (v.split("@")[0], ratio(v)))


def class_curves(done: pd.DataFrame, per_class: dict, dataset: str) -> dict[str, pd.DataFrame]:
    """Per row label on ``dataset``: a frame indexed by class with its training images
    (``n_train``) and the ``mean`` and ``std`` over seeds of its test accuracy in %, sorted by
    class size. ``per_class``: run folder -> its per_class.csv (:func:`read_run_tables`)."""
    subset = done[(done.dataset == dataset) & done.run_dir.isin(per_class.keys())]
    if subset.empty:
        return {}
    tables = with_run_columns(subset, per_class)  # = load_per_class's frame, these runs
    stats = tables.groupby(["label", "class"], sort=False).agg(
        n_train=("n_train", "first"), mean=("accuracy", "mean"), std=("accuracy", "std")
    )
    stats[["mean", "std"]] *= 100
    return {
        label: curve.droplevel(0).sort_values("n_train", kind="stable")
        for label, curve in stats.groupby(level=0, sort=False)
    }


@figure("per_class_accuracy", position=10)
@styled
def per_class_accuracy(
    done: pd.DataFrame, inputs: FigureInputs, context: FigureContext | None = None
):
    """Per-class test accuracy (%) against training images of the class (log), one line per row
    with a band of ± std over seeds; one panel per data set, and small multiples (the other rows in
    grey) when a data set has more rows than one axis carries."""
    context = context_for(done, context)
    if not inputs.per_class:
        raise NothingToShow("no done run has a per_class.csv")
    curves = {d: class_curves(done, inputs.per_class, d) for d in dataset_order(done.dataset)}
    datasets = [d for d, rows in curves.items() if rows]
    panels = {
        d: style.split_rows([r for r in context.styles if r in curves[d]], context.family)
        for d in datasets
    }
    rows_n, cols_n, places = style.panel_grid([len(panels[d]) for d in datasets])
    fig, axes = style.new_figure(rows_n, cols_n, sharey=True)
    entries = {}
    for dataset, where in zip(datasets, places):
        sizes = pd.concat([c.n_train for c in curves[dataset].values()])
        count = len(panels[dataset])
        for j, (rows, (gr, gc)) in enumerate(zip(panels[dataset], where)):
            ax = axes[gr][gc]
            style.mean_curves(
                ax, curves[dataset], rows, context.styles, entries, lambda c: c.n_train
            )
            style.log_count_axis(ax, sizes)
            ax.set_ylim(-4, 104)
            ax.set_title(dataset if count == 1 else f"{dataset} ({j + 1}/{count})")
            ax.set_xlabel("training images of the class")
            if gc == 0:
                ax.set_ylabel("test accuracy (%)")
    style.hide_empty(axes)
    style.finish(fig, {label: entries[label] for label in context.styles if label in entries})
    return fig
