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
    "long_tail_counts",
    "long_tail_split",
    "make_long_tail",
    "shot_groups",
]


@dataclass
class LongTailSplit:
    """A long-tailed train set, the sample lines that name it, and its ``split.json`` manifest."""

    train: LabelledImages
    lines: list[str]
    manifest: dict

    @property
    def counts(self) -> np.ndarray:
        return np.asarray(self.manifest["counts"])


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
    grouping: str = "auto",
) -> LongTailSplit:
    """Draw (balanced sources) or read (list-file sources) the long-tailed train set."""
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
        manifest = split_manifest(
            name, ratio_seen, None, None, counts, lines_sha256(lines), grouping, source="list file"
        )
        return LongTailSplit(pool, lines, manifest)
    ratio = source.default_ratio if ratio is None else ratio
    profile = source.default_profile if profile is None else profile
    indices = make_long_tail(
        pool.labels, ratio, profile, seed, max_count, class_order, source.info.num_classes
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
        max_count=int(counts.max()),
        class_order=None if class_order is None else [int(c) for c in class_order],
    )
    return LongTailSplit(train, sample_lines(pool, indices), manifest)


def validation_set(
    source: SourceDataset, cfg, per_class: int = 20, seed: int = 0
) -> tuple[LabelledImages, str]:
    """Images for choosing hyperparameters or checkpoints, never the test set: the data set's own
    val list where it has one (ImageNet-LT, Places-LT), else up to ``per_class`` images per class
    from the train pool that the long-tailed split (``cfg.data``) left over (CIFAR-LT, MNIST-LT;
    a class the split kept whole has none). Returns (images, a description for the record)."""
    if "val" in source.splits:
        return source.load("val"), "the data set's val split"
    if not source.balanced:
        raise UserError(
            f"{source.info.name} has no val split and no left-over train images to validate on"
        )
    pool = source.load("train")
    left_over = np.ones(len(pool), dtype=bool)
    data = cfg.data
    left_over[
        make_long_tail(
            pool.labels,
            data.ratio,
            data.profile,
            data.split_seed,
            data.max_count,
            num_classes=source.info.num_classes,
        )
    ] = False
    rng = np.random.default_rng(seed)
    chosen = [
        rng.permutation(np.flatnonzero(left_over & (pool.labels == c)))[:per_class]
        for c in range(source.info.num_classes)
    ]
    chosen = np.sort(np.concatenate(chosen))
    if len(chosen) == 0:
        raise UserError(
            "the long-tailed split left no train image over to validate on; lower data.max_count"
        )
    return pool.subset(
        chosen
    ), f"{len(chosen)} train-pool images left over by the split (never the test set)"
