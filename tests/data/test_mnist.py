"""Full MNIST and Fashion-MNIST from idx files: fakes in the same format always, the real Debian
files when they are installed."""

import gzip
from pathlib import Path

import numpy as np
import pytest

from lt_bench.cli import main
from lt_bench.data import build_dataset, long_tail_split
from lt_bench.data.mnist import FashionMNIST
from lt_bench.errors import UserError
from tests.conftest import write_idx_files

REAL = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("name", ["fashion_mnist", "mnist"])
def test_fake_idx_files_load_with_labels_paired(tmp_path, name, gz):
    root = write_idx_files(tmp_path / "idx", gz=gz)
    source = build_dataset(name, root=str(root))
    train, test = source.load("train"), source.load("test")
    assert (len(train), len(test)) == (120, 30)
    assert train.images.shape == (120, 1, 28, 28) and train.images.dtype.is_floating_point is False
    assert np.array_equal(train.images[:, 0, 0, 0].numpy(), train.labels)
    assert train.class_counts().tolist() == [12] * 10
    assert source.info.class_names[0] in ("T-shirt/top", "0 - zero")


def test_torchvision_layout_and_the_long_tail(tmp_path):
    root = tmp_path / "tv"
    write_idx_files(root / "FashionMNIST" / "raw", train_per_class=30, gz=False)
    split = long_tail_split(build_dataset("fashion_mnist", root=str(root)), ratio=10, val_per_class=0)
    # CIFAR-LT formula, max count 30 (the pool's): int(30 * 10^(-i/9)).
    assert split.manifest["counts"] == [30, 23, 17, 13, 10, 8, 6, 5, 3, 3]


def test_missing_files_name_the_fix(tmp_path, capsys):
    code = main(["split", "fashion_mnist", "--root", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "fashion_mnist not found" in err and "apt-get install -y dataset-fashion-mnist" in err
    with pytest.raises(UserError, match="put the four idx files in data/mnist"):
        build_dataset("mnist", root=str(tmp_path / "nowhere")).load("train")


def test_truncated_and_mismatched_files_are_refused(tmp_path):
    root = write_idx_files(tmp_path / "cut")
    images = root / "train-images-idx3-ubyte.gz"
    with gzip.open(images) as f:
        blob = f.read()
    with gzip.open(images, "wb") as f:
        f.write(blob[: len(blob) // 2])  # a download cut in half
    with pytest.raises(UserError, match="is truncated or not an idx file"):
        build_dataset("fashion_mnist", root=str(root)).load("train")
    images.write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match="is truncated or not an idx file"):
        build_dataset("fashion_mnist", root=str(root)).load("train")

    root = write_idx_files(tmp_path / "mismatch")
    other = write_idx_files(tmp_path / "other", train_per_class=5)
    (root / "train-labels-idx1-ubyte.gz").write_bytes(
        (other / "train-labels-idx1-ubyte.gz").read_bytes()
    )
    with pytest.raises(UserError, match="holds 120 images .* 50 labels"):
        build_dataset("fashion_mnist", root=str(root)).load("train")


def test_datasets_lists_both(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_idx_files(tmp_path / "data" / "mnist")
    assert main(["datasets"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "yes" in lines["mnist"] and "train 120, test 30" in lines["mnist"]
    assert "fashion_mnist" in lines


@pytest.mark.skipif(
    not FashionMNIST().available() or FashionMNIST().folder() != REAL,
    reason="the Debian package dataset-fashion-mnist is not installed (apt-get install -y dataset-fashion-mnist)",
)
def test_the_real_fashion_mnist_files():
    source = build_dataset("fashion_mnist")
    assert source.split_sizes() == {"train": 60000, "test": 10000}
    test = source.load("test")
    assert test.class_counts().tolist() == [1000] * 10
    split = long_tail_split(source, ratio=100, val_per_class=0)
    assert split.manifest["total"] == 14886
    assert split.manifest["counts"][0] == 6000 and split.manifest["counts"][-1] == 60
    assert source.info.class_names[:2] == ["T-shirt/top", "Trouser"]
