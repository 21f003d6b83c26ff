import numpy as np
import pytest
import torch
from sklearn.metrics import davies_bouldin_score, silhouette_score

from lt_bench.eval.separability import davies_bouldin, knn_accuracy, nc1, separability, silhouette
from lt_bench.methods.etf import simplex_etf


def random_features(n=300, d=12, k=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    centres = rng.normal(0, 2, (k, d))
    return centres[labels] + rng.normal(0, 1, (n, d)), labels


def test_silhouette_equals_scikit_learn():
    x, y = random_features()
    y[0] = 6  # a singleton class scores 0, as in scikit-learn
    ours, used = silhouette(x, y)
    assert used == len(y)
    assert ours == pytest.approx(silhouette_score(x, y), abs=1e-6)


def test_silhouette_samples_above_the_cap():
    x, y = random_features(n=600)
    score, used = silhouette(x, y, max_points=200)
    assert 190 <= used <= 210
    assert score == pytest.approx(silhouette_score(x, y), abs=0.05)


def test_davies_bouldin_equals_scikit_learn():
    x, y = random_features()
    assert davies_bouldin(x, y) == pytest.approx(davies_bouldin_score(x, y), abs=1e-6)


def naive_nc1(x, y):
    """Papyan et al.'s NC1 with a D x D pseudo-inverse; equal class weights in Sigma_W."""
    k = y.max() + 1
    means = np.stack([x[y == c].mean(0) for c in range(k)])
    centred = means - means.mean(0)
    sigma_b = centred.T @ centred / k
    sigma_w = sum(np.cov(x[y == c].T, bias=True) for c in range(k)) / k
    return np.trace(sigma_w @ np.linalg.pinv(sigma_b, rcond=1e-10, hermitian=True)) / k


@pytest.mark.parametrize("d, k", [(12, 6), (4, 9)])
def test_nc1_equals_naive_pseudo_inverse(d, k):
    x, y = random_features(n=400, d=d, k=k, seed=d)
    assert nc1(x, y) == pytest.approx(naive_nc1(x, y), rel=1e-4)


def test_features_on_a_simplex_etf_are_collapsed():
    k, d = 5, 8
    anchors = 3.0 * simplex_etf(k, d, torch.Generator().manual_seed(0)).double().numpy()
    y = np.repeat(np.arange(k), 30)  # more than k = 20 per class, so a kNN vote can be won
    x = anchors[y]
    report = separability(x, y, [50, 40, 30, 20, 10], classifier=anchors, centroids=anchors)[
        "summary"
    ]
    assert report["nc1"] == pytest.approx(0, abs=1e-9)
    # The anchors are float32: cosines are exact to about 1e-7.
    assert report["nc2_equiangularity"] == pytest.approx(0, abs=1e-6)
    assert report["nc2_max_angle"] == pytest.approx(0, abs=1e-6)
    assert report["nc2_etf_distance"] == pytest.approx(0, abs=1e-6)
    assert report["nc2_equinorm_means"] == pytest.approx(0, abs=1e-6)
    assert report["nc3_self_duality"] == pytest.approx(0, abs=1e-9)
    assert report["centroid_distance"] == pytest.approx(0, abs=1e-6) and report[
        "centroid_cosine"
    ] == pytest.approx(1)
    assert report["knn_accuracy"] == 1.0 and report["ncm_accuracy"] == 1.0


def test_distance_statistics_on_a_hand_example():
    # Two classes on a line: class 0 at -1, +1 (mean 0), class 1 at 9, 11 (mean 10).
    x = np.array([[-1.0], [1.0], [9.0], [11.0]])
    y = np.array([0, 0, 1, 1])
    out = separability(x, y, [200, 10], grouping="absolute")
    s = out["summary"]
    assert s["intra_inter_ratio"] == pytest.approx(1 / 10)
    assert s["cdnv"] == pytest.approx((1 + 1) / (2 * 100))
    assert s["fisher_ratio"] == pytest.approx(25 / 1)  # centred means at -5, +5; variance 1
    assert s["davies_bouldin"] == pytest.approx(2 / 10)
    table = out["per_class"]
    assert table.intra_distance.tolist() == [1.0, 1.0] and table.group.tolist() == ["many", "few"]
    assert out["groups"]["many"]["intra_distance"] == 1.0 and np.isnan(
        out["groups"]["medium"]["intra_distance"]
    )


def test_knn_leave_one_out_and_with_memory():
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.8, 0.2]])
    y = np.array([0, 0, 1, 1, 1])  # the last point sits among class 0
    correct, _, used = knn_accuracy(x, y, k=1)
    assert used == 5 and correct.tolist() == [True, True, True, True, False]
    correct, _, _ = knn_accuracy(x[:2], y[:2], memory=x[2:], memory_labels=y[2:], k=1)
    assert correct.tolist() == [False, False]


def test_centroid_bias_and_minority_collapse():
    x, y = random_features(n=600, d=10, k=6)
    means = np.stack([x[y == c].mean(0) for c in range(6)])
    shifted = means + np.array([3.0, 4.0] + [0.0] * 8)
    out = separability(x, y, [300, 200, 50, 15, 10, 5], classifier=means, centroids=shifted)
    assert out["per_class"].centroid_distance.tolist() == pytest.approx([5.0] * 6)
    assert out["groups"]["few"]["centroid_distance"] == pytest.approx(5.0)
    assert -1 <= out["summary"]["minority_collapse_classifier"] <= 1
    assert (
        out["settings"]["grouping"] == "absolute"
        and out["settings"]["knn_memory"] == "test, leave-one-out"
    )


def test_separability_groups_follow_the_grouping_asked_for():
    x, y = random_features(n=300, d=8, k=6)
    counts = [500, 500, 50, 50, 5, 5]
    out = separability(x, y, counts, grouping="terciles")
    assert out["settings"]["grouping"] == "terciles"
    assert out["per_class"].group.tolist() == ["many"] * 2 + ["medium"] * 2 + ["few"] * 2
    step = separability(x, y, [500] * 3 + [5] * 3, grouping="terciles")
    assert step["per_class"].group.tolist() == ["many"] * 3 + ["few"] * 3  # no tie split
    assert all(np.isnan(v) for v in step["groups"]["medium"].values())
