"""Fixed simplex-ETF anchors: pre-defined class centres with no semantics (Yang et al., NeurIPS 2022).

With D >= K the anchors are the columns of M = sqrt(K / (K - 1)) P (I_K - 11^T / K), P a seeded
random orthonormal D x K basis: unit vectors with every pairwise cosine equal to -1 / (K - 1).
With D < K no exact ETF exists; the anchors are then unit vectors spread by minimising the
log-sum-exp of their pairwise cosines on the sphere (as targeted supervised contrastive learning
does), seeded, and the achieved largest pairwise cosine is recorded.

Features are pulled with weight * (1 - cos(f_i, m_{y_i})): the anchors have negative coordinates
that post-ReLU features cannot reach with an L2 pull, but they can align in angle.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from lt_bench.methods.base import METHODS, Regularizer
from lt_bench.options import at_least, option_ranges


def simplex_etf(num_classes: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """K x D rows of a simplex equiangular tight frame (requires D >= K)."""
    if dim < num_classes:
        raise ValueError(
            f"a simplex ETF of {num_classes} classes needs dim >= {num_classes}, got {dim}"
        )
    basis, _ = torch.linalg.qr(
        torch.randn(dim, num_classes, generator=generator, dtype=torch.float64)
    )
    centring = torch.eye(num_classes, dtype=torch.float64) - 1.0 / num_classes
    frame = math.sqrt(num_classes / (num_classes - 1)) * basis @ centring
    return frame.T.float().contiguous()


def spread_anchors(
    num_classes: int,
    dim: int,
    generator: torch.Generator,
    steps: int = 2000,
    temperature: float = 0.05,
) -> torch.Tensor:
    """K x D unit rows with small pairwise cosines: minimise mean_i logsumexp_{j != i} cos_ij / t."""
    anchors = torch.randn(
        num_classes, dim, generator=generator, dtype=torch.float64
    ).requires_grad_(True)
    optimizer = torch.optim.Adam([anchors], lr=0.01)
    off_diagonal = ~torch.eye(num_classes, dtype=torch.bool)
    for _ in range(steps):
        unit = F.normalize(anchors, dim=1)
        cos = (unit @ unit.T)[off_diagonal].view(num_classes, num_classes - 1)
        loss = torch.logsumexp(cos / temperature, dim=1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return F.normalize(anchors.detach(), dim=1).float()


def max_pairwise_cosine(rows: torch.Tensor) -> float:
    unit = F.normalize(rows, dim=1)
    cos = unit @ unit.T
    cos.fill_diagonal_(-float("inf"))
    return float(cos.max())


@METHODS.register("etf")
@option_ranges(weight=at_least(0), seed=at_least(0), steps=at_least(1))
class ETFAnchors(Regularizer):
    def __init__(
        self,
        num_classes,
        feat_dim,
        class_counts,
        run_seed: int = 0,
        weight: float = 0.1,
        fixed_classifier: bool = False,
        seed: Optional[int] = None,
        steps: int = 2000,
    ):
        super().__init__(num_classes, feat_dim, class_counts, run_seed)
        self.weight, self.use_fixed_classifier = weight, fixed_classifier
        self.seed = run_seed if seed is None else seed  # method.seed, else the run's
        generator = torch.Generator().manual_seed(self.seed)
        if feat_dim >= num_classes:
            anchors, self.construction = (
                simplex_etf(num_classes, feat_dim, generator),
                "simplex_etf",
            )
        else:
            anchors, self.construction = (
                spread_anchors(num_classes, feat_dim, generator, steps),
                "spread_logsumexp",
            )
        self.register_buffer("anchors", anchors)
        self.max_cosine = max_pairwise_cosine(anchors)

    def forward(self, features, logits, targets, classifier, context=None):
        cos = F.cosine_similarity(features, self.anchors[targets].to(features.dtype), dim=1)
        return {"etf/pull": self.weight * (1 - cos).mean()}

    def centroids(self):
        return self.anchors

    def fixed_classifier(self):
        return self.anchors if self.use_fixed_classifier else None

    def info(self):
        return {
            "anchors": self.construction,
            "max_pairwise_cosine": self.max_cosine,
            "anchor_seed": self.seed,
        }
