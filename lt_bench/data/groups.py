"""Shot groups: which classes count as many-, medium- and few-shot, from the training counts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lt_bench.config import GROUPINGS
from lt_bench.errors import UserError

GROUPS = ("many", "medium", "few")


def shot_groups(
    train_counts: Sequence[int], many_above: int = 100, few_below: int = 20
) -> dict[str, np.ndarray]:
    """Class ids per shot group: many (> many_above), medium (few_below..many_above), few (< few_below)."""
    counts = np.asarray(train_counts)
    return {
        "many": np.flatnonzero(counts > many_above),
        "medium": np.flatnonzero((counts >= few_below) & (counts <= many_above)),
        "few": np.flatnonzero(counts < few_below),
    }


def relative_shot_groups(train_counts: Sequence[int]) -> dict[str, np.ndarray]:
    """Thirds by count rank (ties broken by class id), for data sets where an absolute group is empty."""
    counts = np.asarray(train_counts)
    ranked = np.argsort(-counts, kind="stable")
    parts = np.array_split(ranked, 3)
    return {name: np.sort(part) for name, part in zip(GROUPS, parts)}


def choose_shot_groups(
    train_counts: Sequence[int], grouping: str = "auto", many_above: int = 100, few_below: int = 20
) -> tuple[dict[str, np.ndarray], str]:
    """Groups plus the name of the grouping used: absolute, relative, or auto (absolute unless a group is empty)."""
    if grouping not in GROUPINGS:
        raise UserError(f"unknown grouping {grouping!r}; choose auto, absolute or relative")
    if grouping != "relative":
        groups = shot_groups(train_counts, many_above, few_below)
        if grouping == "absolute" or all(len(g) for g in groups.values()):
            return groups, "absolute"
    return relative_shot_groups(train_counts), "relative"
