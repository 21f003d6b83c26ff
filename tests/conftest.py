"""Fixtures that write tiny data sets in the exact on-disk formats the real loaders read."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_fake_cifar(
    root: Path,
    num_classes: int = 10,
    train_per_class: int = 30,
    test_per_class: int = 4,
    seed: int = 0,
) -> Path:
    """CIFAR-10 (``cifar-10-batches-py``, 5 train batches) or CIFAR-100 (``cifar-100-python``) pickles."""
    rng = np.random.default_rng(seed)

    def batch(per_class: int, key: str) -> dict:
        labels = rng.permutation(np.repeat(np.arange(num_classes), per_class))
        data = rng.integers(0, 256, (len(labels), 3 * 32 * 32), dtype=np.uint8)
        # Stamp the label into the first pixel so tests can check images and labels stay paired.
        data[:, 0] = labels
        return {"data": data, key: labels.tolist()}

    def dump(path: Path, obj: dict) -> None:
        with open(path, "wb") as f:
            pickle.dump(obj, f)

    if num_classes == 10:
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        full = batch(train_per_class, "labels")
        for i, part in enumerate(np.array_split(np.arange(len(full["labels"])), 5), start=1):
            dump(
                folder / f"data_batch_{i}",
                {"data": full["data"][part], "labels": [full["labels"][j] for j in part]},
            )
        dump(folder / "test_batch", batch(test_per_class, "labels"))
        dump(folder / "batches.meta", {"label_names": [f"class{c}" for c in range(10)]})
    else:
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True)
        for name, per_class in (("train", train_per_class), ("test", test_per_class)):
            entry = batch(per_class, "fine_labels")
            entry["coarse_labels"] = [label // 5 for label in entry["fine_labels"]]
            dump(folder / name, entry)
        dump(folder / "meta", {"fine_label_names": [f"fine{c}" for c in range(num_classes)]})
    return root


def write_jpeg_tree(
    root: Path, counts: list[int], split: str = "train", seed: int = 0
) -> list[tuple[str, int]]:
    """Real JPEG files at ``root/<split>/class<c>/img<i>.jpg``; returns (relative path, label) pairs."""
    rng = np.random.default_rng(seed)
    samples = []
    for label, n in enumerate(counts):
        folder = root / split / f"class{label:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"img{i}.jpg", quality=90)
            samples.append((f"{split}/class{label:03d}/img{i}.jpg", label))
    return samples


@pytest.fixture
def fake_cifar10(tmp_path: Path) -> Path:
    return write_fake_cifar(tmp_path / "data", num_classes=10)


@pytest.fixture
def fake_cifar100(tmp_path: Path) -> Path:
    return write_fake_cifar(tmp_path / "data", num_classes=100, train_per_class=6, test_per_class=2)


@pytest.fixture
def fake_imagenet_lt(tmp_path: Path) -> Path:
    """A 4-class ImageNet-LT-style root: JPEGs plus ImageNet_LT_{train,val,test}.txt (train long-tailed)."""
    from lt_bench.data.splits import write_list_file

    root = tmp_path / "ImageNet_LT"
    write_list_file(root / "ImageNet_LT_train.txt", write_jpeg_tree(root, [8, 4, 2, 1], "train"))
    write_list_file(
        root / "ImageNet_LT_val.txt", write_jpeg_tree(root, [2, 2, 2, 2], "val", seed=1)
    )
    write_list_file(
        root / "ImageNet_LT_test.txt", write_jpeg_tree(root, [3, 3, 3, 3], "test", seed=2)
    )
    return root


def write_idx_files(
    folder: Path, train_per_class: int = 12, test_per_class: int = 3, gz: bool = True, seed: int = 0
) -> Path:
    """The four MNIST-format idx files (``train-images-idx3-ubyte[.gz]`` ...), 28x28 uint8."""
    import gzip
    import struct

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, per_class in (("train", train_per_class), ("t10k", test_per_class)):
        labels = rng.permutation(np.repeat(np.arange(10), per_class)).astype(np.uint8)
        images = rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8)
        images[:, 0, 0] = labels  # the label in the first pixel: images and labels stay paired
        blobs = {
            f"{prefix}-images-idx3-ubyte": struct.pack(">IIII", 0x803, len(labels), 28, 28)
            + images.tobytes(),
            f"{prefix}-labels-idx1-ubyte": struct.pack(">II", 0x801, len(labels))
            + labels.tobytes(),
        }
        for name, blob in blobs.items():
            if gz:
                with gzip.open(folder / f"{name}.gz", "wb") as f:
                    f.write(blob)
            else:
                (folder / name).write_bytes(blob)
    return folder


def tiny(
    *overrides: str, classes: int = 4, size: int = 8, train: int = 20, test: int = 5
) -> list[str]:
    """The tiny run most tests train, as ``key=value`` overrides: a synthetic data set of
    ``classes`` classes (``train`` / ``test`` images per class, ``size`` pixels), a small CNN, no
    warm-up, no progress bar. ``overrides`` come last and win (``optim.epochs=2``, ``data.ratio=4``)."""
    return [
        "data.name=synthetic",
        f"data.options={{num_classes: {classes}, image_size: {size}, "
        f"train_per_class: {train}, test_per_class: {test}}}",
        "data.batch_size=16",
        "data.val_per_class=2",
        "model.name=small_cnn",
        "optim.warmup_epochs=0",
        "train.progress=false",
        *overrides,
    ]


def train_whole_and_resumed(overrides: list[str], tmp_path: Path) -> tuple[dict, dict]:
    """The final records of a run trained whole and of the same run crashed after its first
    epoch and resumed (``--resume``): a method's exact-resume test compares them."""
    from lt_bench.config import load_config
    from lt_bench.engine import train

    class Crash(Exception):
        pass

    def crash_after_first_epoch(epoch, row):
        if epoch == 1:
            raise Crash

    whole = train(load_config(None, [*overrides, f"out_dir={tmp_path / 'a'}"]))
    cfg = load_config(None, [*overrides, f"out_dir={tmp_path / 'b'}"])
    with pytest.raises(Crash):
        train(cfg, on_epoch_end=crash_after_first_epoch)
    return whole, train(cfg, resume=True)
