"""Feature-separability statistics: neural collapse (NC1-NC3), CDNV, distance ratios, Fisher ratio,
Davies-Bouldin, silhouette, kNN and nearest-class-mean accuracy, minority collapse, centroid bias.

Conventions (so head classes do not dominate):
- class means are taken per class; the global mean is the mean of the class means;
- the within-class covariance averages the per-class covariances with equal class weights;
- only classes present in the features enter class statistics.

Everything is computed with matrix products on (N x D) features and (K x D) means: no D x D
matrix is formed or inverted, and pairwise sample distances are taken in chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from lt_bench.data.splits import GROUPS, choose_shot_groups

CHUNK = 2048
KNN_BUDGET = 5e11  # multiply-adds for the kNN similarities: ~3 s at 150 GFLOP/s; above it, queries are sampled


def _tensor(x) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x))
    return t if t.dtype == torch.float64 else t.float()


def class_means(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    counts = torch.bincount(labels, minlength=num_classes)
    sums = torch.zeros(num_classes, features.shape[1], dtype=features.dtype).index_add_(
        0, labels, features
    )
    return sums / counts.clamp(min=1)[:, None].to(features.dtype), counts


def _rank(singular: torch.Tensor, shape: tuple[int, int]) -> int:
    """Numerical rank, with numpy.linalg.matrix_rank's tolerance."""
    if len(singular) == 0 or singular[0] == 0:
        return 0
    tol = singular[0] * max(shape) * torch.finfo(singular.dtype).eps
    return int((singular > tol).sum())


def nc1(features, labels, num_classes: int | None = None) -> float:
    """tr(Sigma_W Sigma_B^+) / K through the SVD of the centred class-mean matrix (rank <= K - 1).

    With M = U S V^T (K x D, centred means) and Sigma_B = M^T M / K, Sigma_B^+ = K V S^-2 V^T, so
    tr(Sigma_W Sigma_B^+) / K = sum_j (v_j^T Sigma_W v_j) / s_j^2, and v_j^T Sigma_W v_j is a
    weighted sum of squares of the within-class deviations projected on v_j.
    """
    f, y = _tensor(features), torch.as_tensor(np.asarray(labels))
    k = int(y.max()) + 1 if num_classes is None else num_classes
    means, counts = class_means(f, y, k)
    present = counts > 0
    centred = means[present] - means[present].mean(0)
    _, s, vt = torch.linalg.svd(centred, full_matrices=False)
    r = _rank(s, tuple(centred.shape))
    weights = 1.0 / (int(present.sum()) * counts[y].to(f.dtype))
    projected = torch.zeros(r, dtype=f.dtype)
    for start in range(0, len(f), CHUNK * 8):
        stop = start + CHUNK * 8
        deviation = f[start:stop] - means[y[start:stop]]
        projected += (weights[start:stop, None] * (deviation @ vt[:r].T) ** 2).sum(0)
    return float((projected / s[:r] ** 2).sum())


def _pairwise_cosine(rows: torch.Tensor) -> torch.Tensor:
    unit = torch.nn.functional.normalize(rows, dim=1)
    return unit @ unit.T


def _off_diagonal(square: torch.Tensor) -> torch.Tensor:
    return square[~torch.eye(len(square), dtype=torch.bool)]


def _cv(values: torch.Tensor) -> float:
    return float(values.std(unbiased=False) / values.mean())


def silhouette(features, labels, max_points: int = 20000, seed: int = 0) -> tuple[float, int]:
    """Mean silhouette (Euclidean), scikit-learn's convention; exact up to ``max_points``, else on a
    stratified sample of that size. Returns (score, points used)."""
    f, y = _tensor(features), np.asarray(labels)
    if len(y) > max_points:
        chosen = _stratified(y, max_points, seed)
        f, y = f[torch.as_tensor(chosen)], y[chosen]
    order = np.argsort(y, kind="stable")
    f, y = f[torch.as_tensor(order)], y[order]
    classes, starts, sizes = np.unique(y, return_index=True, return_counts=True)
    own = np.searchsorted(classes, y)
    sq = (f * f).sum(1)
    scores = np.empty(len(y))
    for start in range(0, len(y), CHUNK):
        block = f[start : start + CHUNK]
        dist = (
            (sq[start : start + CHUNK, None] + sq[None, :] - 2 * block @ f.T).clamp_(min=0).sqrt_()
        )
        sums = np.add.reduceat(dist.numpy(), starts, axis=1)  # (chunk, clusters)
        rows = np.arange(len(block))
        mine = own[start : start + CHUNK]
        a = sums[rows, mine] / np.maximum(sizes[mine] - 1, 1)
        mean_other = sums / sizes[None, :]
        mean_other[rows, mine] = np.inf
        b = mean_other.min(axis=1)
        s = (b - a) / np.maximum(a, b)
        scores[start : start + CHUNK] = np.where(sizes[mine] > 1, np.nan_to_num(s), 0.0)
    return float(scores.mean()), int(len(y))


def davies_bouldin(features, labels) -> float:
    """scikit-learn's Davies-Bouldin index: mean over classes of max_j (s_i + s_j) / d(c_i, c_j)."""
    f, y = _tensor(features), torch.as_tensor(np.asarray(labels))
    stats = _class_statistics(f, y, int(y.max()) + 1)
    return float(stats.davies_bouldin)


def _stratified(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """About ``size`` indices with every class kept in proportion (at least 2 per class where possible)."""
    rng = np.random.default_rng(seed)
    fraction = size / len(labels)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        take = min(len(members), max(2, int(round(len(members) * fraction))))
        chosen.append(rng.choice(members, take, replace=False))
    return np.sort(np.concatenate(chosen))


@dataclass
class _ClassStats:
    present: torch.Tensor
    means: torch.Tensor
    variance: torch.Tensor  # mean squared distance to the class mean
    intra: torch.Tensor  # mean distance to the class mean
    mean_distances: torch.Tensor  # K x K distances between class means
    davies_bouldin: float = field(default=float("nan"))


def _class_statistics(f: torch.Tensor, y: torch.Tensor, num_classes: int) -> _ClassStats:
    means, counts = class_means(f, y, num_classes)
    deviation = (f - means[y]).norm(dim=1)
    count = counts.clamp(min=1).to(f.dtype)
    intra = torch.zeros(num_classes, dtype=f.dtype).index_add_(0, y, deviation) / count
    variance = torch.zeros(num_classes, dtype=f.dtype).index_add_(0, y, deviation**2) / count
    present = counts > 0
    distances = torch.cdist(means[present][None], means[present][None])[0]
    ratio = (intra[present][:, None] + intra[present][None, :]) / distances
    ratio.fill_diagonal_(-float("inf"))
    db = float(ratio.max(dim=1).values.mean()) if present.sum() > 1 else float("nan")
    return _ClassStats(present, means, variance, intra, distances, db)


def knn_accuracy(
    queries,
    query_labels,
    memory=None,
    memory_labels=None,
    k: int = 20,
    max_queries: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Cosine kNN (majority vote, ties broken by summed similarity). With no memory, leave-one-out
    on the queries. Queries beyond ``max_queries`` (default: as many as KNN_BUDGET multiply-adds
    allow) are a stratified sample. Returns (correct per used query, their labels, queries used)."""
    q, ql = _tensor(queries), np.asarray(query_labels)
    loo = memory is None
    m, ml = (q, ql) if loo else (_tensor(memory), np.asarray(memory_labels))
    if max_queries is None:
        max_queries = max(1000, int(KNN_BUDGET / (len(ml) * q.shape[1])))
    used = np.arange(len(ql)) if len(ql) <= max_queries else _stratified(ql, max_queries, seed)
    q = torch.nn.functional.normalize(q[torch.as_tensor(used)], dim=1)
    m = torch.nn.functional.normalize(m, dim=1)
    ml_t = torch.as_tensor(ml)
    num_classes = int(max(ml.max(), ql.max())) + 1
    k = min(k, len(ml) - (1 if loo else 0))
    correct = np.empty(len(used), dtype=bool)
    for start in range(0, len(used), CHUNK):
        sim = q[start : start + CHUNK] @ m.T
        if loo:
            rows = torch.arange(len(sim))
            sim[rows, torch.as_tensor(used[start : start + CHUNK])] = -float("inf")
        top_sim, top = sim.topk(k, dim=1)
        votes = torch.zeros(len(sim), num_classes, dtype=sim.dtype)
        votes.scatter_add_(1, ml_t[top], torch.ones_like(top_sim) + 1e-3 * top_sim)
        correct[start : start + CHUNK] = votes.argmax(1).numpy() == ql[used[start : start + CHUNK]]
    return correct, ql[used], len(used)


def _per_class_mean(values: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    total = np.bincount(labels, weights=values.astype(np.float64), minlength=num_classes)
    count = np.bincount(labels, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def separability(
    features,
    labels,
    train_counts: Sequence[int],
    classifier=None,
    centroids=None,
    train_features=None,
    train_labels=None,
    grouping: str = "absolute",
    knn_k: int = 20,
    silhouette_max_points: int = 20000,
    knn_max_queries: int | None = None,
    seed: int = 0,
) -> dict:
    """Every statistic, overall, per class and per many / medium / few group.

    Returns {"summary": {...}, "groups": {group: {...}}, "per_class": DataFrame, "settings": {...}}.
    """
    f = _tensor(features)
    y_np = np.asarray(labels, dtype=np.int64)
    y = torch.as_tensor(y_np)
    num_classes = len(train_counts)
    groups, grouping_used = choose_shot_groups(train_counts, grouping)
    stats = _class_statistics(f, y, num_classes)
    present = stats.present
    means = stats.means[present]
    centred = means - means.mean(0)
    weight = _tensor(classifier) if classifier is not None else None

    summary = {"nc1": nc1(f, y, num_classes), **_collapse(centred, weight, present)}
    spread, per_class_spread = _spread(stats, centred)
    summary.update(spread)
    summary["silhouette"], silhouette_points = silhouette(f, y_np, silhouette_max_points, seed)
    knn_correct, knn_labels, knn_queries = knn_accuracy(
        f, y_np, train_features, train_labels, knn_k, knn_max_queries, seed
    )
    summary["knn_accuracy"] = float(knn_correct.mean())
    ncm_correct = _ncm_correct(f, y_np, stats, train_features, train_labels, num_classes)
    summary["ncm_accuracy"] = float(ncm_correct.mean())

    per_class = pd.DataFrame({"class": np.arange(num_classes), "n_train": np.asarray(train_counts)})
    group_of = np.empty(num_classes, dtype=object)
    for name, ids in groups.items():
        group_of[ids] = name
    per_class["group"] = group_of
    for column, values in per_class_spread.items():
        per_class[column] = _expand(values, present)
    per_class["mean_norm"] = _expand(centred.norm(dim=1), present)
    per_class["knn_accuracy"] = _per_class_mean(knn_correct, knn_labels, num_classes)
    per_class["ncm_accuracy"] = _per_class_mean(ncm_correct, y_np, num_classes)
    if centroids is not None:
        c = _tensor(centroids)[present]
        per_class["centroid_distance"] = _expand((c - means).norm(dim=1), present)
        per_class["centroid_cosine"] = _expand(
            torch.nn.functional.cosine_similarity(c, means, dim=1), present
        )
        summary["centroid_distance"] = float(per_class["centroid_distance"].mean())
        summary["centroid_cosine"] = float(per_class["centroid_cosine"].mean())
    summary.update(_minority_collapse(groups["few"], weight, stats, means))

    columns = [c for c in per_class.columns if c not in ("class", "n_train", "group")]
    by_group = {
        name: {col: _nanmean(per_class.loc[per_class["group"] == name, col]) for col in columns}
        for name in GROUPS
    }
    settings = {
        "grouping": grouping_used,
        "classes_present": int(present.sum()),
        "points": int(len(y_np)),
        "silhouette_points": silhouette_points,
        "knn_k": knn_k,
        "knn_queries": knn_queries,
        "knn_memory": "train" if train_features is not None else "test, leave-one-out",
        "within_covariance": "mean of per-class covariances",
    }
    return {"summary": summary, "groups": by_group, "per_class": per_class, "settings": settings}


def _expand(values: torch.Tensor, present: torch.Tensor) -> np.ndarray:
    """Per present class values as a column over all classes (NaN for absent ones)."""
    out = np.full(len(present), np.nan)
    out[present.numpy()] = values.double().numpy()
    return out


def _collapse(centred: torch.Tensor, weight: torch.Tensor | None, present) -> dict[str, float]:
    """NC2 on the centred class means (equinorm, equiangularity, max-angle, distance to a simplex
    ETF) and, with a classifier, its equinorm and NC3 self-duality."""
    k_present = len(centred)
    off = _off_diagonal(_pairwise_cosine(centred))
    gram = centred @ centred.T
    simplex = torch.eye(k_present, dtype=centred.dtype) - 1.0 / k_present
    out = {
        "nc2_equinorm_means": _cv(centred.norm(dim=1)),
        "nc2_equiangularity": float(off.std(unbiased=False)),
        "nc2_max_angle": float((off + 1.0 / (k_present - 1)).abs().mean()),
        "nc2_etf_distance": float((gram / gram.norm() - simplex / simplex.norm()).norm()),
    }
    if weight is not None:
        out["nc2_equinorm_classifier"] = _cv(weight.norm(dim=1))
        w = weight[present]
        out["nc3_self_duality"] = float((w / w.norm() - centred / centred.norm()).norm() ** 2)
    return out


def _spread(stats, centred: torch.Tensor) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """CDNV, intra / inter distance ratio, tr(S_B) / tr(S_W), Davies-Bouldin; and the per-class
    intra and inter distances, their ratio and CDNV (present classes)."""
    present, k_present = stats.present, len(centred)
    variance = stats.variance[present]
    dist = stats.mean_distances
    pair_cdnv = (variance[:, None] + variance[None, :]) / (2 * dist**2)
    inter = dist.sum(1) / max(k_present - 1, 1)
    ratio = stats.intra[present] / inter
    trace_within = float(variance.mean())
    trace_between = float((centred**2).sum(1).mean())
    summary = {
        "cdnv": float(_off_diagonal(pair_cdnv).mean()),
        "intra_inter_ratio": float(ratio.mean()),
        "fisher_ratio": trace_between / trace_within if trace_within > 0 else float("inf"),
        "davies_bouldin": stats.davies_bouldin,
    }
    per_class = {
        "intra_distance": stats.intra[present],
        "inter_distance": inter,
        "intra_inter_ratio": ratio,
        "cdnv": pair_cdnv.fill_diagonal_(0).sum(1) / max(k_present - 1, 1),
    }
    return summary, per_class


def _ncm_correct(f, y_np, stats, train_features, train_labels, num_classes) -> np.ndarray:
    """Nearest-class-mean hits: train class means as memory when given, else the test means."""
    if train_features is not None:
        ncm_means, ncm_counts = class_means(
            _tensor(train_features), torch.as_tensor(np.asarray(train_labels)), num_classes
        )
        candidates = torch.nonzero(ncm_counts > 0).flatten()
    else:
        ncm_means, candidates = stats.means, torch.nonzero(stats.present).flatten()
    nearest = torch.cdist(f[None], ncm_means[candidates][None].to(f.dtype))[0].argmin(1)
    return candidates[nearest].numpy() == y_np


def _minority_collapse(few, weight, stats, means) -> dict[str, float]:
    """Mean pairwise cosine among the few-shot classifier rows and centred class means."""
    out: dict[str, float] = {}
    if len(few) <= 1:
        return out
    if weight is not None:
        out["minority_collapse_classifier"] = float(
            _off_diagonal(_pairwise_cosine(weight[few])).mean()
        )
    few_present = [c for c in few if stats.present[c]]
    if len(few_present) > 1:
        centred_all = stats.means - means.mean(0)
        out["minority_collapse_means"] = float(
            _off_diagonal(_pairwise_cosine(centred_all[few_present])).mean()
        )
    return out


def _nanmean(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.mean()) if len(values) else float("nan")
