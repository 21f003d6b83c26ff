import numpy as np
import pytest

from lt_bench.data.splits import (
    choose_shot_groups,
    indices_sha256,
    long_tail_counts,
    make_long_tail,
    read_list_file,
    relative_shot_groups,
    shot_groups,
    split_manifest,
    write_list_file,
)
from lt_bench.errors import UserError


@pytest.mark.parametrize(
    "num_classes, max_count, ratio, total",
    [
        (10, 5000, 100, 12406),
        (10, 5000, 50, 13996),
        (10, 5000, 10, 20431),
        (100, 500, 100, 10847),
        (100, 500, 50, 12608),
        (100, 500, 10, 19573),
    ],
)
def test_exp_profile_matches_published_cifar_lt_totals(num_classes, max_count, ratio, total):
    counts = long_tail_counts(num_classes, max_count, ratio)
    assert sum(counts) == total
    assert counts[0] == max_count and counts[-1] == int(max_count / ratio)
    assert all(a >= b for a, b in zip(counts, counts[1:]))


def test_step_profile():
    assert long_tail_counts(10, 5000, 100, "step") == [5000] * 5 + [50] * 5
    assert long_tail_counts(5, 100, 10, "step") == [100, 100, 10, 10, 10]


def test_pareto_profile_imagenet_lt_shape():
    counts = long_tail_counts(1000, 1280, 256, "pareto")
    assert counts[0] == 1280 and counts[-1] == 5
    assert all(a >= b for a, b in zip(counts, counts[1:]))
    # Heavy tail: most classes sit far below the mean of the extremes (ImageNet-LT: 115,846 images).
    assert 90_000 < sum(counts) < 130_000
    assert np.median(counts) < 100


def test_ratio_one_is_balanced():
    assert long_tail_counts(4, 7, 1) == [7, 7, 7, 7]


@pytest.mark.parametrize("ratio", [0.5, 0, -3, float("nan")])
def test_ratio_below_one_is_refused(ratio):
    with pytest.raises(UserError, match="ratio must be >= 1"):
        long_tail_counts(10, 100, ratio)


def test_unknown_profile_is_refused():
    with pytest.raises(UserError, match="unknown long-tail profile 'linear'"):
        long_tail_counts(10, 100, 10, "linear")


def test_empty_class_is_refused_with_the_fix():
    with pytest.raises(
        UserError, match="leaves class 8 with no image \\(2 empty classes\\); lower the ratio"
    ):
        long_tail_counts(10, 50, 100)


def balanced_labels(num_classes=10, per_class=50, seed=0):
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(num_classes), per_class))


def test_make_long_tail_counts_and_sorted_unique_indices():
    labels = balanced_labels()
    idx = make_long_tail(labels, ratio=10, seed=0)
    assert np.all(np.diff(idx) > 0)
    assert np.bincount(labels[idx]).tolist() == long_tail_counts(10, 50, 10)


def test_make_long_tail_is_deterministic_and_seed_sensitive():
    labels = balanced_labels()
    a = make_long_tail(labels, 10, seed=3)
    assert np.array_equal(a, make_long_tail(labels, 10, seed=3))
    b = make_long_tail(labels, 10, seed=4)
    assert not np.array_equal(a, b)
    assert np.array_equal(np.bincount(labels[a]), np.bincount(labels[b]))


def test_make_long_tail_pinned_indices():
    """Pins the ``default_rng`` draw (one generator visiting classes in id order): a change here
    breaks every split stored with ``data.subset=default_rng``."""
    labels = np.repeat(np.arange(3), 4)
    idx = make_long_tail(labels, ratio=4, seed=0, subset="default_rng")
    expected = []
    rng = np.random.default_rng(0)
    for c, n in enumerate([4, 2, 1]):
        expected.extend(rng.permutation(np.arange(4 * c, 4 * c + 4))[:n])
    assert idx.tolist() == sorted(expected)
    assert indices_sha256(idx) == indices_sha256(np.array(sorted(expected)))


def test_class_order_permutes_counts():
    labels = balanced_labels(num_classes=4, per_class=20)
    idx = make_long_tail(labels, ratio=4, class_order=[2, 0, 3, 1])
    counts = np.bincount(labels[idx])
    expected = long_tail_counts(4, 20, 4)
    assert (
        counts[2] == expected[0]
        and counts[0] == expected[1]
        and counts[3] == expected[2]
        and counts[1] == expected[3]
    )


def test_max_count_above_available_is_refused():
    with pytest.raises(UserError, match="lower --max-count to at most 50"):
        make_long_tail(balanced_labels(), 10, max_count=60)


def test_shot_groups_absolute_boundaries():
    counts = [500, 101, 100, 20, 19, 1]
    groups = shot_groups(counts)
    assert groups["many"].tolist() == [0, 1]
    assert groups["medium"].tolist() == [2, 3]
    assert groups["few"].tolist() == [4, 5]


def test_cifar100_lt_r100_group_sizes():
    groups = shot_groups(long_tail_counts(100, 500, 100))
    assert [len(groups[g]) for g in ("many", "medium", "few")] == [35, 35, 30]


def test_relative_grouping_when_an_absolute_group_is_empty():
    counts = long_tail_counts(10, 5000, 100)  # CIFAR-10-LT: no class below 20
    assert len(shot_groups(counts)["few"]) == 0
    groups, used = choose_shot_groups(counts)
    assert used == "relative"
    assert {k: v.tolist() for k, v in relative_shot_groups(counts).items()} == {
        k: v.tolist() for k, v in groups.items()
    }
    assert [g.tolist() for g in groups.values()] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    _, used = choose_shot_groups(long_tail_counts(100, 500, 100))
    assert used == "absolute"


def test_list_file_round_trip_and_validation(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("x.jpg", "y.jpg"):
        (tmp_path / "a" / name).write_bytes(b"")
    write_list_file(tmp_path / "list.txt", [("a/x.jpg", 0), ("a/y.jpg", 2)])
    assert (tmp_path / "list.txt").read_text() == "a/x.jpg 0\na/y.jpg 2\n"
    assert read_list_file(tmp_path / "list.txt", tmp_path, num_classes=3) == [
        ("a/x.jpg", 0),
        ("a/y.jpg", 2),
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("a/x.jpg 0\na/x.jpg 1\n", "duplicate entry 'a/x.jpg'"),
        ("a/x.jpg 0\na/y.jpg 7\n", "label 7 is out of range 0..2"),
        (
            "a/x.jpg 0\na/missing.jpg 1\n",
            "1 of 2 images in list.txt are missing.*first: a/missing.jpg",
        ),
        ("a/x.jpg zero\n", "expected 'relative/path label'"),
        ("\n", "has no entries"),
    ],
)
def test_bad_list_files(tmp_path, text, message):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg").write_bytes(b"")
    (tmp_path / "a" / "y.jpg").write_bytes(b"")
    (tmp_path / "list.txt").write_text(text)
    with pytest.raises(UserError, match=message):
        read_list_file(tmp_path / "list.txt", tmp_path, num_classes=3)


def test_manifest_fields():
    counts = long_tail_counts(100, 500, 100)
    m = split_manifest("cifar100", 100, "exp", 0, counts, "abc")
    assert m["total"] == 10847 and m["num_classes"] == 100 and m["grouping"] == "absolute"
    assert set(m) >= {
        "dataset",
        "ratio",
        "profile",
        "seed",
        "num_classes",
        "counts",
        "total",
        "groups",
        "sha256",
    }
    assert sorted(m["groups"]["many"] + m["groups"]["medium"] + m["groups"]["few"]) == list(
        range(100)
    )
