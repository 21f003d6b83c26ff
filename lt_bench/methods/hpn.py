"""Hyperspherical prototype networks (Mettes, van der Pol and Snoek, NeurIPS 2019).

Before training, one unit prototype per class is placed by maximum separation, as the official
psmmettes/hpn ``prototypes.py`` (commit 87f52052a62e1add45f588e1fde124511384901d) does: from
seeded ``randn(K, D)`` rows, normalised, minimise mean_i max_{j != i} (p_i . p_j + 1) by SGD with
lr 0.1 for 10,000 epochs, renormalising after every step, in fp32 on the CPU. That script passes
momentum 0.9 to ``optim.SGD`` but builds a fresh optimiser after every step, so no momentum
buffer ever carries over: the step is plain gradient descent, which is what ``proto_momentum=0``
(the default) does. The prototypes then stay fixed.

The training term follows ``hpn_cifar.py`` and ``models/cifar/resnet.py`` (commit
55ae12108db1d8246b8ef298cec51c95a16d5aa0): weight * sum_i (1 - cos(f_i, p_{y_i}))^2, summed over
the batch, with ``CosineSimilarity(eps=1e-9)``; ``ResNet.predict`` takes the nearest prototype by
cosine. Here the classifier is fixed to the prototypes (``fixed_classifier=True``), so prediction,
argmax_k f . p_k = argmax_k ||f|| cos(f, p_k), is that same nearest prototype.

Cost: 10,000 steps of a K x K x D product, once per run: about 1 s for K = 10, but for
ImageNet-LT's K = 1,000, D = 2,048 0.2 s a step on two CPU threads (about 35 minutes; fewer with
more cores, or lower ``proto_epochs``). The prototypes are checkpointed with the run, so a resume
reloads them as they were.

The official recipe is the HPN term alone: ``method.name=hpn loss.name=none``. Departures, forced
by lt-bench's face or chosen (also listed in ``info()``):

- With any other base loss it is added to the HPN term. With the fixed classifier, cross-entropy is
  on the logits ||f|| cos(f, p_k); the summed HPN term weighs about one batch size more than the
  averaged base loss, so it dominates, but it is not HPN alone.
- The embedding is the backbone's pooled features (D = feat_dim), not a separate ``fc`` output of
  a chosen size. After a ReLU these are non-negative, and cos(f, p) <= ||max(p, 0)|| for such f:
  the mean of that bound is recorded (``nonnegative_cosine_bound``).
- The fixed classifier is a plain linear layer: with ``model.classifier=cosine`` (or LDAM) its
  scale is not applied to the fixed rows (as for ``etf``).
- The prototype dimension is feat_dim, so K > D + 1 classes are allowed (no simplex exists then;
  the prototypes are just less separated). The achieved largest pairwise cosine is recorded.
- Under DDP the sum is over each process's batch and gradients are averaged over processes.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from typing import Optional

import torch
import torch.nn.functional as F

from lt_bench.distributed import global_mean
from lt_bench.errors import UserError
from lt_bench.methods.base import METHODS, Regularizer
from lt_bench.options import at_least, between, greater_than, one_of, option_ranges


def separation_loss(prototypes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """mean_i max_{j != i} (p_i . p_j + 1), and each row's nearest other row (the argmax).
    The + 1 comes before the max, as in the official loss, so that ties are broken alike."""
    shifted = prototypes @ prototypes.T + 1
    shifted.fill_diagonal_(-float("inf"))
    nearest_value, nearest = shifted.max(dim=1)
    return nearest_value.mean(), nearest


SINGLE_THREAD_WORK = 2**24  # K * K * D multiply-adds per step


@contextmanager
def threads_for(work: int):
    """One thread for a small optimisation: 10,000 tiny steps spend more time waking a thread pool
    than multiplying (100x slower on a busy two-core machine); big ones keep every thread."""
    before = torch.get_num_threads()
    if work < SINGLE_THREAD_WORK:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@lru_cache(maxsize=8)  # a pure function of its arguments; tests and sweeps build the same often
def _separated(
    num_classes: int, dim: int, seed: int, epochs: int, lr: float, momentum: float
) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    prototypes = F.normalize(torch.randn(num_classes, dim, generator=generator), dim=1)
    velocity = torch.zeros_like(prototypes)
    scale = torch.tensor(1.0 / num_classes)  # the mean's gradient, in fp32 as autograd makes it
    with threads_for(num_classes * num_classes * dim):
        for _ in range(epochs):
            _, nearest = separation_loss(prototypes)
            # The loss's gradient, written out: row i's term p_i . p_n(i) sends p_n(i) to row i
            # and p_i to row n(i). Only K of the K x K products carry gradient, so autograd's two
            # dense K x K x D products are not needed.
            grad = (scale * prototypes[nearest]).index_add_(0, nearest, scale * prototypes)
            velocity = momentum * velocity + grad if momentum else grad
            prototypes = F.normalize(prototypes - lr * velocity, dim=1)
    return prototypes


def max_separation_prototypes(
    num_classes: int,
    dim: int,
    seed: int,
    epochs: int = 10000,
    lr: float = 0.1,
    momentum: float = 0.0,
) -> torch.Tensor:
    """K x D unit rows spread on the sphere by gradient descent on :func:`separation_loss` from
    ``randn`` rows drawn with ``seed``, renormalised after every step (fp32, CPU, as the official
    script; momentum 0 is its effective momentum)."""
    return _separated(num_classes, dim, seed, epochs, float(lr), float(momentum)).clone()


def largest_pairwise_cosine(rows: torch.Tensor) -> float:
    cos = F.normalize(rows, dim=1) @ F.normalize(rows, dim=1).T
    cos.fill_diagonal_(-float("inf"))
    return float(cos.max())


@METHODS.register("hpn")
@option_ranges(
    weight=at_least(0),
    reduction=one_of("sum", "mean"),
    seed=at_least(0),
    proto_epochs=at_least(0),
    proto_lr=greater_than(0),
    proto_momentum=between(0, 1, high_open=True),
)
class HypersphericalPrototypes(Regularizer):
    def __init__(
        self,
        num_classes,
        feat_dim,
        class_counts,
        run_seed: int = 0,
        weight: float = 1.0,
        reduction: str = "sum",  # official: summed over the batch; "mean" divides by its size
        fixed_classifier: bool = True,  # predict by the nearest prototype, as the official code
        seed: Optional[int] = None,
        proto_epochs: int = 10000,
        proto_lr: float = 0.1,
        proto_momentum: float = 0.0,  # the official script's effective momentum (see above)
    ):
        super().__init__(num_classes, feat_dim, class_counts, run_seed)
        if feat_dim < 2 or num_classes < 2:
            raise UserError(
                f"hpn needs at least 2 feature dimensions and 2 classes (got feat_dim={feat_dim}, "
                f"{num_classes} classes): prototypes are separated on a sphere of feat_dim dims"
            )
        self.weight, self.reduction = weight, reduction
        self.use_fixed_classifier, self.proto_epochs = fixed_classifier, proto_epochs
        self.proto_lr, self.proto_momentum = proto_lr, proto_momentum
        self.seed = run_seed if seed is None else seed  # method.seed, else the run's
        prototypes = max_separation_prototypes(
            num_classes, feat_dim, self.seed, proto_epochs, proto_lr, proto_momentum
        )
        self.register_buffer("prototypes", prototypes)
        self.max_cosine = largest_pairwise_cosine(prototypes)
        self.cosine_sum: torch.Tensor | None = None  # this epoch's sum of cos(f_i, p_{y_i})
        self.samples = 0

    def forward(self, features, logits, targets, classifier, context=None):
        targets_prototypes = self.prototypes[targets].to(features.dtype)
        cos = F.cosine_similarity(features, targets_prototypes, dim=1, eps=1e-9)
        loss = (1 - cos).pow(2)
        loss = loss.sum() if self.reduction == "sum" else loss.mean()
        if self.training:
            batch = cos.detach().double().sum()
            self.cosine_sum = batch if self.cosine_sum is None else self.cosine_sum + batch
            self.samples += len(targets)
        return {"hpn/loss": self.weight * loss}

    def centroids(self):
        return self.prototypes

    def fixed_classifier(self):
        return self.prototypes if self.use_fixed_classifier else None

    def epoch_stats(self):
        if self.cosine_sum is None:
            return {}
        mean = global_mean(self.cosine_sum, self.samples)
        self.cosine_sum, self.samples = None, 0
        return {"hpn/cosine": mean}

    def departures(self) -> list[str]:
        notes = ["a base loss other than loss.name=none is added to the HPN term"]
        if self.use_fixed_classifier:
            notes.append("fixed classifier is linear: logits ||f|| cos(f, p_k), no cosine scale")
        else:
            notes.append("fixed_classifier=false: prediction by the learned classifier")
        if self.reduction == "mean":
            notes.append("reduction=mean: the official term is summed over the batch")
        if self.proto_momentum:
            notes.append("proto_momentum > 0: the official momentum buffer never carries over")
        return notes

    def info(self):
        k, d = self.num_classes, self.feat_dim
        return {
            "prototypes": "max_separation",
            "prototype_seed": self.seed,
            "max_pairwise_cosine": self.max_cosine,
            # The best any K unit vectors can do when a regular simplex fits (K <= D + 1).
            "simplex_optimum": -1.0 / (k - 1) if k <= d + 1 else None,
            "nonnegative_cosine_bound": float(self.prototypes.clamp(min=0).norm(dim=1).mean()),
            "prediction": "nearest prototype" if self.use_fixed_classifier else "classifier",
            "departures": self.departures(),
        }

    def run_summary(self, history):
        cosines = [row["hpn/cosine"] for row in history if "hpn/cosine" in row]
        stats = {"final_cosine": cosines[-1] if cosines else None}
        warnings = []
        if self.weight == 0 and history:
            warnings.append(
                "hpn: weight=0, the prototype term was never applied: only the base loss acted"
                + (" (on the fixed prototype logits)" if self.use_fixed_classifier else "")
            )
        if self.proto_epochs == 0:
            warnings.append(
                "hpn: proto_epochs=0, the prototypes were never separated: they are random unit "
                f"vectors (largest pairwise cosine {self.max_cosine:.3f})"
            )
        return stats, warnings
