"""Separability statistics at ImageNet-LT scale, measured in one run.

An ImageNet-LT-shaped test feature set (50,000 x 2,048 float32, 1,000 classes of 50 images; train
counts from the pareto profile, 1,280 down to 5) goes through every statistic of
``lt_bench.eval.separability.separability``. Targets on 2 CPU cores: <= 30 s wall, <= 3 GiB peak
memory (the process's peak resident set, features included). Also printed: the ratio against NC1
computed with a D x D pseudo-inverse, and against scikit-learn's silhouette on the same points.

    python bench/separability_scale.py [--points 50000 --dim 2048 --classes 1000] [--skip-naive]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def clustered_features(
    points: int, dim: int, classes: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Class centres plus unit noise, post-ReLU like a ResNet's pooled features."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), points // classes)
    centres = rng.standard_normal((classes, dim), dtype=np.float32)
    features = centres[labels]
    features += rng.standard_normal(features.shape, dtype=np.float32)
    np.maximum(features, 0, out=features)
    return features, labels


def naive_nc1(features: np.ndarray, labels: np.ndarray, classes: int) -> float:
    """tr(Sigma_W pinv(Sigma_B)) / K with D x D matrices (equal class weights)."""
    means = np.stack([features[labels == c].mean(0) for c in range(classes)])
    centred = means - means.mean(0)
    sigma_b = centred.T @ centred / classes
    deviation = features - means[labels]
    weights = 1.0 / (classes * np.bincount(labels)[labels])
    sigma_w = (deviation * weights[:, None]).T @ deviation
    # Sigma_B has rank K - 1; numpy's default cutoff (1e-15) would invert float32 noise in its null space.
    return float(np.trace(sigma_w @ np.linalg.pinv(sigma_b, rcond=1e-5, hermitian=True)) / classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=50000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument(
        "--skip-naive", action="store_true", help="skip the naive NC1 and scikit-learn silhouette"
    )
    args = parser.parse_args()

    import torch

    from lt_bench.data.splits import long_tail_counts
    from lt_bench.eval.separability import _stratified, nc1, separability, silhouette

    features, labels = clustered_features(args.points, args.dim, args.classes)
    counts = long_tail_counts(args.classes, 1280, 256, "pareto")
    classifier = np.random.default_rng(1).standard_normal(
        (args.classes, args.dim), dtype=np.float32
    )
    centroids = np.random.default_rng(2).standard_normal((args.classes, args.dim), dtype=np.float32)
    print(
        f"features {features.shape} float32 ({features.nbytes / 2**30:.2f} GiB), {args.classes} classes, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )

    start = time.time()
    report = separability(features, labels, counts, classifier=classifier, centroids=centroids)
    wall = time.time() - start
    peak = peak_rss_gib()
    print(
        f"every statistic: {wall:.1f} s wall (target <= 30), peak memory {peak:.2f} GiB (target <= 3)"
    )
    print(
        f"  silhouette on {report['settings']['silhouette_points']} points, "
        f"kNN on {report['settings']['knn_queries']} queries (leave-one-out)"
    )
    print("  " + ", ".join(f"{k} {v:.4g}" for k, v in report["summary"].items()))

    if args.skip_naive:
        return
    start = time.time()
    ours = nc1(features, labels, args.classes)
    ours_time = time.time() - start
    start = time.time()
    naive = naive_nc1(features, labels, args.classes)
    naive_time = time.time() - start
    print(
        f"NC1 via the class-mean SVD: {ours_time:.1f} s; D x D pseudo-inverse: {naive_time:.1f} s "
        f"({naive_time / ours_time:.1f}x slower); relative difference {abs(ours - naive) / abs(naive):.1e}"
    )

    from sklearn.metrics import silhouette_score

    sample = _stratified(labels, 20000, 0)
    start = time.time()
    ours_s, _ = silhouette(features[sample], labels[sample])
    ours_time = time.time() - start
    start = time.time()
    theirs = silhouette_score(features[sample], labels[sample])
    sk_time = time.time() - start
    print(
        f"silhouette on the same {len(sample)} points: ours {ours_time:.1f} s, scikit-learn {sk_time:.1f} s "
        f"({sk_time / ours_time:.1f}x slower); difference {abs(ours_s - theirs):.1e}"
    )


if __name__ == "__main__":
    main()
