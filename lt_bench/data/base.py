"""What every data set looks like: its facts (DataInfo), and labelled images in memory or on disk."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from lt_bench.errors import UserError
from lt_bench.normalization import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401  (re-exported)
from lt_bench.registry import Registry

DEFAULT_ROOT = Path("data")  # where CIFAR folders are looked for when --root is not given


@dataclass
class DataInfo:
    """Facts about a data set that models and transforms follow."""

    name: str
    num_classes: int
    image_size: tuple[int, int, int]  # (channels, height, width) as served
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self):
        if not self.class_names:
            self.class_names = [str(c) for c in range(self.num_classes)]


class LabelledImages(Dataset):
    """Labelled images with a ``labels`` array and ``subset``; the face every split has."""

    info: DataInfo
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.info.num_classes)

    def subset(self, indices: Sequence[int] | np.ndarray) -> LabelledImages:
        raise NotImplementedError


class TensorImages(LabelledImages):
    """Small images held in memory as uint8 (N, C, H, W); items are (uint8 tensor, int label).

    The engine's fast path reads ``images`` and ``labels`` whole and augments on the device.
    """

    def __init__(
        self, images: torch.Tensor | np.ndarray, labels: Sequence[int] | np.ndarray, info: DataInfo
    ):
        images = torch.as_tensor(images)
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.info = info
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    def subset(self, indices) -> TensorImages:
        indices = np.asarray(indices, dtype=np.int64)
        return TensorImages(self.images[torch.from_numpy(indices)], self.labels[indices], self.info)


class ImageFiles(LabelledImages):
    """Images on disk, listed as (path relative to root, label); items are (PIL image, int label)."""

    def __init__(
        self,
        root: str | os.PathLike,
        samples: Sequence[tuple[str, int]],
        info: DataInfo,
        transform=None,
    ):
        self.root = Path(root)
        self.samples = list(samples)
        self.labels = np.asarray([label for _, label in self.samples], dtype=np.int64)
        self.info = info
        self.transform = transform

    def __getitem__(self, index: int):
        rel, label = self.samples[index]
        try:
            with Image.open(self.root / rel) as img:
                img = img.convert("RGB")
        except (OSError, ValueError) as err:  # unreadable, truncated, not an image
            raise UserError(
                f"cannot read image {self.root / rel} ({type(err).__name__}); replace or remove it "
                "(and its line in the list file)"
            ) from err
        if self.transform is not None:
            img = self.transform(img)
        return img, int(label)

    def subset(self, indices) -> ImageFiles:
        return ImageFiles(self.root, [self.samples[i] for i in indices], self.info, self.transform)


class SourceDataset:
    """A registered data set: its facts plus its splits.

    ``balanced`` sources (CIFAR, MNIST, digits, synthetic, any ImageFolder) serve a balanced train
    pool from which ``make_long_tail`` draws; list-file sources (ImageNet-LT, Places-LT, iNat) serve
    their long-tailed train list as it is.
    """

    info: DataInfo
    balanced: bool = True
    default_ratio: float = 100.0
    default_profile: str = "exp"
    splits: tuple[str, ...] = ("train", "test")
    default_subdir: str | None = (
        None  # root under DEFAULT_ROOT when --root is not given; None: embedded
    )

    # Constructor arguments every data set gets from data.root / --download: not data.options.
    given_arguments = ("root", "download")

    def __init__(self, root: str | os.PathLike | None = None, download: bool = False):
        if root is None and self.default_subdir is not None:
            root = DEFAULT_ROOT / self.default_subdir
        self.root = Path(root) if root is not None else None
        self.download = download

    def available(self) -> bool:
        """Whether the data is present (without loading it)."""
        return True

    def describe(self) -> str:
        """Where the data lives, for ``lt-bench datasets``."""
        return "embedded"

    def load(self, split: str) -> LabelledImages:
        raise NotImplementedError

    def split_sizes(self) -> dict[str, int]:
        """Images per split, for ``lt-bench datasets``; loads the data unless a subclass knows better."""
        return {split: len(self.load(split)) for split in self.splits} if self.available() else {}

    def balanced_counts(self) -> list[int] | None:
        """Per-class sizes of the balanced train pool when known without the data (CIFAR), else None."""
        return None


DATASETS: Registry[type[SourceDataset]] = Registry("data set")


def build_dataset(
    name: str, root: str | os.PathLike | None = None, download: bool = False, **kwargs
) -> SourceDataset:
    return DATASETS.get(name)(root=root, download=download, **kwargs)
