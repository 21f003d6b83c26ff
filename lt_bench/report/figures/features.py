"""Figures of the test features of one data set @ ratio (the largest ratio): the cosine of centred
class means per row, and (on request: it takes about ten seconds a row) a t-SNE map per row.
Both need ``features.npz``, which light run records do not keep."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lt_bench import rundir
from lt_bench.report.figures import style
from lt_bench.report.figures.face import (
    FigureContext,
    FigureInputs,
    NothingToShow,
    context_for,
    figure,
)
from lt_bench.report.figures.style import styled

TITLE_WRAP = 26  # characters per line of a small panel's title
CLASS_LEGEND_MAX = 20  # more classes than this: a colour bar instead of a legend


def rows_with_features(
    done: pd.DataFrame, inputs: FigureInputs, context: FigureContext, stem: str
) -> list[str]:
    """The rows of the focus data set that have feature arrays (in report order); the rest are
    named in the figure notes, and no row at all raises :class:`NothingToShow`."""
    rows = [r for r in context.styles if r in set(done.loc[done.dataset == inputs.focus, "label"])]
    have = [r for r in rows if r in inputs.features]
    why = f"no {rundir.FEATURES} for {{}} on {inputs.focus} (light run records keep no feature arrays)"
    if not have:
        raise NothingToShow(why.format("any row"))
    missing = [r for r in rows if r not in inputs.features]
    if missing:
        context.note(stem, "drawn without rows " + ", ".join(missing) + ": " + why.format("them"))
    return have


def panel_grid(n: int, size: float, columns: int = 4):
    """A Figure of ``n`` square panels of ``size`` inches, at most ``columns`` a row; returns the
    Figure, the ``n`` axes in order (the unused ones hidden) and the number of columns."""
    cols = min(n, columns)
    rows = -(-n // cols)
    fig, axes = style.new_figure(rows, cols, panel=(size, size + 0.55))
    flat = list(axes.flat)
    style.hide_unused(flat[n:])
    return fig, flat[:n], cols


def centred_cosines(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cosine similarity between class means after subtracting their global mean (classes in
    sorted order)."""
    classes = np.unique(labels)
    means = np.stack([features[labels == c].mean(0) for c in classes])
    means -= means.mean(0)
    unit = means / np.linalg.norm(means, axis=1, keepdims=True)
    return unit @ unit.T


@figure("class_mean_cosine", position=40)
@styled
def class_mean_cosine(
    done: pd.DataFrame, inputs: FigureInputs, context: FigureContext | None = None
):
    """Cosine of centred class means of the test features, one heatmap per row, one colour bar.
    A neural-collapse simplex shows -1/(C-1) off the diagonal."""
    context = context_for(done, context)
    rows = rows_with_features(done, inputs, context, "class_mean_cosine")
    fig, axes, cols = panel_grid(len(rows), 1.9)
    image = None
    for i, (ax, label) in enumerate(zip(axes, rows)):
        features, labels = inputs.features[label]
        image = ax.imshow(centred_cosines(features, labels), vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_title(style.wrap(label, TITLE_WRAP), fontsize=7.5)
        ax.grid(False)
        style.integer_axis(ax, "x", nbins=4)
        style.integer_axis(ax, "y", nbins=4)
        if i % cols == 0:
            ax.set_ylabel("class")
        if i >= len(rows) - cols:
            ax.set_xlabel("class")
    fig.colorbar(image, ax=axes, shrink=0.8, label="cosine")
    fig.suptitle(f"{inputs.focus}: cosine of centred class means (test features)")
    style.finish(fig)
    return fig


def embed(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE (scikit-learn) of ``features``, on one thread: Barnes-Hut's OpenMP threads on
    cores that other work holds made it a hundred times slower (111 s for a report's t-SNE)."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    perplexity = min(30.0, (len(features) - 1) / 3)
    with threadpool_limits(limits=1):
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
            features.astype(np.float32)
        )


@figure("tsne", position=45)
@styled
def tsne(
    done: pd.DataFrame,
    inputs: FigureInputs,
    context: FigureContext | None = None,
    max_points: int = 2000,
    seed: int = 0,
):
    """2-D t-SNE of test features, one panel per row, each class its own colour and marker (a
    legend; a colour bar beyond 20 classes). Drawn only on request (``--tsne``): it is slow."""
    context = context_for(done, context)
    if not context.tsne:
        raise NothingToShow("pass --tsne")
    rows = rows_with_features(done, inputs, context, "tsne")
    fig, axes, _ = panel_grid(len(rows), 2.1)
    rng = np.random.default_rng(seed)
    classes = np.unique(np.concatenate([inputs.features[r][1] for r in rows]))
    few_classes = len(classes) <= CLASS_LEGEND_MAX
    class_styles = {c: style.series_style(i) for i, c in enumerate(classes)}
    entries, points = {}, None
    for ax, label in zip(axes, rows):
        features, labels = inputs.features[label]
        chosen = np.sort(rng.choice(len(labels), min(max_points, len(labels)), replace=False))
        xy, shown = embed(features[chosen], seed), labels[chosen]
        if few_classes:
            for c in classes:
                where = shown == c
                if where.any():
                    s = class_styles[c]
                    entries[f"class {c}"] = ax.scatter(
                        xy[where, 0], xy[where, 1], s=6, color=s.colour, marker=s.marker,
                        linewidths=0, label=f"class {c}",
                    )  # fmt: skip
        else:
            points = ax.scatter(xy[:, 0], xy[:, 1], c=shown, cmap="viridis", s=3, linewidths=0)
        ax.set_title(style.wrap(label, TITLE_WRAP), fontsize=7.5)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    fig.suptitle(f"{inputs.focus}: t-SNE of test features (seed {seed})")
    if few_classes:
        shown = {name: entries[name] for name in (f"class {c}" for c in classes) if name in entries}
        style.finish(fig, shown, markerscale=2.0)
    else:
        fig.colorbar(points, ax=axes, shrink=0.8, label="class")
        style.finish(fig)
    return fig
