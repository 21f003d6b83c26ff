"""Figures outside the report: a split's class distribution (``lt-bench split``), and
:func:`save_figure`. The report's figures are :mod:`lt_bench.report.figures` (a registry, one file
each, every function returning a Figure)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from lt_bench.atomic import atomic_path
from lt_bench.report.figures import style


def save_figure(fig, path: str | os.PathLike, dpi: int = style.DPI) -> None:
    """Save ``fig`` atomically in the format its suffix names (a PDF without a creation date); a
    pyplot figure is closed after."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lstrip(".") or "png"
    metadata = {"CreationDate": None} if suffix == "pdf" else None
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=suffix, dpi=dpi, metadata=metadata)
    if fig.canvas.manager is not None:  # made by pyplot: it keeps a reference until closed
        import matplotlib.pyplot as plt

        plt.close(fig)


@style.styled
def class_distribution_figure(
    counts: Sequence[int], groups: dict[str, np.ndarray], title: str = ""
):
    """Per-class training-set sizes on a log scale, bars coloured by many / medium / few."""
    from matplotlib.patches import Patch

    counts = np.asarray(counts)
    colours = np.full(len(counts), "#999999", dtype=object)
    for name, ids in groups.items():
        colours[np.asarray(ids, dtype=int)] = style.GROUP_STYLES[name][0]
    width = max(5.0, min(14.0, len(counts) * 0.08))
    fig, axes = style.new_figure(1, 1, panel=(width, 2.6))
    ax = axes[0][0]
    ax.bar(
        np.arange(len(counts)), counts, width=1.0 if len(counts) > 50 else 0.8, color=list(colours)
    )
    style.log_count_axis(ax, counts, axis="y")
    style.integer_axis(ax, "x")
    ax.grid(False, axis="x")
    ax.set_xlabel("class index")
    ax.set_ylabel("training images")
    ax.set_title(title)
    hatches = {"many": "", "medium": "//", "few": "xx"}  # group told apart without colour too
    for name, ids in groups.items():
        for patch_index in np.asarray(ids, dtype=int):
            ax.patches[patch_index].set_hatch(hatches.get(name, ""))
    handles = {
        f"{name} ({len(groups.get(name, []))} classes)": Patch(
            facecolor=style.GROUP_STYLES[name][0], hatch=hatches[name], label=name
        )
        for name in style.GROUP_STYLES
    }
    style.finish(fig, handles)
    return fig


def plot_class_distribution(
    counts: Sequence[int], groups: dict[str, np.ndarray], path: str | os.PathLike, title: str = ""
) -> None:
    """:func:`class_distribution_figure`, saved to ``path`` (PNG, or the format its suffix names)."""
    save_figure(class_distribution_figure(counts, groups, title), path)
