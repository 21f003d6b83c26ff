"""The literature's CIFAR-LT images, and a validation set with every class (issue 19, items 2 and 8).

The reference is a transcription of LDAM-DRW's ``IMBALANCECIFAR10.get_img_num_per_cls`` and
``gen_imbalanced_data`` (kaidic/LDAM-DRW, ``imbalance_cifar.py``): the global legacy numpy
generator seeded once, every class's indices shuffled in class order, the first n kept.
Comparisons are exact (index sets).
"""

from __future__ import annotations

import numpy as np
import pytest

from lt_bench.config import load_config
from lt_bench.data import build_dataset, draw_validation, long_tail_split, make_long_tail
from lt_bench.errors import UserError
from lt_bench.validate import validate
from tests.conftest import tiny, write_fake_cifar


def ldam_reference(targets, imb_factor: float, imb_type: str = "exp", rand_number: int = 0):
    """LDAM-DRW's subset, transcribed: returns the kept indices (in its order) and the counts."""
    state = np.random.get_state()
    try:
        np.random.seed(rand_number)
        cls_num = len(np.unique(targets))
        img_max = len(targets) / cls_num
        img_num_per_cls = []
        if imb_type == "exp":
            for cls_idx in range(cls_num):
                num = img_max * (imb_factor ** (cls_idx / (cls_num - 1.0)))
                img_num_per_cls.append(int(num))
        else:  # step
            for _ in range(cls_num // 2):
                img_num_per_cls.append(int(img_max))
            for _ in range(cls_num // 2):
                img_num_per_cls.append(int(img_max * imb_factor))
        targets_np = np.array(targets, dtype=np.int64)
        classes = np.unique(targets_np)
        chosen = []
        for the_class, the_img_num in zip(classes, img_num_per_cls):
            idx = np.where(targets_np == the_class)[0]
            np.random.shuffle(idx)
            chosen.append(idx[:the_img_num])
        return np.concatenate(chosen), img_num_per_cls
    finally:
        np.random.set_state(state)


def indices_of(split) -> list[int]:
    return sorted(int(line.split()[0].split("/")[1]) for line in split.lines)


@pytest.mark.parametrize(
    "classes, per_class, ratio, profile",
    [(10, 200, 100, "exp"), (10, 200, 10, "exp"), (100, 40, 10, "exp"), (10, 200, 50, "step")],
)
def test_cifar_lt_is_ldam_drw_subset(tmp_path, classes, per_class, ratio, profile):
    """On fake CIFAR files in CIFAR's pickle format, the default subset (val_per_class=0) is
    exactly LDAM-DRW's images; the old ``default_rng`` selection has the same counts, other images."""
    write_fake_cifar(tmp_path, num_classes=classes, train_per_class=per_class)
    source = build_dataset(f"cifar{classes}", root=str(tmp_path))
    targets = source.load("train").labels.tolist()
    expected, counts = ldam_reference(targets, 1 / ratio, profile)
    split = long_tail_split(source, ratio=ratio, profile=profile, val_per_class=0)
    assert indices_of(split) == sorted(expected.tolist())
    assert split.counts.tolist() == counts
    assert split.manifest["subset"] == "ldam" and split.validation is None
    other = long_tail_split(source, ratio=ratio, profile=profile, val_per_class=0, subset="default_rng")
    assert other.counts.tolist() == counts and indices_of(other) != indices_of(split)
    assert other.manifest["subset"] == "default_rng"


def test_ldam_counts_follow_its_float_order():
    """Counts computed as LDAM-DRW does (max * (1/ratio) ** (i / (K - 1.0))) for many ratios."""
    for ratio in (10, 20, 50, 100, 200, 256, 37.5):
        for classes, top in ((10, 5000), (100, 500)):
            labels = np.repeat(np.arange(classes), top)
            _, counts = ldam_reference(labels.tolist(), 1 / ratio)
            kept = make_long_tail(labels, ratio, seed=0)
            assert np.bincount(labels[kept], minlength=classes).tolist() == counts, ratio


def test_validation_has_every_class_and_only_the_head_pays(tmp_path):
    write_fake_cifar(tmp_path, num_classes=10, train_per_class=200)
    source = build_dataset("cifar10", root=str(tmp_path))
    pool = source.load("train")
    published = long_tail_split(source, ratio=100, val_per_class=0)
    split = long_tail_split(source, ratio=100, val_per_class=20)
    val = np.asarray(split.manifest["validation"]["indices"])
    train = np.asarray(indices_of(split))
    # Every class, 20 each; disjoint from the train images (the test set is another file).
    assert np.bincount(pool.labels[val], minlength=10).tolist() == [20] * 10
    assert split.manifest["validation"]["counts"] == [20] * 10
    assert len(np.intersect1d(val, train)) == 0
    assert np.bincount(split.validation.labels, minlength=10).tolist() == [20] * 10
    # The head (used whole by the split) gives its 20 out of its training images; every other
    # class keeps exactly the published split's images.
    taken = split.manifest["validation"]["taken_from_split"]
    assert taken == [20] + [0] * 9
    before, after = np.asarray(indices_of(published)), train
    assert set(after) <= set(before) and len(before) - len(after) == 20
    assert set(before) - set(after) <= set(np.flatnonzero(pool.labels == 0))
    assert split.counts.tolist() == [published.counts[0] - 20, *published.counts[1:].tolist()]
    assert split.manifest["published_sha256"] == published.manifest["sha256"]
    # Same seed, same draw; another split seed, another validation set.
    again = long_tail_split(source, ratio=100, val_per_class=20)
    assert again.manifest["validation"]["indices"] == split.manifest["validation"]["indices"]
    other = long_tail_split(source, ratio=100, val_per_class=20, seed=1)
    assert other.manifest["validation"]["indices"] != split.manifest["validation"]["indices"]


def test_validation_refuses_a_class_it_would_empty():
    labels = np.repeat(np.arange(3), 5)
    train = make_long_tail(labels, 5, seed=0)
    with pytest.raises(UserError, match="lower data.val_per_class"):
        draw_validation(labels, train, 5, seed=0)


def test_no_validation_refuses_selection_on_it(tmp_path):
    cfg = load_config(
        None, tiny("data.val_per_class=0", "train.select=best_val", f"out_dir={tmp_path}")
    )
    with pytest.raises(UserError, match="data.val_per_class=0"):
        validate(cfg)
    validate(load_config(None, tiny("data.val_per_class=0", f"out_dir={tmp_path}")))
