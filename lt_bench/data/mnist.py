"""The full MNIST and Fashion-MNIST (60,000 train / 10,000 test, 28x28 greyscale, 10 classes) from
the standard idx files, read with torchvision's own idx readers.

Where the files are looked for, in order: ``--root`` (the folder holding the four files, or a
torchvision root holding ``FashionMNIST/raw`` / ``MNIST/raw``), then ``data/fashion-mnist`` (or
``data/mnist``), torchvision's layout under ``data/``, and for Fashion-MNIST the Debian/Ubuntu
package's folder, ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``).
The files may be gzipped (as shipped) or not. ``--download`` uses torchvision's downloader.

The long-tailed train set is drawn from the 6,000 training images per class with the CIFAR-LT
formula (ratio 100: 6,000 down to 60, 14,886 images); the 10,000 test images are the balanced test
set; the train images the split leaves over are the validation set (``data.val_per_class``).
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
import torchvision
from torchvision.datasets.mnist import read_image_file, read_label_file

from lt_bench.data.base import DATASETS, DEFAULT_ROOT, DataInfo, SourceDataset, TensorImages
from lt_bench.errors import UserError
from lt_bench.normalization import MNIST_MEAN, MNIST_STD

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(folder: Path, name: str) -> Path | None:
    """``name`` or ``name.gz`` in ``folder``."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path, reader) -> torch.Tensor:
    """An idx file through torchvision's reader; a gzipped one is unpacked to a temporary file first."""
    if path.suffix != ".gz":
        return reader(str(path))
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / path.stem
        with gzip.open(path, "rb") as packed, open(plain, "wb") as out:
            shutil.copyfileobj(packed, out)
        return reader(str(plain))


class _IdxDataset(SourceDataset):
    torchvision_class: type
    folder_name: str  # data/<folder_name>
    system_folder: Path | None = None  # where a distribution package puts the files
    fix_hint: str

    def candidates(self) -> list[Path]:
        """Folders that may hold the four files, in the order they are tried."""
        tv_raw = Path(self.torchvision_class.__name__) / "raw"
        if self.root is not None:
            return [self.root, self.root / tv_raw]
        found = [DEFAULT_ROOT / self.folder_name, DEFAULT_ROOT / tv_raw]
        return found + ([self.system_folder] if self.system_folder else [])

    def folder(self) -> Path | None:
        for folder in self.candidates():
            if all(_find(folder, name) for pair in FILES.values() for name in pair):
                return folder
        return None

    def available(self) -> bool:
        return self.folder() is not None

    def describe(self) -> str:
        folder = self.folder()
        return str(folder) if folder else " or ".join(str(c) for c in self.candidates())

    def split_sizes(self) -> dict[str, int]:
        return {split: len(self.load(split)) for split in self.splits} if self.available() else {}

    def load(self, split: str) -> TensorImages:
        if split not in FILES:
            raise UserError(f"{self.info.name} has splits train, test, not {split!r}")
        if self.download and not self.available():
            target = self.root or DEFAULT_ROOT
            try:
                self.torchvision_class(str(target), train=True, download=True)
            except Exception as err:  # network errors come in many types
                raise UserError(
                    f"could not download {self.info.name} into {target}: {err}"
                ) from err
        folder = self.folder()
        if folder is None:
            raise UserError(
                f"{self.info.name} not found: no idx files ({FILES['train'][0]}[.gz], ...) in "
                f"{self.describe()}; {self.fix_hint}"
            )
        images_path, labels_path = (_find(folder, name) for name in FILES[split])
        try:
            images = read_idx(images_path, read_image_file)
            labels = read_idx(labels_path, read_label_file)
        except (AssertionError, RuntimeError, ValueError, TypeError, EOFError, OSError) as err:
            raise UserError(
                f"{images_path} or {labels_path} is truncated or not an idx file "
                f"({type(err).__name__}); {self.fix_hint}"
            ) from err
        if images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise UserError(
                f"{images_path} holds {len(images)} images of {tuple(images.shape[1:])} but "
                f"{labels_path} {len(labels)} labels (expected 28x28 images, one label each); "
                f"{self.fix_hint}"
            )
        labels = labels.numpy().astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= self.info.num_classes):
            raise UserError(f"{labels_path} has labels outside 0..9; {self.fix_hint}")
        return TensorImages(images[:, None].contiguous(), labels, self.info)


@DATASETS.register("fashion_mnist")
class FashionMNIST(_IdxDataset):
    torchvision_class = torchvision.datasets.FashionMNIST
    info = DataInfo(
        "fashion_mnist", 10, (1, 28, 28), (0.2860,), (0.3530,), list(torchvision_class.classes)
    )
    folder_name = "fashion-mnist"
    system_folder = Path("/usr/share/datasets/fashion-mnist")
    fix_hint = "install them with `apt-get install -y dataset-fashion-mnist`, or pass --download"


@DATASETS.register("mnist")
class MNIST(_IdxDataset):
    torchvision_class = torchvision.datasets.MNIST
    info = DataInfo("mnist", 10, (1, 28, 28), MNIST_MEAN, MNIST_STD, list(torchvision_class.classes))
    folder_name = "mnist"
    fix_hint = "put the four idx files in data/mnist (or pass --root), or pass --download"
