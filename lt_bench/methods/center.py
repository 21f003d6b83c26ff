"""Center loss (Wen et al., ECCV 2016).

Loss: weight * 1/2 * mean_i ||f_i - c_{y_i}||^2. Centres follow the paper's own update, not the
optimizer: delta c_j = sum_{y_i = j} (c_j - f_i) / (1 + n_j), c_j <- c_j - alpha * delta c_j.
"""

from __future__ import annotations

import torch

from lt_bench.distributed import all_reduce_sum
from lt_bench.methods.base import METHODS, Regularizer
from lt_bench.options import at_least, between, option_ranges


@METHODS.register("center")
@option_ranges(weight=at_least(0), alpha=between(0, 1))
class CenterLoss(Regularizer):
    def __init__(
        self,
        num_classes,
        feat_dim,
        class_counts,
        run_seed: int = 0,
        weight: float = 0.01,
        alpha: float = 0.5,
    ):
        super().__init__(num_classes, feat_dim, class_counts, run_seed)
        self.weight, self.alpha = weight, alpha
        self.register_buffer("centers", torch.zeros(num_classes, feat_dim))

    def forward(self, features, logits, targets, classifier, context=None):
        centers = self.centers[targets]
        loss = self.weight * 0.5 * (features - centers).pow(2).sum(dim=1).mean()
        if self.training:
            self.update_centers(features.detach(), targets)
        return {"center/pull": loss}

    @torch.no_grad()
    def update_centers(self, features: torch.Tensor, targets: torch.Tensor) -> None:
        diff = torch.zeros_like(self.centers).index_add_(
            0, targets, self.centers[targets] - features.float()
        )
        count = torch.bincount(targets, minlength=self.num_classes).to(diff.dtype)
        all_reduce_sum(
            diff
        )  # under DDP: the global batch's sums, so every rank moves its centres alike
        all_reduce_sum(count)
        self.centers -= self.alpha * diff / (1.0 + count)[:, None]

    def centroids(self):
        return self.centers

    def run_summary(self, history):
        never = int((self.centers == 0).all(dim=1).sum())  # centres start at zero
        warnings = (
            [
                f"center loss: {never} of {self.num_classes} classes never appeared in a batch "
                "(their centres never moved): their features were pulled towards zero"
            ]
            if never and history
            else []
        )
        return {"classes_never_seen": never}, warnings
