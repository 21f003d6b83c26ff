"""Evaluation: accuracy by shot group, calibration, and feature separability.

from lt_bench.eval import separability, summarize
metrics, per_class, groups = summarize(logits, labels, train_counts)
report = separability(features, labels, train_counts, classifier=W, centroids=C)
"""

from lt_bench.eval.accuracy import adjust_logits, calibration, confusion_matrix, summarize
from lt_bench.eval.separability import separability

__all__ = ["adjust_logits", "calibration", "confusion_matrix", "separability", "summarize"]
