"""CIFAR-10 and CIFAR-100 through torchvision's loaders, on the standard python-pickle folders.

The long-tailed train set (CIFAR-10-LT / CIFAR-100-LT) is drawn from the balanced train split by
``make_long_tail``; the test split stays balanced, as in every CIFAR-LT paper.
"""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import torch
import torchvision

from lt_bench.data.base import DATASETS, DataInfo, SourceDataset, TensorImages
from lt_bench.errors import UserError
from lt_bench.normalization import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD


def _without_checksums(cls):
    """torchvision's CIFAR class with its md5 checks reduced to "the file exists".

    Downloads are still verified (``--download`` uses the original class); relaxing the check on
    load lets the same loader read the tiny fakes the tests write in the same pickle format.
    """
    return type(
        f"{cls.__name__}Files",
        (cls,),
        {
            "train_list": [[name, None] for name, _ in cls.train_list],
            "test_list": [[name, None] for name, _ in cls.test_list],
            "meta": {**cls.meta, "md5": None},
        },
    )


class _Cifar(SourceDataset):
    torchvision_class: type
    max_count: int

    default_subdir = ""
    test_size = 10000

    @property
    def folder(self):
        return self.root / self.torchvision_class.base_folder

    def _files(self) -> list[str]:
        tv = self.torchvision_class
        return [name for name, _ in tv.train_list + tv.test_list] + [tv.meta["filename"]]

    def available(self) -> bool:
        return all((self.folder / name).is_file() for name in self._files())

    def split_sizes(self) -> dict[str, int]:
        return {"train": self.max_count * self.info.num_classes, "test": self.test_size}

    def describe(self) -> str:
        return str(self.folder)

    def balanced_counts(self) -> list[int]:
        return [self.max_count] * self.info.num_classes

    def load(self, split: str) -> TensorImages:
        if split not in self.splits:
            raise UserError(f"{self.info.name} has splits train, test, not {split!r}")
        if self.download:
            try:
                self.torchvision_class(str(self.root), train=True, download=True)
            except Exception as err:  # network errors come in many types
                raise UserError(
                    f"could not download {self.info.name} into {self.root}: {err}"
                ) from err
        if not self.available():
            raise UserError(
                f"{self.info.name} not found: expected {self.folder}/ with the python-pickle batches; "
                f"pass --root to the folder that holds {self.torchvision_class.base_folder}/, or add --download"
            )
        try:
            data = _without_checksums(self.torchvision_class)(
                str(self.root), train=split == "train"
            )
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as err:
            raise UserError(
                f"{self.info.name} files under {self.folder} are corrupted ({type(err).__name__}: {err}); "
                "delete the folder and download again with --download"
            ) from err
        images = torch.from_numpy(np.ascontiguousarray(data.data.transpose(0, 3, 1, 2)))
        labels = np.asarray(data.targets, dtype=np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= self.info.num_classes):
            raise UserError(
                f"{self.info.name} labels outside 0..{self.info.num_classes - 1} in {self.folder}; the files are corrupted"
            )
        info = dataclasses.replace(self.info, class_names=list(data.classes))
        return TensorImages(images, labels, info)


@DATASETS.register("cifar10")
class Cifar10(_Cifar):
    torchvision_class = torchvision.datasets.CIFAR10
    info = DataInfo("cifar10", 10, (3, 32, 32), CIFAR10_MEAN, CIFAR10_STD)
    max_count = 5000


@DATASETS.register("cifar100")
class Cifar100(_Cifar):
    torchvision_class = torchvision.datasets.CIFAR100
    info = DataInfo(
        "cifar100", 100, (3, 32, 32), CIFAR100_MEAN, CIFAR100_STD
    )
    max_count = 500
