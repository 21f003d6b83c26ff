"""Large long-tailed benchmarks served as images under a root plus list files, and new splits from
any ImageFolder tree.

List files use the format of Liu et al. (OLTR, CVPR 2019), shared by the Decoupling code base:
one ``relative/path label`` per line, e.g. ``train/n01440764/n01440764_10026.JPEG 0``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from lt_bench.data.base import (
    DATASETS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    DataInfo,
    ImageFiles,
    SourceDataset,
)
from lt_bench.data.splits import read_list_file
from lt_bench.errors import UserError


class ListFileDataset(SourceDataset):
    """Images under ``root``; splits named by the standard list files in ``list_dir`` (default: root)."""

    balanced = False
    list_prefix: str
    split_files: dict[str, str]

    def __init__(
        self,
        root=None,
        download: bool = False,
        list_dir=None,
        num_classes: int | None = None,
        image_size: int | None = None,
    ):
        super().__init__(root, download)
        self.list_dir = Path(list_dir) if list_dir is not None else self.root
        self.splits = tuple(self.split_files)
        if num_classes is not None:  # a subset of the benchmark's classes
            self.info = dataclasses.replace(self.info, num_classes=num_classes, class_names=[])
        if image_size is not None:  # the training resolution (default 224)
            self.info = dataclasses.replace(self.info, image_size=(3, image_size, image_size))

    def list_path(self, split: str) -> Path:
        return self.list_dir / f"{self.list_prefix}_{self.split_files[split]}.txt"

    def available(self) -> bool:
        return all(self.list_path(s).is_file() for s in self.splits)

    def describe(self) -> str:
        return str(self.root)

    def split_sizes(self) -> dict[str, int]:
        if not self.available():
            return {}
        return {s: sum(1 for line in self.list_path(s).open() if line.strip()) for s in self.splits}

    def load(self, split: str) -> ImageFiles:
        if self.download:
            raise UserError(
                f"{self.info.name} cannot be downloaded by lt-bench; fetch it by hand and pass --root"
            )
        if not self.root.is_dir():
            raise UserError(
                f"{self.info.name} root {self.root} does not exist; pass the folder holding its images "
                f"and {self.list_prefix}_*.txt with --root"
            )
        if split not in self.split_files:
            raise UserError(
                f"{self.info.name} has splits {', '.join(self.split_files)}, not {split!r}"
            )
        samples = read_list_file(self.list_path(split), self.root, self.info.num_classes)
        return ImageFiles(self.root, samples, self.info)


@DATASETS.register("imagenet_lt")
class ImageNetLT(ListFileDataset):
    info = DataInfo("imagenet_lt", 1000, (3, 224, 224), IMAGENET_MEAN, IMAGENET_STD)
    list_prefix = default_subdir = "ImageNet_LT"
    split_files = {"train": "train", "val": "val", "test": "test"}


@DATASETS.register("places_lt")
class PlacesLT(ListFileDataset):
    info = DataInfo("places_lt", 365, (3, 224, 224), IMAGENET_MEAN, IMAGENET_STD)
    list_prefix = default_subdir = "Places_LT"
    split_files = {"train": "train", "val": "val", "test": "test"}


@DATASETS.register("inat2018")
class INat2018(ListFileDataset):
    """iNaturalist 2018: no public test labels, so its val list serves as the test set (as in Decoupling)."""

    info = DataInfo("inat2018", 8142, (3, 224, 224), IMAGENET_MEAN, IMAGENET_STD)
    list_prefix = default_subdir = "iNaturalist18"
    split_files = {"train": "train", "test": "val"}


@DATASETS.register("imagefolder")
class ImageFolderSource(SourceDataset):
    """Any ImageFolder-style tree (``root/<class>/<image>``) as a balanced pool for new long-tailed
    splits; ``val_root`` (same class folders) gives the test split. Default profile: pareto."""

    default_profile = "pareto"
    default_ratio = 256.0

    def __init__(
        self, root=None, download: bool = False, val_root=None, image_size: int = 224
    ):
        super().__init__(root, download)
        self.val_root = Path(val_root) if val_root is not None else None
        self._classes: list[str] | None = None
        self.image_size = image_size

    @property
    def info(self) -> DataInfo:
        classes = self.classes()
        return DataInfo(
            "imagefolder",
            len(classes),
            (3, self.image_size, self.image_size),
            IMAGENET_MEAN,
            IMAGENET_STD,
            classes,
        )

    def classes(self) -> list[str]:
        if self._classes is None:
            if self.root is None or not self.root.is_dir():
                raise UserError(
                    f"imagefolder root {self.root} is not a folder; pass --root DIR with one sub-folder per class"
                )
            self._classes, _ = find_classes(str(self.root))
        return self._classes

    def available(self) -> bool:
        return self.root is not None and self.root.is_dir()

    def describe(self) -> str:
        return (
            str(self.root) if self.root is not None else "needs --root (one sub-folder per class)"
        )

    def load(self, split: str) -> ImageFiles:
        folder = self.root if split == "train" else self.val_root
        if split not in ("train", "test") or folder is None:
            raise UserError(
                f"imagefolder split {split!r} needs a folder; pass val_root for the test split"
            )
        classes = self.classes()
        if not folder.is_dir():
            raise UserError(
                f"imagefolder {split} folder {folder} does not exist; pass an existing folder"
            )
        try:
            found = make_dataset(
                str(folder), {c: i for i, c in enumerate(classes)}, extensions=IMG_EXTENSIONS
            )
        except FileNotFoundError as err:
            raise UserError(
                f"imagefolder {folder}: {err}; every class folder needs at least one image"
            ) from err
        samples = sorted((str(Path(p).relative_to(folder)), label) for p, label in found)
        return ImageFiles(folder, samples, self.info)
