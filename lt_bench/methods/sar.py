"""Semantic Anchor Regularization (Ge et al., AAAI 2024), carried from the official segmentation code
(geyanqi/SAR, mmseg/models/segmentors/sar.py) to classification, rule for rule:

1. Fixed random anchors ``randn(K, D)`` (a buffer, never trained), drawn from the run's ``seed``
   unless ``method.seed`` is set, so that seeds of a study differ in their anchors too.
2. A projector, Linear-BN-ReLU-Linear-BN-ReLU then the official 1x1 ConvModule (a bias-free
   Linear-BN-ReLU), turns them into semantic anchors a_k.
3. The anchors go through the *shared* classifier; CE_k is each anchor's cross-entropy with its
   own class and p_k its softmax probability. p_k > filter_conf is set to 1 (weight 0); the
   weights are w_k = log p_k / (sum_j log p_j + 1e-9) and the term is trade_off_ce * sum_k w_k CE_k.
   The weights are not detached, as in the official code. The classifier receives this gradient
   unless ``detach_classifier`` (the disentangled variant).
4. Gate: every anchor is argmax-correct and every CE_k < -log(update_conf) (p_k > update_conf).
   The first time the gate holds, the EMA anchors become a detached copy of a_k; afterwards
   ema <- momentum * ema + (1 - momentum) * a_k (detached).
5. Pull: trade_off * MSE(f_i, ema_{y_i}) averaged over the batch, on gated steps only, with the
   EMA anchors as updated on this step; no gradient reaches the EMA anchors.

The gate is applied with tensor arithmetic (no host sync): on steps where it fails the pull term
is exactly zero and the EMA anchors are left untouched.

What segmentation never met, classification does: a short schedule. The gate needs every anchor
right with p > update_conf, and the EMA counts gated steps with a momentum (0.999) chosen for
40k-160k-iteration schedules. ``run_summary`` therefore reports the first gated epoch, the gate
rate and the weight the EMA anchors still give their first copy, and warns when the pull never
acted, rarely acted, or pulled towards a target frozen near its first value.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from lt_bench.methods.base import METHODS, Regularizer
from lt_bench.options import at_least, between, option_ranges


def projector(dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(dim, dim), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
        nn.Linear(dim, dim), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
        nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
    )  # fmt: skip


def anchor_weights(prob: torch.Tensor, filter_conf: float) -> torch.Tensor:
    """w_k = log p_k / (sum_j log p_j + 1e-9), with p_k > filter_conf treated as 1 (weight 0)."""
    prob = torch.where(prob > filter_conf, torch.ones_like(prob), prob)
    log_prob = torch.log(prob)
    return log_prob / (log_prob.sum() + 1e-9)


@METHODS.register("sar")
@option_ranges(
    trade_off=at_least(0),
    trade_off_ce=at_least(0),
    filter_conf=between(0, 1, low_open=True),
    update_conf=between(0, 1, low_open=True, high_open=True),
    momentum=between(0, 1, high_open=True),
    seed=at_least(0),
)
class SAR(Regularizer):
    def __init__(
        self,
        num_classes,
        feat_dim,
        class_counts,
        run_seed: int = 0,
        trade_off: float = 0.1,
        trade_off_ce: float = 1.0,
        filter_conf: float = 0.9,
        update_conf: float = 0.8,
        momentum: float = 0.999,
        detach_classifier: bool = False,
        seed: Optional[int] = None,
    ):
        super().__init__(num_classes, feat_dim, class_counts, run_seed)
        self.trade_off, self.trade_off_ce = trade_off, trade_off_ce
        self.filter_conf, self.update_conf, self.momentum = filter_conf, update_conf, momentum
        self.detach_classifier = detach_classifier
        self.seed = run_seed if seed is None else seed  # method.seed, else the run's
        generator = torch.Generator().manual_seed(self.seed)
        self.register_buffer(
            "random_anchors", torch.randn(num_classes, feat_dim, generator=generator)
        )
        self.register_buffer("labels", torch.arange(num_classes))
        self.projector = projector(feat_dim)
        self.register_buffer("ema_anchors", torch.zeros(num_classes, feat_dim))
        self.register_buffer("initialised", torch.tensor(False))
        self.register_buffer("gate_steps", torch.tensor(0))  # gated steps this epoch
        self.register_buffer("anchor_correct", torch.tensor(0))
        self.epoch_steps = 0  # steps this epoch: the loop's StepContext, else counted here

    def semantic_anchors(self) -> torch.Tensor:
        return self.projector(self.random_anchors)

    def anchor_logits(self, anchors: torch.Tensor, classifier: nn.Module) -> torch.Tensor:
        if not self.detach_classifier:
            return classifier(anchors)
        detached = {name: p.detach() for name, p in classifier.named_parameters()}
        return functional_call(classifier, detached, (anchors,))

    def forward(self, features, logits, targets, classifier, context=None):
        anchors = self.semantic_anchors()
        anchor_logits = self.anchor_logits(anchors, classifier).float()
        ce = F.cross_entropy(anchor_logits, self.labels, reduction="none")
        prob = torch.softmax(anchor_logits, dim=1).diagonal()
        weights = anchor_weights(prob, self.filter_conf)
        terms = {"sar/anchor_ce": self.trade_off_ce * (weights * ce).sum()}

        correct = anchor_logits.argmax(dim=1) == self.labels
        gate = correct.all() & (ce < -math.log(self.update_conf)).all()
        if self.training:
            with torch.no_grad():
                current = anchors.detach().float()
                blended = self.momentum * self.ema_anchors + (1 - self.momentum) * current
                updated = torch.where(self.initialised, blended, current)
                self.ema_anchors.copy_(torch.where(gate, updated, self.ema_anchors))
                self.initialised |= gate
                self.gate_steps += gate
                self.epoch_steps = context.step + 1 if context is not None else self.epoch_steps + 1
                self.anchor_correct.copy_(correct.sum())
        pull = F.mse_loss(features, self.ema_anchors[targets].to(features.dtype))
        terms["sar/pull"] = self.trade_off * gate.to(pull.dtype) * pull
        return terms

    def centroids(self):
        return self.ema_anchors if bool(self.initialised) else None

    def epoch_stats(self):
        steps = max(self.epoch_steps, 1)
        stats = {
            "sar/gate_rate": int(self.gate_steps) / steps,
            "sar/gate_ever": bool(self.initialised),
            "sar/anchor_acc": int(self.anchor_correct) / self.num_classes,
            "sar/gate_steps": int(self.gate_steps),
            "sar/steps": self.epoch_steps,
        }
        self.gate_steps.zero_()
        self.epoch_steps = 0
        return stats

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints written before the loop passed a StepContext carried a step counter buffer
        # (always 0 at an epoch's end, where checkpoints are taken): drop it.
        state_dict.pop(prefix + "steps", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def info(self):
        return {"anchor_seed": self.seed}

    def run_summary(self, history):
        gated = sum(row.get("sar/gate_steps", 0) for row in history)
        steps = sum(row.get("sar/steps", 0) for row in history)
        first = next((row["epoch"] for row in history if row.get("sar/gate_steps", 0) > 0), None)
        # The first gated step copies the anchors; each later one keeps momentum of the average.
        first_copy = self.momentum ** (gated - 1) if gated else None
        stats = {
            "first_gate_epoch": first,
            "gate_rate": gated / steps if steps else 0.0,
            "gated_steps": gated,
            "steps": steps,
            "ema_first_copy_weight": first_copy,
        }
        warnings = []
        if steps and not gated:
            last_acc = history[-1].get("sar/anchor_acc", 0.0) if history else 0.0
            warnings.append(
                f"SAR's gate never opened in {steps} steps (at the end {last_acc:.0%} of the "
                f"anchors were classified correctly; the gate needs all of them with p > "
                f"update_conf={self.update_conf:g}): the pull was never applied, only the anchor "
                "cross-entropy acted"
            )
        elif steps and gated / steps < 0.1:
            warnings.append(
                f"SAR's gate opened on only {gated / steps:.1%} of steps ({gated} of {steps}, "
                f"first in epoch {first}): the pull acted rarely"
            )
        if first_copy is not None and first_copy > 0.5:
            suggested = 0.01 ** (1 / max(gated - 1, 1))
            warnings.append(
                f"SAR's EMA anchors still carry {first_copy:.0%} of their first copy after "
                f"{gated} gated steps (method.momentum={self.momentum:g}): the pull target stayed "
                f"near its first value; method.momentum={suggested:.4f} would bring that to 1%"
            )
        return stats, warnings
