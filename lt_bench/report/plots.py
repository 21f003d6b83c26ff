"""Figures, written atomically as PNG (and PDF where asked)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from lt_bench.atomic import atomic_path  # noqa: E402

GROUP_COLOURS = {"many": "#1f77b4", "medium": "#ff7f0e", "few": "#d62728"}


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> None:
    """Save ``fig`` atomically in the format its suffix names, then close it."""
    path = os.fspath(path)
    with atomic_path(path) as tmp:
        fig.savefig(
            tmp, format=os.path.splitext(path)[1].lstrip(".") or "png", dpi=dpi, bbox_inches="tight"
        )
    plt.close(fig)


def plot_class_distribution(
    counts: Sequence[int], groups: dict[str, np.ndarray], path: str | os.PathLike, title: str = ""
) -> None:
    """Per-class training-set sizes on a log scale, bars coloured by many / medium / few."""
    counts = np.asarray(counts)
    colours = np.empty(len(counts), dtype=object)
    for name, ids in groups.items():
        colours[ids] = GROUP_COLOURS[name]
    fig, ax = plt.subplots(figsize=(max(6.0, min(16.0, len(counts) * 0.08)), 3.5))
    ax.bar(
        np.arange(len(counts)), counts, width=1.0 if len(counts) > 50 else 0.8, color=list(colours)
    )
    ax.set_yscale("log")
    ax.set_xlabel("class id")
    ax.set_ylabel("training images")
    ax.set_title(title)
    handles = [
        Patch(color=colour, label=f"{name} ({len(groups.get(name, []))})")
        for name, colour in GROUP_COLOURS.items()
    ]
    ax.legend(handles=handles, frameon=False)
    save_figure(fig, path)
