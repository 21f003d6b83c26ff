"""Data sets behind one registry, and the long-tailed train split every run trains on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lt_bench.data.base import (
    DATASETS,
    DataInfo,
    ImageFiles,
    LabelledImages,
    SourceDataset,
    TensorImages,
    build_dataset,
)
from lt_bench.data.splits import (
    choose_shot_groups,
    draw_validation,
    format_list_lines,
    indices_sha256,
    lines_sha256,
    long_tail_counts,
    make_long_tail,
    shot_groups,
    split_manifest,
)
from lt_bench.errors import UserError
from lt_bench.registry import import_package_modules

import_package_modules(__name__, __path__)  # every data set file registers itself

__all__ = [
    "DATASETS",
    "DataInfo",
    "ImageFiles",
    "LabelledImages",
    "LongTailSplit",
    "SourceDataset",
    "TensorImages",
    "build_dataset",
    "choose_shot_groups",
    "draw_validation",
    "long_tail_counts",
    "long_tail_split",
    "make_long_tail",
    "shot_groups",
]


@dataclass
class LongTailSplit:
    """A long-tailed train set, the sample lines that name it, its ``split.json`` manifest, and the
    validation images (None with ``val_per_class=0``) with a description for the record."""

    train: LabelledImages
    lines: list[str]
    manifest: dict
    validation: LabelledImages | None = None
    validation_described: str = "no validation set (data.val_per_class=0)"

    @property
    def counts(self) -> np.ndarray:
        return np.asarray(self.manifest["counts"])

    def require_validation(self, needed_by: str) -> LabelledImages:
        """The validation images, or a one-line error naming what needed them and the fix."""
        if self.validation is None:
            raise UserError(
                f"{needed_by} selects on validation images, but data.val_per_class=0 gives none; "
                "set data.val_per_class (e.g. 20) or select without validation"
            )
        return self.validation


def sample_lines(data: LabelledImages, indices: np.ndarray) -> list[str]:
    """List-file lines for chosen train images: their relative paths, or ``train/<index>`` in memory."""
    if isinstance(data, ImageFiles):
        return format_list_lines([data.samples[i] for i in indices])
    return format_list_lines([(f"train/{i}", data.labels[i]) for i in indices])


def long_tail_split(
    source: SourceDataset,
    ratio: float | None = None,
    profile: str | None = None,
    seed: int = 0,
    max_count: int | None = None,
    class_order=None,
    grouping: str = "absolute",
    val_per_class: int = 20,
    subset: str = "ldam",
) -> LongTailSplit:
    """Draw (balanced sources) or read (list-file sources) the long-tailed train set, and its
    validation set: the data set's val list where it has one (ImageNet-LT, Places-LT), else
    ``val_per_class`` images of every class drawn with the split seed (:func:`draw_validation`:
    from the images the split left over; the head, used whole, gives them out of its training
    images). Never the test set."""
    pool = source.load("train")
    name = source.info.name
    if not source.balanced:
        counts = pool.class_counts()
        if (counts == 0).any():
            empty = np.flatnonzero(counts == 0)
            raise UserError(
                f"{name} train list has no image for {len(empty)} of {len(counts)} classes (first: {empty[0]}); "
                "the class count disagrees with the data: pass the right num_classes"
            )
        lines = format_list_lines(pool.samples)
        ratio_seen = float(counts.max() / max(counts.min(), 1))
        val, described, record = _listed_validation(source)
        manifest = split_manifest(
            name,
            ratio_seen,
            None,
            None,
            counts,
            lines_sha256(lines),
            grouping,
            source="list file",
            validation=record,
        )
        return LongTailSplit(pool, lines, manifest, val, described)
    ratio = source.default_ratio if ratio is None else ratio
    profile = source.default_profile if profile is None else profile
    num_classes = source.info.num_classes
    published = make_long_tail(
        pool.labels, ratio, profile, seed, max_count, class_order, num_classes, subset
    )
    val, described, record = _listed_validation(source)
    indices = published
    if val is None and val_per_class > 0:
        indices, val, described, record = _drawn_validation(
            pool, published, val_per_class, seed, num_classes
        )
    train = pool.subset(indices)
    counts = train.class_counts()
    manifest = split_manifest(
        name,
        ratio,
        profile,
        seed,
        counts,
        indices_sha256(indices),
        grouping,
        max_count=int(np.bincount(pool.labels[published], minlength=num_classes).max()),
        class_order=None if class_order is None else [int(c) for c in class_order],
        subset=subset,
        published_sha256=indices_sha256(published),
        validation=record,
    )
    return LongTailSplit(train, sample_lines(pool, indices), manifest, val, described)


def _drawn_validation(
    pool: LabelledImages, published: np.ndarray, per_class: int, seed: int, num_classes: int
):
    """(train indices less validation, validation images, description, split.json record)."""
    indices, val_indices, taken = draw_validation(
        pool.labels, published, per_class, seed, num_classes
    )
    described = (
        f"{len(val_indices)} train-pool images, {per_class} per class, drawn with the split "
        f"seed ({int(taken.sum())} out of the split's head: {_taken(taken)}; never the test set)"
    )
    record = {
        "source": "train pool (left over by the split; the head's out of its split images)",
        "per_class": int(per_class),
        "counts": np.bincount(pool.labels[val_indices], minlength=num_classes).tolist(),
        "taken_from_split": taken.tolist(),
        "indices": val_indices.tolist(),
        "sha256": indices_sha256(val_indices),
    }
    return indices, pool.subset(val_indices), described, record


def _taken(taken: np.ndarray) -> str:
    shown = [f"class {c}: {n}" for c, n in enumerate(taken.tolist()) if n]
    return ", ".join(shown) or "none"


def _listed_validation(source: SourceDataset) -> tuple[LabelledImages | None, str, dict | None]:
    """The data set's own val list, if it has one (kept as published)."""
    if "val" not in source.splits:
        return None, LongTailSplit.validation_described, None
    val = source.load("val")
    counts = np.bincount(val.labels, minlength=source.info.num_classes)
    return (
        val,
        "the data set's val split",
        {"source": "the data set's val split", "counts": counts.tolist()},
    )
