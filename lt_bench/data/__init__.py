"""Data sets behind one registry, and the long-tailed train split every run trains on."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

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
    achieved_ratio,
    choose_shot_groups,
    draw_validation,
    format_list_lines,
    indices_sha256,
    lines_sha256,
    long_tail_counts,
    make_long_tail,
    ratio_warning,
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

    @property
    def warnings(self) -> list[str]:
        """Sentences for ``final.json["warnings"]``: e.g. an achieved ratio that is not the requested one."""
        return list(self.manifest.get("warnings", []))

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
    split_file: str | os.PathLike | None = None,
) -> LongTailSplit:
    """Draw (balanced sources) or read (list-file sources) the long-tailed train set, and its
    validation set: the data set's val list where it has one (ImageNet-LT, Places-LT), else
    ``val_per_class`` images of every class drawn with the split seed (:func:`draw_validation`:
    from the images the split left over; the head, used whole, gives them out of its training
    images). Never the test set.

    ``split_file``, a ``split.json`` written by ``lt-bench split`` or by a run, replaces ratio,
    profile, seed, max_count, class_order, subset and val_per_class with the file's, so the split
    is drawn again exactly (its train and validation indices checked against the file's hashes).

    ``manifest["ratio"]`` is the requested ratio (what reports label a run with);
    ``manifest["achieved_ratio"]`` is the drawn counts' largest / smallest (before validation
    images are taken out), and ``manifest["warnings"]`` says when the two differ."""
    pool = source.load("train")
    name = source.info.name
    recorded = None
    if split_file is not None:
        recorded = read_split_file(split_file, source)
        if source.balanced:
            ratio, profile, seed = recorded["ratio"], recorded["profile"], recorded["seed"]
            max_count, class_order = recorded.get("max_count"), recorded.get("class_order")
            subset = recorded.get("subset", subset)
            val_per_class = (recorded.get("validation") or {}).get("per_class", 0)
    if not source.balanced:
        counts = pool.class_counts()
        if (counts == 0).any():
            empty = np.flatnonzero(counts == 0)
            raise UserError(
                f"{name} train list has no image for {len(empty)} of {len(counts)} classes (first: {empty[0]}); "
                "the class count disagrees with the data: pass the right num_classes"
            )
        lines = format_list_lines(pool.samples)
        ratio_seen = achieved_ratio(counts)
        val, described, record = _listed_validation(source)
        manifest = split_manifest(
            name,
            ratio_seen,
            None,
            None,
            counts,
            lines_sha256(lines),
            grouping,
            achieved_ratio=ratio_seen,
            source="list file",
            validation=record,
        )
        if recorded is not None:
            _check_recorded(recorded, manifest, split_file)
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
    published_counts = np.bincount(pool.labels[published], minlength=num_classes)
    achieved = achieved_ratio(published_counts)
    warning = ratio_warning(name, ratio, achieved, published_counts)
    manifest = split_manifest(
        name,
        ratio,
        profile,
        seed,
        counts,
        indices_sha256(indices),
        grouping,
        achieved_ratio=achieved,
        max_count=int(published_counts.max()),
        class_order=None if class_order is None else [int(c) for c in class_order],
        subset=subset,
        published_sha256=indices_sha256(published),
        validation=record,
        warnings=[warning] if warning else [],
    )
    if recorded is not None:
        _check_recorded(recorded, manifest, split_file)
    return LongTailSplit(train, sample_lines(pool, indices), manifest, val, described)


def read_split_file(path: str | os.PathLike, source: SourceDataset) -> dict:
    """A ``split.json`` to train on, refused in one line when it does not fit ``source``."""
    path = Path(path)
    try:
        recorded = json.loads(path.read_text())
    except OSError as err:
        raise UserError(
            f"data.split_file {path} cannot be read ({err.strerror}); pass a split.json written by "
            "`lt-bench split` or by a run"
        ) from err
    except ValueError as err:
        raise UserError(
            f"data.split_file {path} is not JSON ({err}); pass a split.json written by `lt-bench split`"
        ) from err
    needed = ("dataset", "num_classes", "ratio", "profile", "seed")
    if not isinstance(recorded, dict) or any(key not in recorded for key in needed):
        raise UserError(
            f"data.split_file {path} is not a split.json (it needs {', '.join(needed)}); "
            "pass one written by `lt-bench split` or by a run"
        )
    name, classes = source.info.name, source.info.num_classes
    if recorded["dataset"] != name:
        raise UserError(
            f"data.split_file {path} is a split of {recorded['dataset']}, not of {name}; "
            f"set data.name={recorded['dataset']} or pass a split of {name}"
        )
    if recorded["num_classes"] != classes:
        raise UserError(
            f"data.split_file {path} has {recorded['num_classes']} classes but {name} here has "
            f"{classes}; pass the data options the split was drawn with, or another split file"
        )
    if source.balanced and recorded.get("source") == "list file":
        raise UserError(f"data.split_file {path} records a list file, but {name} draws its split")
    return recorded


def _check_recorded(recorded: dict, manifest: dict, path) -> None:
    """The split drawn again must be the file's: same train (and validation) index hashes."""
    pairs = [(recorded.get("sha256"), manifest["sha256"], "train")]
    pairs.append(
        (
            (recorded.get("validation") or {}).get("sha256"),
            (manifest["validation"] or {}).get("sha256"),
            "validation",
        )
    )
    for want, got, part in pairs:
        if want is not None and got is not None and want != got:
            raise UserError(
                f"data.split_file {path}: its {part} images are not the ones drawn here from "
                f"{manifest['dataset']} (hash {want[:12]} vs {got[:12]}); point data.root at the data "
                "the split was drawn from"
            )
    manifest["split_file"] = str(path)


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
