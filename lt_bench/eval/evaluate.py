"""Evaluate a run's test predictions and features, and write what a run directory holds of it:
``per_class.csv`` (accuracy and separability per class), ``separability.json`` (with the
reliability-diagram data) and ``features.npz`` (with the confusion matrix). Training runs and ``lt-bench eval`` share this."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lt_bench import atomic
from lt_bench.eval.accuracy import calibration, confusion_matrix, summarize
from lt_bench.eval.separability import separability
from lt_bench.rundir import FEATURES, PER_CLASS, SEPARABILITY


def _finite(obj):
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def save_arrays(path: Path, arrays: dict) -> None:
    """``features.npz``; features as float16 unless they overflow it."""
    arrays = dict(arrays)
    features = arrays["features"]
    if np.abs(features).max(initial=0) < np.finfo(np.float16).max:
        arrays["features"] = features.astype(np.float16)
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def evaluate_and_write(
    run_dir: Path,
    arrays: dict,
    class_names: list[str],
    grouping: str = "absolute",
    train_features=None,
    train_labels=None,
    write_features: bool = True,
) -> dict:
    """Accuracy, calibration and separability from ``arrays``; writes per_class.csv,
    separability.json (and features.npz); returns the accuracy metrics."""
    labels, logits = np.asarray(arrays["labels"]), np.asarray(arrays["logits"], dtype=np.float64)
    train_counts = np.asarray(arrays["train_counts"])
    num_classes = len(train_counts)
    metrics, per_class, _ = summarize(logits, labels, train_counts, grouping)
    _, reliability = calibration(logits, labels)
    sep = separability(
        np.asarray(arrays["features"], dtype=np.float32),
        labels,
        train_counts,
        classifier=arrays.get("classifier_weight"),
        centroids=arrays.get("centroids"),
        train_features=train_features,
        train_labels=train_labels,
        grouping=grouping,
    )
    table = sep["per_class"]
    table.insert(
        1,
        "name",
        class_names if len(class_names) == num_classes else [str(c) for c in range(num_classes)],
    )
    table.insert(3, "n_test", np.bincount(labels, minlength=num_classes))
    table.insert(5, "accuracy", per_class)
    with atomic.atomic_path(run_dir / PER_CLASS) as tmp:
        table.to_csv(tmp, index=False)
    atomic.write_json(
        run_dir / SEPARABILITY,
        _finite(
            {
                "summary": sep["summary"],
                "groups": sep["groups"],
                "settings": sep["settings"],
                "reliability": reliability,
            }
        ),
    )
    if write_features:
        confusion = confusion_matrix(logits.argmax(1), labels, num_classes)
        save_arrays(run_dir / FEATURES, {**arrays, "confusion": confusion.astype(np.int32)})
    return _finite(metrics)
