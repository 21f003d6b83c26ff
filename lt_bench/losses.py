"""Base losses and class re-weighting; any of them combines with any regularizer.

Every loss takes ``(logits, targets, weight=None)`` where ``weight`` is an optional per-class
weight vector (class-balanced or DRW), applied as a weighted mean like ``F.cross_entropy``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lt_bench.options import (
    at_least,
    between,
    greater_than,
    one_of,
    option_ranges,
)
from lt_bench.registry import Registry

LOSSES: Registry[type[BaseLoss]] = Registry("base loss")


class BaseLoss(nn.Module):
    classifier = "linear"  # the classifier the loss is defined for
    cosine_scale: float | None = (
        None  # the scale a cosine classifier must apply, if the loss sets it
    )

    def __init__(self, class_counts: Sequence[int]):
        super().__init__()
        counts = torch.as_tensor(np.asarray(class_counts), dtype=torch.float32)
        self.register_buffer("log_prior", torch.log(counts / counts.sum()))

    def forward(
        self, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        raise NotImplementedError


@LOSSES.register("ce")
class CrossEntropy(BaseLoss):
    def forward(self, logits, targets, weight=None):
        return F.cross_entropy(logits, targets, weight=weight)


@LOSSES.register("balanced_softmax")
class BalancedSoftmax(BaseLoss):
    """Ren et al., NeurIPS 2020: cross-entropy on logits + log n_c."""

    def forward(self, logits, targets, weight=None):
        return F.cross_entropy(logits + self.log_prior, targets, weight=weight)


@LOSSES.register("logit_adjust")
@option_ranges(tau=at_least(0))
class LogitAdjustment(BaseLoss):
    """Menon et al., ICLR 2021: cross-entropy on logits + tau * log prior."""

    def __init__(self, class_counts, tau: float = 1.0):
        super().__init__(class_counts)
        self.tau = tau

    def forward(self, logits, targets, weight=None):
        return F.cross_entropy(logits + self.tau * self.log_prior, targets, weight=weight)


@LOSSES.register("ldam")
@option_ranges(max_margin=greater_than(0), scale=greater_than(0))
class LDAM(BaseLoss):
    """Cao et al., NeurIPS 2019: margins proportional to n_c^(-1/4), largest ``max_margin``, on
    cosine logits. The cosine classifier applies the scale s (``scale``), so the logits here are
    s cos; the margin is subtracted in the same units: s (cos_y - m_y)."""

    classifier = "cosine"

    def __init__(self, class_counts, max_margin: float = 0.5, scale: float = 30.0):
        super().__init__(class_counts)
        margins = torch.as_tensor(np.asarray(class_counts), dtype=torch.float32) ** -0.25
        self.register_buffer("margins", margins * (max_margin / margins.max()))
        self.scale = self.cosine_scale = scale

    def forward(self, logits, targets, weight=None):
        margin = F.one_hot(targets, logits.shape[1]).to(logits.dtype) * self.margins[targets, None]
        return F.cross_entropy(logits - self.scale * margin, targets, weight=weight)


@LOSSES.register("focal")
@option_ranges(gamma=at_least(0))
class Focal(BaseLoss):
    """Lin et al., ICCV 2017: (1 - p_y)^gamma * CE; gamma 1 as in LDAM-DRW's comparison."""

    def __init__(self, class_counts, gamma: float = 1.0):
        super().__init__(class_counts)
        self.gamma = gamma

    def forward(self, logits, targets, weight=None):
        ce = F.cross_entropy(logits, targets, reduction="none")
        focal = (1 - torch.exp(-ce)) ** self.gamma * ce
        if weight is None:
            return focal.mean()
        w = weight[targets]
        return (w * focal).sum() / w.sum()


def class_balanced_weights(class_counts: Sequence[int], beta: float = 0.9999) -> torch.Tensor:
    """Cui et al., CVPR 2019: (1 - beta) / (1 - beta^n_c), normalised to sum to the class count."""
    counts = np.asarray(class_counts, dtype=np.float64)
    weights = (1.0 - beta) / (1.0 - np.power(beta, counts))
    return torch.as_tensor(weights / weights.sum() * len(counts), dtype=torch.float32)


@option_ranges(
    reweight=one_of("none", "cb", "drw"),
    cb_beta=between(0, 1, high_open=True),
    drw_epoch=at_least(0),
)
class Reweighting:
    """Per-class loss weights by epoch: ``none``, ``cb`` (always), ``drw`` (cb from ``drw_epoch`` on).
    Its options sit in the config's ``loss`` section beside the base loss's own."""

    def __init__(
        self,
        class_counts: Sequence[int],
        reweight: str = "none",
        cb_beta: float = 0.9999,
        drw_epoch: int = 160,
    ):
        self.kind, self.drw_epoch = reweight, drw_epoch
        self.weights = class_balanced_weights(class_counts, cb_beta)

    def __call__(self, epoch: int) -> torch.Tensor | None:
        if self.kind == "cb" or (self.kind == "drw" and epoch >= self.drw_epoch):
            return self.weights
        return None


REWEIGHT_KEYS = ("reweight", "cb_beta", "drw_epoch")


def split_loss_options(options: dict) -> tuple[dict, dict]:
    """The config's ``loss`` section (less ``name``) as (base-loss options, re-weighting options)."""
    loss = {k: v for k, v in options.items() if k not in REWEIGHT_KEYS and k != "name"}
    return loss, {k: v for k, v in options.items() if k in REWEIGHT_KEYS}


def build_loss(name: str, class_counts: Sequence[int], **options) -> BaseLoss:
    """The registered base loss ``name`` (options checked by :mod:`lt_bench.validate`)."""
    return LOSSES.get(name)(class_counts, **options)
