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


# ----------------------------------------------------------------------------- study figures


def _save_both(fig, out_dir, stem: str) -> list[str]:
    """PNG and PDF of one figure."""
    from pathlib import Path

    out_dir = Path(out_dir)
    for suffix in ("pdf", "png"):  # save_figure closes the figure: PNG last
        path = out_dir / f"{stem}.{suffix}"
        if suffix == "pdf":
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None})
        else:
            save_figure(fig, path)
    return [f"{stem}.png", f"{stem}.pdf"]


def _grid(n: int, width: float = 4.0, height: float = 3.2):
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(
        rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _log_x(ax) -> None:
    """Log x axis with plain numbers and no crowded minor labels."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def _datasets(runs) -> list[str]:
    from lt_bench.report.tables.grid import dataset_order

    return [str(d) for d in dataset_order(runs["dataset"])]


def per_class_accuracy_plot(runs, per_class: dict, out_dir) -> list[str]:
    """Per-class test accuracy against training-set size (log x), one line per method, mean over seeds."""
    import pandas as pd

    if not per_class:
        return []
    datasets = _datasets(runs)
    fig, axes = _grid(len(datasets))
    for ax, dataset in zip(axes, datasets):
        for label, group in runs[runs.dataset == dataset].groupby("label", sort=False):
            tables = [per_class[r] for r in group.run_dir if r in per_class]
            if not tables:
                continue
            merged = (
                pd.concat(tables)
                .groupby("class")
                .agg(n_train=("n_train", "first"), accuracy=("accuracy", "mean"))
            )
            merged = merged.sort_values("n_train")
            ax.plot(merged.n_train, merged.accuracy, marker="o", markersize=3, label=label)
        _log_x(ax)
        ax.set_xlabel("training images of the class")
        ax.set_ylabel("test accuracy")
        ax.set_title(dataset)
    axes[0].legend(frameon=False, fontsize=8)
    return _save_both(fig, out_dir, "per_class_accuracy")


def accuracy_vs_ratio_plot(runs, out_dir) -> list[str]:
    """Overall and few-shot accuracy against imbalance ratio, mean +- std over seeds."""
    names = list(dict.fromkeys(runs["data.name"]))
    fig, axes = _grid(2 * len(names))
    for i, name in enumerate(names):
        subset = runs[runs["data.name"] == name]
        for ax, metric in zip(axes[2 * i : 2 * i + 2], ("top1", "few")):
            for label, group in subset.groupby("label", sort=False):
                stats = group.groupby("split_ratio")[metric].agg(["mean", "std"]).sort_index()
                ax.errorbar(
                    stats.index,
                    stats["mean"],
                    yerr=stats["std"].fillna(0),
                    marker="o",
                    capsize=3,
                    label=label,
                )
            ax.set_xscale("log")
            ratios = sorted(subset["split_ratio"].unique())
            ax.set_xticks(ratios, [f"{r:g}" for r in ratios])
            ax.minorticks_off()
            ax.set_xlabel("imbalance ratio")
            ax.set_ylabel("top-1 accuracy" if metric == "top1" else "few-shot accuracy")
            ax.set_title(f"{name}: {'all classes' if metric == 'top1' else 'few-shot classes'}")
    axes[0].legend(frameon=False, fontsize=8)
    return _save_both(fig, out_dir, "accuracy_vs_ratio")


def training_curves_plot(runs, histories: dict, out_dir) -> list[str]:
    """Total training loss per epoch, one line per method (mean over seeds), per data set."""
    import pandas as pd
    from matplotlib.ticker import MaxNLocator

    if not histories:  # no run trained epochs (second stages without any): nothing to show
        return []
    datasets = _datasets(runs)
    fig, axes = _grid(len(datasets))
    for ax, dataset in zip(axes, datasets):
        for label, group in runs[runs.dataset == dataset].groupby("label", sort=False):
            frames = [histories[r] for r in group.run_dir if r in histories]
            if not frames:
                continue
            curve = pd.concat(frames).groupby("epoch")["loss/total"].mean()
            ax.plot(curve.index, curve.values, label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss (all terms)")
        ax.set_yscale("log")
        ax.set_title(dataset)
    axes[0].legend(frameon=False, fontsize=8)
    return _save_both(fig, out_dir, "training_curves")


def cosine_heatmaps_plot(features: dict, out_dir, title: str) -> list[str]:
    """Cosine similarity of centred class-mean test features, one heatmap per method."""
    fig, axes = _grid(len(features), width=3.4, height=3.0)
    for ax, (label, (feats, labels)) in zip(axes, features.items()):
        classes = np.unique(labels)
        means = np.stack([feats[labels == c].mean(0) for c in classes])
        means -= means.mean(0)
        unit = means / np.linalg.norm(means, axis=1, keepdims=True)
        image = ax.imshow(unit @ unit.T, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_title(label)
        ax.set_xlabel("class")
        ax.set_ylabel("class")
    fig.colorbar(image, ax=axes, shrink=0.8)
    fig.suptitle(title)
    return _save_both(fig, out_dir, "class_mean_cosine")


def tsne_plot(
    features: dict, out_dir, title: str, max_points: int = 2000, seed: int = 0
) -> list[str]:
    """2-D t-SNE (scikit-learn) of test features, one panel per method, coloured by class."""
    from sklearn.manifold import TSNE

    fig, axes = _grid(len(features), width=3.4, height=3.2)
    rng = np.random.default_rng(seed)
    for ax, (label, (feats, labels)) in zip(axes, features.items()):
        chosen = rng.choice(len(labels), min(max_points, len(labels)), replace=False)
        perplexity = min(30.0, (len(chosen) - 1) / 3)
        embedded = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
            feats[chosen].astype(np.float32)
        )
        ax.scatter(
            embedded[:, 0],
            embedded[:, 1],
            c=labels[chosen],
            cmap="tab10" if labels.max() < 10 else "turbo",
            s=4,
        )
        ax.set_title(label)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    return _save_both(fig, out_dir, "tsne")


def separability_by_group_plot(runs, out_dir, dataset: str) -> list[str]:
    """Per-group separability (intra/inter ratio, kNN accuracy, centroid distance) per method."""
    metrics = [
        ("intra_inter_ratio", "intra / inter distance"),
        ("knn_accuracy", "kNN accuracy"),
        ("centroid_distance", "centroid distance"),
    ]
    subset = runs[(runs.dataset == dataset) & (runs.status == "done")]
    labels = list(dict.fromkeys(subset["label"]))
    fig, axes = _grid(len(metrics))
    width = 0.8 / max(len(labels), 1)
    for ax, (metric, name) in zip(axes, metrics):
        for i, label in enumerate(labels):
            rows = subset[subset.label == label]
            values = [
                rows[f"{metric}.{g}"].mean() if f"{metric}.{g}" in rows else np.nan
                for g in GROUP_COLOURS
            ]
            ax.bar(np.arange(3) + i * width, values, width, label=label)
        ax.set_xticks(np.arange(3) + width * (len(labels) - 1) / 2, list(GROUP_COLOURS))
        ax.set_title(name)
    axes[0].legend(frameon=False, fontsize=8)
    fig.suptitle(dataset)
    return _save_both(fig, out_dir, "separability_by_group")
