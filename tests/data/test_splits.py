import json

import numpy as np
import pytest

from lt_bench.cli import main
from lt_bench.config import GROUPINGS, load_config
from lt_bench.data.groups import tercile_cuts, tercile_shot_groups
from lt_bench.data.splits import (
    choose_shot_groups,
    indices_sha256,
    long_tail_counts,
    make_long_tail,
    read_list_file,
    shot_groups,
    split_manifest,
    write_list_file,
)
from lt_bench.errors import UserError
from lt_bench.validate import check_schema_values


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


def test_absolute_is_the_default_and_an_empty_group_stays_empty():
    counts = long_tail_counts(10, 5000, 100)  # CIFAR-10-LT: no class below 20 images
    for groups, used in (choose_shot_groups(counts), choose_shot_groups(counts, "absolute")):
        assert used == "absolute"  # never replaced by terciles behind the user's back
        assert {k: v.tolist() for k, v in groups.items()} == {
            "many": [0, 1, 2, 3, 4, 5, 6, 7],
            "medium": [8, 9],
            "few": [],
        }


@pytest.mark.parametrize(
    "grouping, message",
    [
        ("auto", r"grouping 'auto' was removed .*use absolute \(the default.* or terciles"),
        ("relative", r"'relative' is now called 'terciles'.*did you mean terciles\?"),
        ("tercile", r"unknown grouping 'tercile'; did you mean terciles\?"),
        ("thirds", r"unknown grouping 'thirds'; choose absolute or terciles"),
    ],
)
def test_removed_and_unknown_groupings_are_refused_naming_the_fix(grouping, message):
    with pytest.raises(UserError, match=message) as err:
        choose_shot_groups([500, 50, 5], grouping)
    assert "\n" not in str(err.value)


def test_config_grouping_defaults_to_absolute_and_refuses_auto():
    assert GROUPINGS == ("absolute", "terciles")
    assert load_config().data.grouping == "absolute"
    with pytest.raises(UserError, match="data.grouping=auto is out of range.*absolute, terciles"):
        check_schema_values(load_config(None, ["data.grouping=auto"]))


def _check_terciles(counts) -> dict:
    """Terciles partition the classes, keep equal counts together and order the groups by size."""
    counts = np.asarray(counts)
    groups = tercile_shot_groups(counts)
    ids = np.concatenate(list(groups.values()))
    assert sorted(ids.tolist()) == list(range(len(counts)))
    group_of = {int(c): name for name, members in groups.items() for c in members}
    for size in np.unique(counts):
        tied = np.flatnonzero(counts == size)
        assert len({group_of[int(c)] for c in tied}) == 1, f"classes of {size} images split"
    sizes = [counts[groups[g]] for g in ("many", "medium", "few") if len(groups[g])]
    assert all(a.min() > b.max() for a, b in zip(sizes, sizes[1:]))
    return {k: v.tolist() for k, v in groups.items()}


def test_terciles_of_a_step_profile_never_split_its_two_sizes():
    # CIFAR-100 step: thirds by rank put 16 classes of 500 and 17 of 5 in "medium".
    counts = [500] * 50 + [5] * 50
    assert counts == long_tail_counts(100, 500, 100, "step")
    groups = _check_terciles(counts)
    assert groups == {"many": list(range(50)), "medium": [], "few": list(range(50, 100))}
    groups, used = choose_shot_groups(counts, "terciles")
    assert used == "terciles" and len(groups["medium"]) == 0
    # Classes in any order: the groups follow the counts, not the class ids.
    shuffled = np.random.default_rng(0).permutation(counts)
    assert _check_terciles(shuffled)["many"] == np.flatnonzero(shuffled == 500).tolist()


@pytest.mark.parametrize("profile", ["exp", "pareto"])
@pytest.mark.parametrize("num_classes, max_count", [(10, 5000), (100, 500)])
@pytest.mark.parametrize("ratio", [10, 50, 100, 200])
def test_terciles_keep_tied_class_sizes_together(profile, num_classes, max_count, ratio):
    counts = long_tail_counts(num_classes, max_count, ratio, profile)
    groups = _check_terciles(counts)
    ranked = sorted(counts, reverse=True)
    k = num_classes
    start = k // 3 + (k % 3 > 0)  # numpy.array_split's cuts into thirds
    targets = (start, start + k // 3 + (k % 3 > 1))
    for cut, target in zip(tercile_cuts(counts), targets):
        if 0 < cut < k:
            assert ranked[cut - 1] > ranked[cut]  # between two sizes, not inside a tie
        # Moved no further than out of the tied block the target falls in.
        nearer = [i for i in range(k + 1) if abs(i - target) < abs(cut - target)]
        assert all(0 < i < k and ranked[i - 1] == ranked[i] for i in nearer)
    assert sum(len(g) for g in groups.values()) == k


def test_terciles_hand_examples():
    # No ties: numpy.array_split's thirds by rank (CIFAR-10-LT exp, ratio 100).
    assert _check_terciles(long_tail_counts(10, 5000, 100)) == {
        "many": [0, 1, 2, 3],
        "medium": [4, 5, 6],
        "few": [7, 8, 9],
    }
    # Cuts at ranks 2 and 4 would split the 9s and the 5s; they move to 3 and, of 3 and 5
    # (equally near), to 5: the medium group is widened, not emptied.
    assert tercile_cuts([9, 9, 9, 5, 5, 1]) == (3, 5)
    assert _check_terciles([1, 5, 9, 5, 9, 9]) == {"many": [2, 4, 5], "medium": [1, 3], "few": [0]}
    assert _check_terciles([7] * 6) == {"many": [], "medium": list(range(6)), "few": []}
    assert _check_terciles([]) == {"many": [], "medium": [], "few": []}


def test_split_prints_an_empty_group_as_empty(capsys, tmp_path):
    argv = ["split", "cifar10", "--ratio", "100", "--root", str(tmp_path / "none")]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "groups (absolute): many 8, medium 2, few 0" in out
    assert "few is empty: no class has <20 training images" in out
    manifest = json.loads((tmp_path / "out" / "split.json").read_text())
    assert manifest["grouping"] == "absolute" and manifest["groups"]["few"] == []
    assert main([*argv, "--grouping", "auto", "--out", str(tmp_path / "auto")]) == 2
    err = capsys.readouterr().err
    assert "grouping 'auto' was removed" in err and not (tmp_path / "auto").exists()


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
