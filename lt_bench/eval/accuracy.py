"""Top-k, balanced, per-class and many / medium / few accuracy.

Group accuracy is the mean of the per-class accuracies of the classes in the group (the
convention of OLTR and Decoupling), never the pooled accuracy over the group's images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lt_bench.data.splits import GROUPS, choose_shot_groups


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def per_class_accuracy(preds: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Accuracy of each class on its test images; NaN for a class with no test image."""
    total = np.bincount(labels, minlength=num_classes).astype(np.float64)
    correct = np.bincount(labels[preds == labels], minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, correct / np.maximum(total, 1), np.nan)


def group_accuracy(per_class: np.ndarray, groups: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean per-class accuracy in each shot group (NaN for an empty group)."""
    out = {}
    for name in GROUPS:
        values = per_class[groups[name]]
        values = values[~np.isnan(values)]
        out[name] = float(values.mean()) if len(values) else float("nan")
    return out


def summarize(
    logits: np.ndarray, labels: np.ndarray, train_counts: Sequence[int], grouping: str = "auto"
) -> tuple[dict, np.ndarray, dict[str, np.ndarray]]:
    """(metrics, per-class accuracy, groups) for one set of test predictions."""
    num_classes = len(train_counts)
    preds = logits.argmax(axis=1)
    per_class = per_class_accuracy(preds, labels, num_classes)
    groups, used = choose_shot_groups(train_counts, grouping)
    metrics = {
        "top1": float((preds == labels).mean()),
        "top5": topk_accuracy(logits, labels, 5),
        "balanced": float(np.nanmean(per_class)),
        **group_accuracy(per_class, groups),
        "grouping": used,
        "group_sizes": {name: len(ids) for name, ids in groups.items()},
    }
    return metrics, per_class, groups
