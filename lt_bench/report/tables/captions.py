"""What a table's cells mean, said under the table: the shot grouping of its Many / Medium / Few
columns, why a group column shows "–", and that ± is the sample standard deviation over seeds.

One table never mixes two groupings: runs of more than one are refused, naming them
(:func:`lt_bench.report.collect.check_one_grouping`).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

SHOT_GROUPS = ("many", "medium", "few")
HEADERS = {"many": "Many", "medium": "Medium", "few": "Few"}
# lt_bench.data.groups' thresholds, repeated because importing it imports torch (tests check
# that the two agree).
MANY_ABOVE, FEW_BELOW = 100, 20

GROUPING_CAPTIONS = {
    "absolute": (
        f"Many/Medium/Few: absolute groups, >{MANY_ABOVE} / {FEW_BELOW}-{MANY_ABOVE} / "
        f"<{FEW_BELOW} training images"
    ),
    "terciles": (
        "Many/Medium/Few: class-size terciles (classes of equal size share a group, so groups "
        "may be unequal)"
    ),
    # Runs evaluated while data.grouping "auto" existed: it fell back to these thirds.
    "relative": (
        "Many/Medium/Few: class-size thirds by rank (the rule before terciles: tied class sizes "
        "may be split)"
    ),
}

EMPTY_GROUP_NOTES = {
    "absolute": {
        "many": f"no class has >{MANY_ABOVE} training images",
        "medium": f"no class has {FEW_BELOW}-{MANY_ABOVE} training images",
        "few": f"no class has <{FEW_BELOW} training images",
    },
    "terciles": {
        group: f"no class size is left for the {group} tercile once tied sizes are kept together"
        for group in SHOT_GROUPS
    },
}


def grouping_caption(grouping: str | None) -> str:
    """The sentence a table states its grouping with (None: the runs did not record one)."""
    if grouping is None:
        return "Many/Medium/Few: grouping not recorded by these runs"
    return GROUPING_CAPTIONS.get(grouping, f"Many/Medium/Few: {grouping} groups")


def empty_group_note(grouping: str | None, group: str) -> str:
    """Why ``group`` holds no class under ``grouping``."""
    return EMPTY_GROUP_NOTES.get(grouping or "", {}).get(group, f"no class is in the {group} group")


def spread_caption(seed_counts: Iterable[int]) -> str | None:
    """What a cell is: mean ± sample std (n - 1) over N seeds, N for the table or per row (None:
    no cell has a value)."""
    counts = sorted({n for n in seed_counts if n > 0})
    if not counts:
        return None
    if counts == [1]:
        return "Cells: one seed each, so no ± is shown."
    if len(counts) == 1:
        return f"Cells: mean ± sample std over {counts[0]} seeds."
    single = " (a cell of one seed shows no ±)" if counts[0] == 1 else ""
    return f"Cells: mean ± sample std over each row's seeds, as its Seeds column says{single}."


def empty_group_caption(
    done: pd.DataFrame,
    groups: Iterable[str],
    column_group: str,
    grouping: str | None,
    names: dict | None = None,
) -> str | None:
    """A note for each shown shot group that holds no class in every done run of a column group
    (``column_group``: the column of ``done`` the table's column groups come from; ``names``: their
    display names), e.g. ``– in Few: no class has <20 training images (cifar10_lt@100)``; None
    when there is none."""
    notes = []
    for group in groups:
        key = f"group_size.{group}"
        if key not in done:
            continue
        empty = [
            (names or {}).get(str(name), str(name))
            for name, runs in done.groupby(column_group, sort=False)
            if (pd.to_numeric(runs[key], errors="coerce") == 0).all()
        ]
        if empty:
            note = empty_group_note(grouping, group)
            notes.append(f"– in {HEADERS[group]}: {note} ({', '.join(empty)})")
    return "; ".join(notes) if notes else None


def shot_group_of(metric: str) -> str | None:
    """The shot group a column reports (``few``, ``centroid_distance.few``), or None."""
    last = metric.rsplit(".", 1)[-1]
    return last if last in SHOT_GROUPS else None
