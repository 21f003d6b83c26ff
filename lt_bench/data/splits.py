"""Long-tail profiles, seeded long-tailed subsets, list files and split manifests."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lt_bench import atomic
from lt_bench.config import PROFILES, SUBSETS
from lt_bench.data.groups import GROUPS, choose_shot_groups, shot_groups, tercile_shot_groups
from lt_bench.errors import UserError

# shot groups live in lt_bench.data.groups; re-exported here for older imports
__all__ = ["GROUPS", "choose_shot_groups", "shot_groups", "tercile_shot_groups"]

def check_profile(ratio: float, profile: str) -> None:
    """Fail early, with the fix, on a ratio below 1 or an unknown profile."""
    if not np.isfinite(ratio) or ratio < 1:
        raise UserError(
            f"imbalance ratio must be >= 1 (largest / smallest class), got {ratio:g}; pass e.g. --ratio 100"
        )
    if profile not in PROFILES:
        raise UserError(
            f"unknown long-tail profile {profile!r}; choose one of: {', '.join(PROFILES)}"
        )


def long_tail_counts(
    num_classes: int, max_count: int, ratio: float, profile: str = "exp", pareto_shape: float = 6.0
) -> list[int]:
    """Per-class training-set sizes, class 0 the largest.

    exp:    int(max_count * (1 / ratio) ** (i / (K - 1))), the CIFAR-LT formula of LDAM-DRW
            (kaidic/LDAM-DRW ``imbalance_cifar.py``, ``get_img_num_per_cls``), in its float order.
    step:   the first K // 2 classes keep max_count, the rest get int(max_count * (1 / ratio)).
    pareto: ImageNet-LT style (Liu et al., 2019): the expected order statistics of a Pareto(shape)
            sample, i.e. its quantiles at (K - i - 0.5) / K, mapped affinely onto
            [max_count / ratio, max_count]; deterministic, no sampling noise.
    """
    check_profile(ratio, profile)
    if num_classes < 1:
        raise UserError(f"num_classes must be >= 1, got {num_classes}")
    if max_count < 1:
        raise UserError(f"max_count must be >= 1, got {max_count}; pass a positive --max-count")
    if num_classes == 1:
        counts = [int(max_count)]
    elif profile == "exp":
        imb_factor = 1.0 / ratio
        counts = [int(max_count * imb_factor ** (i / (num_classes - 1.0))) for i in range(num_classes)]
    elif profile == "step":
        head = num_classes // 2
        counts = [int(max_count)] * head + [int(max_count * (1.0 / ratio))] * (num_classes - head)
    else:
        rank_fraction = (np.arange(num_classes) + 0.5) / num_classes  # tail probability, head first
        quantiles = rank_fraction ** (-1.0 / pareto_shape)  # Pareto(shape, x_m=1) inverse survival
        scaled = (quantiles - quantiles[-1]) / (quantiles[0] - quantiles[-1])
        smallest = max_count / ratio
        counts = [int(round(smallest + (max_count - smallest) * s)) for s in scaled]
    empty = [c for c, n in enumerate(counts) if n < 1]
    if empty:
        raise UserError(
            f"ratio {ratio:g} with max count {max_count} leaves class {empty[0]} with no image "
            f"({len(empty)} empty classes); lower the ratio to at most {max_count} or raise the max count"
        )
    return counts


RATIO_TOLERANCE = 0.01  # an achieved ratio within 1% of the requested one is the requested one


def achieved_ratio(counts: Sequence[int] | np.ndarray) -> float:
    """The imbalance a split really has: its largest class count over its smallest."""
    counts = np.asarray(counts)
    return float(counts.max() / max(int(counts.min()), 1))


def ratio_warning(
    dataset: str, requested: float, achieved: float, counts: Sequence[int]
) -> str | None:
    """A sentence when the drawn counts' ratio is not the requested one (beyond 1%), else None.

    Counts are whole images, so the smallest class rounds down: a 500-image head at ratio 300
    gets a tail of int(500 / 300) = 1 image, ratio 500, as does every ratio above 250 up to 500."""
    if abs(achieved - requested) <= RATIO_TOLERANCE * requested:
        return None
    return (
        f"{dataset}: requested ratio {requested:g} but the drawn counts give {achieved:g} "
        f"(max {int(max(counts))}, min {int(min(counts))}: class sizes are whole images); "
        f"ask for ratio {achieved:g} to name this split, or raise the max count to reach {requested:g}"
    )


def make_long_tail(
    labels: Sequence[int] | np.ndarray,
    ratio: float,
    profile: str = "exp",
    seed: int = 0,
    max_count: int | None = None,
    class_order: Sequence[int] | None = None,
    num_classes: int | None = None,
    subset: str = "ldam",
) -> np.ndarray:
    """Sorted indices into a (roughly balanced) labelled set that form a long-tailed subset.

    Class ``class_order[i]`` receives the i-th largest count (default: class id order). The classes
    are visited in class-id order; each class's indices (ascending) are shuffled and the first n_c
    kept. ``subset`` names the generator:

    - ``ldam`` (default): numpy's legacy generator seeded once with ``seed``
      (``np.random.seed(seed)``; ``np.random.shuffle`` per class), which is LDAM-DRW's procedure
      (kaidic/LDAM-DRW ``imbalance_cifar.py``, ``gen_imbalanced_data``, seed 0) reused by most later
      CIFAR-LT code: with ``seed=0`` on CIFAR-10/100 these are the literature's images.
    - ``default_rng``: one ``numpy.random.default_rng(seed)`` permutation per class (lt-bench's
      selection before it followed LDAM-DRW; same counts, other images).

    The same seed gives the same indices on any machine.
    """
    labels = np.asarray(labels, dtype=np.int64)
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    available = np.bincount(labels, minlength=num_classes)
    if max_count is None:
        max_count = int(available.min())
    order = (
        np.arange(num_classes) if class_order is None else np.asarray(class_order, dtype=np.int64)
    )
    if sorted(order.tolist()) != list(range(num_classes)):
        raise UserError(f"class_order must be a permutation of 0..{num_classes - 1}")
    counts = long_tail_counts(num_classes, max_count, ratio, profile)
    wanted = np.empty(num_classes, dtype=np.int64)
    wanted[order] = counts
    short = np.flatnonzero(wanted > available)
    if len(short):
        c = int(short[0])
        raise UserError(
            f"class {c} needs {wanted[c]} images but the data has {available[c]}; "
            f"lower --max-count to at most {int(available.min())}"
        )
    if subset not in SUBSETS:
        raise UserError(f"unknown subset {subset!r}; choose one of: {', '.join(SUBSETS)}")
    chosen = []
    if subset == "ldam":
        legacy = np.random.RandomState(seed)
        for c in range(num_classes):
            members = np.flatnonzero(labels == c)
            legacy.shuffle(members)
            chosen.append(members[: wanted[c]])
    else:
        rng = np.random.default_rng(seed)
        for c in range(num_classes):
            members = np.flatnonzero(labels == c)
            chosen.append(rng.permutation(members)[: wanted[c]])
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)


VALIDATION_STREAM = 0x76616C  # "val": the validation draw's stream of the split seed


def draw_validation(
    labels: Sequence[int] | np.ndarray,
    train: np.ndarray,
    per_class: int,
    seed: int = 0,
    num_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``per_class`` validation images of every class, disjoint from the long-tailed ``train``
    indices, drawn with the split seed (its own stream, so the train draw is untouched).

    A class takes its validation images from the pool images the split left over; a class the
    split used (nearly) whole -- the head, whose every image is in the split -- takes the shortfall
    out of its own training images. So only such classes lose training images, and every other
    class keeps exactly the split's images. Returns (train indices less validation, validation
    indices, per-class number taken out of the split), all sorted / in class order.
    """
    labels = np.asarray(labels, dtype=np.int64)
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    in_train = np.zeros(len(labels), dtype=bool)
    in_train[train] = True
    rng = np.random.default_rng([seed, VALIDATION_STREAM])
    chosen, taken = [], np.zeros(num_classes, dtype=np.int64)
    for c in range(num_classes):
        members = labels == c
        left_over = rng.permutation(np.flatnonzero(members & ~in_train))[:per_class]
        short = per_class - len(left_over)
        used = np.flatnonzero(members & in_train)
        if short > 0 and short >= len(used):
            raise UserError(
                f"class {c} has {int(members.sum())} images, too few for {per_class} validation "
                "images and at least one training image; lower data.val_per_class"
            )
        from_train = rng.permutation(used)[:short] if short > 0 else used[:0]
        taken[c] = len(from_train)
        chosen += [left_over, from_train]
    val = np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)
    return np.setdiff1d(train, val), val, taken


# ----------------------------------------------------------------------------- list files


def read_list_file(
    path: str | os.PathLike,
    root: str | os.PathLike | None = None,
    num_classes: int | None = None,
    check_images: bool = True,
) -> list[tuple[str, int]]:
    """Read an ImageNet-LT style list (``relative/path label`` per line) and validate it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"list file {path} does not exist; pass the folder holding it with --root")
    samples: list[tuple[str, int]] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise UserError(
                f"{path}:{lineno}: expected 'relative/path label', got {line!r}; fix or remove the line"
            )
        rel, label = parts[0].strip(), int(parts[1])
        if label < 0 or (num_classes is not None and label >= num_classes):
            bound = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
            raise UserError(
                f"{path}:{lineno}: label {label} is out of range {bound}; fix the label or the class count"
            )
        if rel in seen:
            raise UserError(
                f"{path}:{lineno}: duplicate entry {rel!r} (first on line {seen[rel]}); remove the duplicate line"
            )
        seen[rel] = lineno
        samples.append((rel, label))
    if not samples:
        raise UserError(f"list file {path} has no entries; point to a non-empty list")
    if check_images and root is not None:
        missing = [rel for rel, _ in samples if not (Path(root) / rel).is_file()]
        if missing:
            raise UserError(
                f"{len(missing)} of {len(samples)} images in {path.name} are missing under {root} "
                f"(first: {missing[0]}); check --root or regenerate the list"
            )
    return samples


def format_list_lines(samples: Sequence[tuple[str, int]]) -> list[str]:
    return [f"{rel} {int(label)}" for rel, label in samples]


def write_list_file(path: str | os.PathLike, samples: Sequence[tuple[str, int]]) -> None:
    atomic.write_text(path, "".join(line + "\n" for line in format_list_lines(samples)))


# ----------------------------------------------------------------------------- manifests


def indices_sha256(indices: Sequence[int] | np.ndarray) -> str:
    """Hash of the chosen indices as little-endian int64: identical on every platform."""
    return hashlib.sha256(np.asarray(indices, dtype="<i8").tobytes()).hexdigest()


def lines_sha256(lines: Sequence[str]) -> str:
    return hashlib.sha256("".join(line + "\n" for line in lines).encode()).hexdigest()


def split_manifest(
    dataset: str,
    ratio: float | None,
    profile: str | None,
    seed: int | None,
    counts: Sequence[int],
    sha256: str | None,
    grouping: str = "absolute",
    **extra,
) -> dict:
    """The ``split.json`` record of a long-tailed split: enough to reproduce and to verify it."""
    groups, used = choose_shot_groups(counts, grouping)
    return {
        "dataset": dataset,
        "ratio": ratio,
        "profile": profile,
        "seed": seed,
        "num_classes": len(counts),
        "counts": [int(c) for c in counts],
        "total": int(sum(counts)),
        "grouping": used,
        "groups": {name: ids.tolist() for name, ids in groups.items()},
        "sha256": sha256,
        **extra,
    }
