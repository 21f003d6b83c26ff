"""Which training images an epoch visits: instance, class-balanced or square-root sampling.

An epoch draws as many indices as there are training images. Instance sampling is a shuffle;
the others draw with replacement so that class c is picked with probability proportional to
1 (class-balanced) or sqrt(n_c) (square-root).
"""

from __future__ import annotations

import numpy as np
import torch

from lt_bench.config import SAMPLERS
from lt_bench.errors import UserError


def class_probabilities(class_counts, kind: str) -> np.ndarray:
    """Probability that a draw lands in each class."""
    counts = np.asarray(class_counts, dtype=np.float64)
    if kind == "instance":
        mass = counts
    elif kind == "class_balanced":
        mass = (counts > 0).astype(np.float64)
    elif kind == "square_root":
        mass = np.sqrt(counts)
    else:
        raise UserError(f"unknown sampler {kind!r}; choose one of: {', '.join(SAMPLERS)}")
    return mass / mass.sum()


def epoch_indices(
    labels: np.ndarray, kind: str, generator: torch.Generator, num_classes: int | None = None
) -> torch.Tensor:
    """One epoch's order of training indices."""
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=num_classes or 0)
    per_class = class_probabilities(counts, kind)
    if kind == "instance":
        return torch.randperm(len(labels), generator=generator)
    per_sample = torch.as_tensor(per_class[labels] / counts[labels], dtype=torch.float64)
    return torch.multinomial(per_sample, len(labels), replacement=True, generator=generator)
