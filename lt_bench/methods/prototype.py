"""EM-style momentum prototypes: the baseline SAR argues against.

Prototypes are a momentum average of detached batch class means,
p_c <- m p_c + (1 - m) mean_{y_i = c} f_i (a class's first batch mean initialises it), and
features are pulled with weight * MSE(f_i, p_{y_i}) exactly as SAR pulls them towards its EMA
anchors: the two differ only in where the centroid comes from. An optional CAR-style inter-class
term pushes the batch's class centres apart (off by default).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lt_bench.distributed import all_reduce_sum
from lt_bench.methods.base import METHODS, Regularizer
from lt_bench.options import at_least, between, option_ranges


@METHODS.register("prototype")
@option_ranges(weight=at_least(0), momentum=between(0, 1, high_open=True), inter_weight=at_least(0))
class MomentumPrototypes(Regularizer):
    def __init__(
        self,
        num_classes,
        feat_dim,
        class_counts,
        run_seed: int = 0,
        weight: float = 0.1,
        momentum: float = 0.9,
        inter_weight: float = 0.0,
    ):
        super().__init__(num_classes, feat_dim, class_counts, run_seed)
        self.weight, self.momentum, self.inter_weight = weight, momentum, inter_weight
        self.register_buffer("prototypes", torch.zeros(num_classes, feat_dim))
        self.register_buffer("seen", torch.zeros(num_classes, dtype=torch.bool))

    def batch_sums(
        self, features: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        sums = torch.zeros(
            self.num_classes, features.shape[1], device=features.device, dtype=features.dtype
        )
        return sums.index_add(0, targets, features), torch.bincount(
            targets, minlength=self.num_classes
        )

    def forward(self, features, logits, targets, classifier, context=None):
        sums, count = self.batch_sums(features, targets)
        means, present = sums / count.clamp(min=1)[:, None].to(sums.dtype), count > 0
        if self.training:
            with torch.no_grad():
                # Under DDP the prototypes follow the global batch's class means, identically on every rank.
                global_sums, global_count = (
                    all_reduce_sum(sums.detach().float()),
                    all_reduce_sum(count.clone()),
                )
                present = global_count > 0
                detached = global_sums / global_count.clamp(min=1)[:, None]
                blended = self.momentum * self.prototypes + (1 - self.momentum) * detached
                update = torch.where(self.seen[:, None], blended, detached)
                self.prototypes.copy_(torch.where(present[:, None], update, self.prototypes))
                self.seen |= present
        terms = {
            "prototype/pull": self.weight
            * F.mse_loss(features, self.prototypes[targets].to(features.dtype))
        }
        if self.inter_weight > 0:
            centres = F.normalize(means[count > 0], dim=1)
            k = len(centres)
            if k > 1:
                cos = centres @ centres.T
                off_diagonal = cos[~torch.eye(k, dtype=torch.bool, device=cos.device)]
                terms["prototype/inter"] = self.inter_weight * F.relu(off_diagonal).mean()
        return terms

    def centroids(self):
        return self.prototypes

    def run_summary(self, history):
        never = int((~self.seen).sum())
        warnings = (
            [
                f"prototype: {never} of {self.num_classes} classes never appeared in a batch "
                "(no prototype): their features were pulled towards zero"
            ]
            if never and history
            else []
        )
        return {"classes_never_seen": never}, warnings
