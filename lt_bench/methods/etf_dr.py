"""A fixed simplex-ETF classifier on normalised features, for the dot-regression loss (Yang et al.,
NeurIPS 2022, "Inducing Neural Collapse in Imbalanced Learning: Do We Really Need a Learnable
Classifier at the End of Deep Neural Network?").

Follows NeuralCollapseApplications/ImbalancedLearning, commit
2ebb309dddcd0ac8b18222fd06357099260bc169 (its code files as at d319ff0e): models/resnet_cifar.py
(``ETF_Classifier``), methods.py (``dot_loss``), train.py (``train``), utils/logger.py (defaults)
and config/cifar100/Res_cifar100_imb001_ETF_DR.yaml. Run it as
``method.name=etf_dr loss.name=dot_regression``; the loss is :class:`lt_bench.losses.DotRegression`.

- **Classifier.** The method's :meth:`fixed_classifier` is a whole classifier module
  (:class:`NormalizedETFClassifier`), which the engine puts in place of the learned one: features
  go through a BatchNorm1d with its learnable affine (the official ``BN_H``, ``fix_bn`` off), are
  divided by their L2 norm (clamped at 1e-8), and are multiplied by the fixed ETF, no bias. The
  logits are cosines in [-1, 1], and every consumer (the base loss, prediction, ECE, second
  stages) sees them. The BatchNorm is what lets post-ReLU features reach the ETF's negative
  coordinates; it is trained with the network, weight decay included, as the official optimizer
  does. The classifier runs in fp32 with autocast off (the official code trains in fp32).
- **ETF.** M = sqrt(K / (K - 1)) P (I - 11^T / K), P a D x K orthonormal basis from a QR
  decomposition, as ``ETF_Classifier``; P comes from seeded Gaussian entries (the run's ``seed``,
  or ``method.seed``), not from ``np.random.random``: the same frame up to a rotation. D >= K is
  required, as the official construction needs (a K-simplex would fit in K - 1 dimensions):
  CIFAR-100 with resnet32_cifar's 64-d features is refused; the official CIFAR-100 backbone
  (``resnet32_fe_c100``) is ``model.options.widths=[32,64,128]`` (128-d).
- **Loss.** ``loss.name=dot_regression``; ``loss.name=ce`` instead gives the paper's ETF + CE arm.
  The method adds no loss term of its own.
- **Recipe.** The official CIFAR configs: 200 epochs, SGD lr 0.1, momentum 0.9, weight decay 2e-4,
  batch 128, a 5-epoch linear warm-up and lr x0.1 at 160 and x0.01 at 180: lt-bench's defaults
  with ``optim.gamma=0.1`` (the warm-up is per step here, per epoch there).

Departures: the official CIFAR recipe also trains with mixup (alpha 1), which lt-bench does not
yet offer; the ETF's random basis (above); features for kNN, NCM and the separability statistics
are the backbone's, before the BatchNorm and normalisation.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from lt_bench.distributed import global_mean
from lt_bench.errors import UserError
from lt_bench.methods.base import METHODS, Regularizer
from lt_bench.methods.etf import max_pairwise_cosine, simplex_etf
from lt_bench.options import at_least, option_ranges


class NormalizedETFClassifier(nn.Module):
    """Logits w_k . BN(f) / ||BN(f)||: a learnable BatchNorm1d, L2 normalisation, then fixed rows
    ``weight`` (K x D, no gradient, no bias), as the official ``ETF_Classifier`` and its product
    with ``cur_M``."""

    def __init__(self, rows: torch.Tensor):
        super().__init__()
        self.out_features, self.in_features = rows.shape
        self.norm = nn.BatchNorm1d(self.in_features)
        self.weight = nn.Parameter(rows.detach().clone().float(), requires_grad=False)

    def normalize(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.norm(features), dim=1, eps=1e-8)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        with torch.autocast(features.device.type, enabled=False):
            return F.linear(self.normalize(features.float()), self.weight)


@METHODS.register("etf_dr")
@option_ranges(seed=at_least(0))
class ETFDotRegression(Regularizer):
    classifiers = ("linear",)  # the learned classifier is replaced: a cosine one would be ignored
    adds_loss = False  # its loss is the base loss dot_regression

    @staticmethod
    def check_feature_dim(num_classes: int, feat_dim: int) -> None:
        """The official ETF takes a D x K orthonormal basis: D >= K, else a one-line refusal
        (raised here at build time, and by the validator before a run starts)."""
        if feat_dim < num_classes:
            raise UserError(
                f"method etf_dr needs a feature dim >= the class count ({num_classes}) for its "
                f"simplex ETF, the backbone gives {feat_dim}; widen it, e.g. "
                "model.options.widths=[32,64,128] for resnet32_cifar (the official CIFAR-100 backbone)"
            )

    def __init__(
        self,
        num_classes,
        feat_dim,
        class_counts,
        run_seed: int = 0,
        seed: Optional[int] = None,
    ):
        super().__init__(num_classes, feat_dim, class_counts, run_seed)
        self.check_feature_dim(num_classes, feat_dim)
        self.seed = run_seed if seed is None else seed  # method.seed, else the run's
        generator = torch.Generator().manual_seed(self.seed)
        self.register_buffer("anchors", simplex_etf(num_classes, feat_dim, generator))
        # Steps seen, and steps whose classifier was not the normalised ETF (the method then did
        # nothing): buffers, so a resumed run keeps counting.
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("steps_without_etf", torch.zeros((), dtype=torch.long))
        self.cosine_sum: torch.Tensor | None = None
        self.samples = 0

    def forward(self, features, logits, targets, classifier, context=None):
        if self.training:
            with torch.no_grad():
                self.steps += 1
                if not isinstance(classifier, NormalizedETFClassifier):
                    self.steps_without_etf += 1
                else:  # the logits are cosines: the true class's is what DR pulls to 1
                    batch = logits.gather(1, targets[:, None]).sum()
                    self.cosine_sum = batch if self.cosine_sum is None else self.cosine_sum + batch
                    self.samples += len(targets)
        return {}

    def centroids(self):
        return self.anchors

    def fixed_classifier(self):
        return NormalizedETFClassifier(self.anchors)

    def epoch_stats(self):
        if self.cosine_sum is None:
            return {}
        mean = global_mean(self.cosine_sum, self.samples)
        self.cosine_sum, self.samples = None, 0
        return {"etf_dr/target_cosine": mean}

    def info(self):
        return {
            "anchors": "simplex_etf",
            "anchor_seed": self.seed,
            "max_pairwise_cosine": max_pairwise_cosine(self.anchors),
            "feature_norm": "batchnorm1d (affine) + l2",
            "departures": [
                "no mixup (the official CIFAR recipe uses alpha 1)",
                "ETF basis from seeded Gaussian entries, not np.random.random (same frame up to a rotation)",
            ],
        }

    def run_summary(self, history):
        cosines = [row["etf_dr/target_cosine"] for row in history if "etf_dr/target_cosine" in row]
        stats = {"final_target_cosine": cosines[-1] if cosines else None}
        warnings = []
        off, steps = int(self.steps_without_etf), int(self.steps)
        if off:
            warnings.append(
                f"etf_dr: in {off} of {steps} training steps the classifier was not the normalised "
                "ETF, so the method did nothing there (was the classifier replaced?)"
            )
        return stats, warnings
