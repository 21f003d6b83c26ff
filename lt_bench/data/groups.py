"""Shot groups: which classes count as many-, medium- and few-shot, from the training counts.

Two groupings (``data.grouping``), never switched behind the user's back:

- ``absolute`` (default): many > 100, medium 20-100, few < 20 training images (OLTR, Decoupling).
  A group no class falls in stays empty; its accuracy is NaN and the tables print it as "–".
- ``terciles``: class-size terciles, asked for by name. Classes are ranked by training count
  (largest first); the two cut points start where ``numpy.array_split`` would cut K classes into
  thirds (ranks K/3 and 2K/3, rounded up) and each moves to the nearest rank that does not fall
  inside a run of equal counts (of two equally near ranks, the one that widens the medium group).
  So classes of equal size always share a group; the groups may then be unequal, or one may be
  empty (a two-size step profile has an empty medium group: half the classes are many, half few).
  Without ties the terciles are exactly array_split's thirds.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np

from lt_bench.config import GROUPINGS
from lt_bench.errors import UserError

GROUPS = ("many", "medium", "few")
MANY_ABOVE, FEW_BELOW = 100, 20  # the absolute thresholds, in training images

REMOVED_GROUPINGS = {
    "auto": (
        "grouping 'auto' was removed (it silently switched to class-size thirds when a group "
        "was empty); use absolute (the default: an empty group shows as –) or terciles "
        "(data.grouping in a config, --grouping of lt-bench split)"
    ),
    "relative": (
        "grouping 'relative' is now called 'terciles' (tied class sizes kept together); "
        "did you mean terciles?"
    ),
}


def shot_groups(
    train_counts: Sequence[int], many_above: int = MANY_ABOVE, few_below: int = FEW_BELOW
) -> dict[str, np.ndarray]:
    """Class ids per shot group: many (> many_above), medium (few_below..many_above), few (< few_below)."""
    counts = np.asarray(train_counts)
    return {
        "many": np.flatnonzero(counts > many_above),
        "medium": np.flatnonzero((counts >= few_below) & (counts <= many_above)),
        "few": np.flatnonzero(counts < few_below),
    }


def tercile_cuts(train_counts: Sequence[int]) -> tuple[int, int]:
    """The two cut ranks (0..K) in the classes sorted by count, largest first: ranks below the
    first are many, from the second on few. No cut falls between two equal counts."""
    ranked = np.sort(np.asarray(train_counts))[::-1]
    k = len(ranked)
    # Valid cuts: both ends, and every rank whose count differs from the one before it.
    valid = np.unique(np.r_[0, np.flatnonzero(ranked[1:] != ranked[:-1]) + 1, k])
    sizes = [len(part) for part in np.array_split(np.arange(k), 3)]
    targets = (sizes[0], sizes[0] + sizes[1])
    # Of two equally near ranks, each cut takes the one that widens the medium group (argmin
    # returns the first: the earlier rank for the first cut, the later one for the second).
    first = int(valid[np.argmin(np.abs(valid - targets[0]))])
    second = int(valid[::-1][np.argmin(np.abs(valid[::-1] - targets[1]))])
    return first, second


def tercile_shot_groups(train_counts: Sequence[int]) -> dict[str, np.ndarray]:
    """Class-size terciles that keep classes of equal size together (module docstring's rule)."""
    counts = np.asarray(train_counts)
    ranked = np.argsort(-counts, kind="stable")
    first, second = tercile_cuts(counts)
    parts = (ranked[:first], ranked[first:second], ranked[second:])
    return {name: np.sort(part) for name, part in zip(GROUPS, parts)}


relative_shot_groups = tercile_shot_groups  # the old name, still re-exported by data.splits


def check_grouping(grouping: str) -> None:
    """Refuse a grouping that is not one of GROUPINGS with a one-line error naming the fix."""
    if grouping in GROUPINGS:
        return
    if grouping in REMOVED_GROUPINGS:
        raise UserError(REMOVED_GROUPINGS[grouping])
    close = difflib.get_close_matches(str(grouping), GROUPINGS, n=1)
    hint = f"did you mean {close[0]}?" if close else f"choose {' or '.join(GROUPINGS)}"
    raise UserError(f"unknown grouping {grouping!r}; {hint}")


def choose_shot_groups(
    train_counts: Sequence[int],
    grouping: str = "absolute",
    many_above: int = MANY_ABOVE,
    few_below: int = FEW_BELOW,
) -> tuple[dict[str, np.ndarray], str]:
    """The groups of ``grouping`` (absolute or terciles) and its name; an empty group stays empty."""
    check_grouping(grouping)
    if grouping == "terciles":
        return tercile_shot_groups(train_counts), grouping
    return shot_groups(train_counts, many_above, few_below), grouping
