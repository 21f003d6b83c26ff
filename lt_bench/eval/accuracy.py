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


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def calibration(
    logits: np.ndarray, labels: np.ndarray, bins: int = 15
) -> tuple[float, dict[str, list]]:
    """Expected calibration error over ``bins`` equal-width confidence bins (Guo et al., 2017), and
    the reliability-diagram data: per bin its edges, mean confidence, accuracy and count."""
    probs = softmax(logits.astype(np.float64))
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(
        np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1
    )  # bins are (lo, hi]
    count = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, weights=confidence, minlength=bins)
    acc_sum = np.bincount(which, weights=correct, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, conf_sum / np.maximum(count, 1), np.nan)
        mean_acc = np.where(count > 0, acc_sum / np.maximum(count, 1), np.nan)
    ece = float(np.abs(acc_sum - conf_sum).sum() / len(labels))
    reliability = {
        "lower": edges[:-1].tolist(),
        "upper": edges[1:].tolist(),
        "confidence": mean_conf.tolist(),
        "accuracy": mean_acc.tolist(),
        "count": count.tolist(),
    }
    return ece, reliability


def confusion_matrix(preds: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    return np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def adjust_logits(logits: np.ndarray, train_counts: Sequence[int], tau: float = 1.0) -> np.ndarray:
    """Post-hoc logit adjustment (Menon et al., 2021): logits - tau * log prior."""
    counts = np.asarray(train_counts, dtype=np.float64)
    return logits - tau * np.log(counts / counts.sum())


def summarize(
    logits: np.ndarray,
    labels: np.ndarray,
    train_counts: Sequence[int],
    grouping: str = "absolute",
    posthoc_tau: float = 0.0,
) -> tuple[dict, np.ndarray, dict[str, np.ndarray]]:
    """(metrics, per-class accuracy, groups) for one set of test predictions."""
    num_classes = len(train_counts)
    if posthoc_tau:
        logits = adjust_logits(logits, train_counts, posthoc_tau)
    preds = logits.argmax(axis=1)
    per_class = per_class_accuracy(preds, labels, num_classes)
    groups, used = choose_shot_groups(train_counts, grouping)
    metrics = {
        "top1": float((preds == labels).mean()),
        "top5": topk_accuracy(logits, labels, 5),
        "balanced": float(np.nanmean(per_class)),
        **group_accuracy(per_class, groups),
        "ece": calibration(logits, labels)[0],
        "grouping": used,
        "group_sizes": {name: len(ids) for name, ids in groups.items()},
    }
    return metrics, per_class, groups
