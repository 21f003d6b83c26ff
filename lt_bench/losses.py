"""Base losses and class re-weighting; any of them combines with any regularizer.

Every loss takes ``(logits, targets, weight=None)`` where ``weight`` is an optional per-class
weight vector (class-balanced or DRW, from :class:`Reweighting`). Each loss follows one reference
file, named in its docstring, and applies ``weight`` exactly as that file does; a loss whose
reference takes no weight applies it as ``ce`` does. ``tests/test_losses_reference.py`` holds a
transcription of every reference and compares each loss, and its gradient, with it.
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
        counts = torch.as_tensor(np.asarray(class_counts), dtype=torch.float64)
        self.register_buffer("log_prior", torch.log(counts / counts.sum()).float())

    def forward(
        self, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        raise NotImplementedError


@LOSSES.register("none")
class NoBaseLoss(BaseLoss):
    """No base loss: the method's own terms train the network alone (HPN's official recipe is its
    prototype loss alone; ``loss.name=none method.name=hpn``). ``loss/base`` is logged as 0.
    With ``method.name=none`` nothing would train: :mod:`lt_bench.validate` refuses it."""

    def forward(self, logits, targets, weight=None):
        return logits.new_zeros(())


@LOSSES.register("ce")
@option_ranges(weighting=one_of("weighted_mean", "batch_mean"))
class CrossEntropy(BaseLoss):
    """Cross-entropy. With class weights it follows kaidic/LDAM-DRW cifar_train.py,
    ``nn.CrossEntropyLoss(weight=per_cls_weights)``: sum_i w_yi CE_i / sum_i w_yi.
    ``weighting=batch_mean`` follows richardaecn/class-balanced-loss src/cifar_main.py instead
    (``loss_type='softmax'``: ``tf.losses.softmax_cross_entropy`` with per-sample weights w_yi,
    reduced by the number of non-zero weights): sum_i w_yi CE_i / batch size."""

    def __init__(self, class_counts, weighting: str = "weighted_mean"):
        super().__init__(class_counts)
        self.weighting = weighting

    def forward(self, logits, targets, weight=None):
        if weight is not None and self.weighting == "batch_mean":
            return F.cross_entropy(logits, targets, weight=weight, reduction="none").mean()
        return F.cross_entropy(logits, targets, weight=weight)


@LOSSES.register("balanced_softmax")
class BalancedSoftmax(BaseLoss):
    """Ren et al., NeurIPS 2020: cross-entropy on logits + log n_c, as
    jiawei-ren/BalancedMetaSoftmax-Classification loss/BalancedSoftmaxLoss.py
    (``balanced_softmax_loss``; log n_c and log n_c/n give the same softmax). The reference takes
    no class weights; given some, they are applied as ``ce`` applies them (no reference)."""

    def forward(self, logits, targets, weight=None):
        return F.cross_entropy(logits + self.log_prior, targets, weight=weight)


@LOSSES.register("logit_adjust")
@option_ranges(tau=at_least(0))
class LogitAdjustment(BaseLoss):
    """Menon et al., ICLR 2021: cross-entropy on logits + log(prior^tau + 1e-12), as
    google-research/google-research logit_adjustment/utils.py (``build_loss_fn`` with
    ``use_la_loss``; ``base_probs`` the training class frequencies). The reference takes no class
    weights; given some, they are applied as ``ce`` applies them (no reference)."""

    def __init__(self, class_counts, tau: float = 1.0):
        super().__init__(class_counts)
        self.tau = tau
        counts = np.asarray(class_counts, dtype=np.float64)
        adjustment = np.log((counts / counts.sum()) ** tau + 1e-12)
        self.register_buffer("adjustment", torch.as_tensor(adjustment, dtype=torch.float32))

    def forward(self, logits, targets, weight=None):
        return F.cross_entropy(logits + self.adjustment, targets, weight=weight)


@LOSSES.register("ldam")
@option_ranges(max_margin=greater_than(0), scale=greater_than(0))
class LDAM(BaseLoss):
    """Cao et al., NeurIPS 2019, as kaidic/LDAM-DRW losses.py (``LDAMLoss``): margins
    proportional to n_c^(-1/4), largest ``max_margin``, on cosine logits; class weights as its
    ``F.cross_entropy(..., weight=self.weight)``. The cosine classifier applies the scale s
    (``scale``), so the logits here are s cos; the margin is subtracted in the same units:
    s (cos_y - m_y)."""

    classifier = "cosine"

    def __init__(self, class_counts, max_margin: float = 0.5, scale: float = 30.0):
        super().__init__(class_counts)
        margins = 1.0 / np.sqrt(np.sqrt(np.asarray(class_counts, dtype=np.float64)))
        margins = margins * (max_margin / margins.max())
        self.register_buffer("margins", torch.as_tensor(margins, dtype=torch.float32))
        self.scale = self.cosine_scale = scale

    def forward(self, logits, targets, weight=None):
        margin = F.one_hot(targets, logits.shape[1]).to(logits.dtype) * self.margins[targets, None]
        return F.cross_entropy(logits - self.scale * margin, targets, weight=weight)


@LOSSES.register("focal")
@option_ranges(gamma=at_least(0), weighting=one_of("ldam_drw", "weighted_mean"))
class Focal(BaseLoss):
    """Softmax focal loss (1 - p)^gamma * CE as kaidic/LDAM-DRW losses.py (``FocalLoss``; gamma 1
    as its cifar_train.py). Class weights enter as there: the per-sample weighted CE
    l_i = w_yi CE_i, then (1 - exp(-l_i))^gamma * l_i, averaged over the batch.
    ``weighting=weighted_mean`` is a departure kept from earlier lt-bench: the alpha-balanced form
    w_yi (1 - p_yi)^gamma CE_i with the model's p_yi, divided by sum_i w_yi."""

    def __init__(self, class_counts, gamma: float = 1.0, weighting: str = "ldam_drw"):
        super().__init__(class_counts)
        self.gamma, self.weighting = gamma, weighting

    def forward(self, logits, targets, weight=None):
        if weight is None or self.weighting == "ldam_drw":
            ce = F.cross_entropy(logits, targets, weight=weight, reduction="none")
            return ((1 - torch.exp(-ce)) ** self.gamma * ce).mean()
        ce = F.cross_entropy(logits, targets, reduction="none")
        w = weight[targets]
        return (w * (1 - torch.exp(-ce)) ** self.gamma * ce).sum() / w.sum()


@LOSSES.register("sigmoid_focal")
@option_ranges(gamma=at_least(0))
class SigmoidFocal(BaseLoss):
    """Cui et al., CVPR 2019, class-balanced focal loss as richardaecn/class-balanced-loss
    src/cifar_main.py (``focal_loss``, ``loss_type='focal'``; gamma 1 as its default): one
    sigmoid per class, alpha = w_yi on every class of sample i, summed and divided by the batch
    size. gamma 0 is its ``loss_type='sigmoid'``. Not done here: that file's classifier starts its
    bias at -log(C - 1) and leaves the bias out of weight decay."""

    def __init__(self, class_counts, gamma: float = 1.0):
        super().__init__(class_counts)
        self.gamma = gamma

    def forward(self, logits, targets, weight=None):
        labels = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
        # (1 - p_t)^gamma as the reference writes it, exp(-gamma y x - gamma log(1 + e^-x)).
        modulator = torch.exp(self.gamma * (F.logsigmoid(logits) - labels * logits))
        loss = modulator * bce
        if weight is not None:
            loss = weight[targets, None] * loss
        return loss.sum() / labels.sum()


def class_balanced_weights(class_counts: Sequence[int], beta: float = 0.9999) -> torch.Tensor:
    """Cui et al., CVPR 2019: (1 - beta) / (1 - beta^n_c), normalised to sum to the class count,
    as kaidic/LDAM-DRW cifar_train.py (``per_cls_weights``) and richardaecn/class-balanced-loss
    src/cifar_main.py (``main``) both compute them."""
    counts = np.asarray(class_counts, dtype=np.float64)
    weights = (1.0 - beta) / (1.0 - np.power(beta, counts))
    return torch.as_tensor(weights / weights.sum() * len(counts), dtype=torch.float32)


@option_ranges(
    reweight=one_of("none", "cb", "drw"),
    cb_beta=between(0, 1, high_open=True),
    drw_epoch=at_least(0),
)
class Reweighting:
    """Per-class loss weights by epoch, as kaidic/LDAM-DRW cifar_train.py: ``none``, ``cb`` (its
    ``train_rule='Reweight'``: class-balanced weights always), ``drw`` (its ``train_rule='DRW'``:
    from ``drw_epoch`` on; before, its beta 0 gives all-one weights, the same loss as none).
    The base loss decides how the weights enter (Cui et al.'s own CB losses: ``ce`` with
    ``weighting=batch_mean`` and ``sigmoid_focal``). Its options sit in the config's ``loss``
    section beside the base loss's own."""

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


@LOSSES.register("dot_regression")
class DotRegression(BaseLoss):
    """Yang et al., NeurIPS 2022, the dot-regression (DR) loss, as
    NeuralCollapseApplications/ImbalancedLearning (commit 2ebb309dddcd0ac8b18222fd06357099260bc169)
    methods.py (``dot_loss``, ``criterion='reg_dot_loss'``, ``produce_Ew``) and train.py (``train``:
    ``H_length`` detached, ``GivenEw`` on, its default in utils/logger.py).

    The official term of sample i is 1/2 (E w_y . h - ||E w_y|| ||h||)^2 / ||h||, ``||h||`` and
    ``||E w_y||`` without gradient, averaged over the batch. It is defined on the logits of the
    fixed ETF classifier of method ``etf_dr`` (unit rows w_k, BatchNorm then L2-normalised
    features h): there ||w_y|| = ||h|| = 1 and z_y = w_y . h, so the term is 1/2 E_y^2 (z_y - 1)^2:
    only the true class's cosine is pulled, to 1. ``batch_class_weights`` (``GivenEw``):
    E_y^2 = B / (U n_y), n_y the class's images in the batch and U the classes present, i.e. the
    mean over the batch's classes of each class's mean term; false: E_y = 1. The reference takes
    no class weights; given some (cb, drw), they are applied as ``ce`` applies them. Its
    ``reg_lam`` term (0 in every official config) penalises ||h||, which is 1 here: not offered."""

    method = "etf_dr"  # the method whose classifier the loss is defined for (the validator checks)

    def __init__(self, class_counts, batch_class_weights: bool = True):
        super().__init__(class_counts)
        self.batch_class_weights = batch_class_weights

    def forward(self, logits, targets, weight=None):
        target_logit = logits.gather(1, targets[:, None]).squeeze(1)
        loss = 0.5 * (target_logit - 1.0) ** 2
        if self.batch_class_weights:
            in_batch = torch.bincount(targets, minlength=logits.shape[1]).to(loss.dtype)
            present = (in_batch > 0).sum()
            loss = loss * (len(targets) / present) / in_batch[targets]
        if weight is None:
            return loss.mean()
        w = weight[targets].to(loss.dtype)
        return (w * loss).sum() / w.sum()
