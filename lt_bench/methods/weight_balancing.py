"""Weight balancing (Alshammari et al., CVPR 2022): MaxNorm on the classifier's class weights, by
projected gradient descent, beside a tuned weight decay.

Followed: ShadeAlsha/LTR-weight-balancing at commit 11f438ae31b55b46052cf0048a52cde228b827eb,
``utils/regularizers.py`` (``MaxNorm_via_PGD``), ``utils/trainval.py`` (``train_model``: where the
projection runs) and ``demo1_first-stage-training.py`` / ``demo2_second-stage-training.py`` (the
recipe). What the official code does, and what this file keeps:

1. Only the classifier is projected: its weight rows (one per class), in the Lp norm ``LpNorm``
   (2 by default; here ``norm_type``). The bias is listed too, but a 1-D tensor gets an infinite
   threshold, so it is never changed: here it is left alone.
2. The radius is *relative*: ``min_k ||w_k|| + thresh * (max_k ||w_k|| - min_k ||w_k||)`` of the
   class norms when MaxNorm starts (``setPerLayerThresh``, called once on the model fine-tuning
   starts from), then fixed. ``thresh`` defaults to 1.0 in the class (the largest norm); the demo
   uses 0.1, the default here (``max_norm``). ``relative=false`` makes ``max_norm`` the radius
   itself. In lt-bench the starting norms are those of the classifier before the run's first
   optimizer step; the radius is a buffer, so a resumed run keeps it.
3. A row whose norm exceeds the radius (strictly) is scaled by ``radius / norm``; others are
   untouched. The official ``tau`` exponent is left out: the demo uses tau = 1, where it is a no-op.
4. When: ``train_model`` calls ``PGD`` once per epoch, after the epoch's last optimizer step and
   before evaluation (``every=epoch``, the default); ``every=step`` projects after every step
   (textbook projected gradient descent).
5. The recipe is two-stage: stage 1 trains the whole network with cross-entropy and weight decay,
   no MaxNorm (CIFAR-100-LT: SGD momentum 0.9, lr 0.01, wd 5e-3, cosine, 320 epochs, batch 64);
   stage 2 freezes the backbone and fine-tunes the classifier (weight and bias) with the
   class-balanced focal loss, wd 0.1 and MaxNorm (thresh 0.1), 10 epochs. This method is MaxNorm
   inside lt-bench's one training loop, from the run's first step (not the official second stage,
   whose frozen-backbone fine-tuning is a ``stages/`` matter). The loop owns the optimizer, so
   weight decay is ``optim.weight_decay``, a study setting tuned like any other, not an option
   here; set it as the paper does (5e-3 for CIFAR-100-LT with cross-entropy, far above lt-bench's
   default 2e-4): the paper finds weight decay does more than MaxNorm.

A cosine classifier normalises its rows in the forward pass, so a cap on their norms changes
nothing: ``after_step`` refuses any classifier that is not an ``nn.Linear`` (``classifiers`` names
the kind it needs, for a pre-flight check). The projection depends only on the classifier's
weights, which DDP keeps identical on every process, so every process applies the same one.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from lt_bench.errors import UserError
from lt_bench.methods.base import METHODS, Regularizer, StepContext
from lt_bench.options import at_least, greater_than, one_of, option_ranges

UNSET = -1.0  # the radius and starting norms before MaxNorm starts (norms are never negative)


def row_norms(weight: torch.Tensor, norm_type: float) -> torch.Tensor:
    """Each class's weight norm (one per row)."""
    return torch.linalg.norm(weight.reshape(weight.shape[0], -1), ord=norm_type, dim=1)


def relative_radius(norms: torch.Tensor, fraction: float) -> torch.Tensor:
    """The official per-layer threshold: ``fraction`` of the way from the smallest to the largest
    class norm."""
    return norms.min() + fraction * (norms.max() - norms.min())


@torch.no_grad()
def project_rows(weight: torch.Tensor, radius: torch.Tensor, norm_type: float) -> torch.Tensor:
    """Scale in place every row of ``weight`` whose norm exceeds ``radius`` back onto the ball;
    return the rows' norms before the projection. No host sync: rows within the ball are
    multiplied by exactly 1."""
    norms = row_norms(weight, norm_type)
    scale = torch.where(norms > radius, radius / norms, torch.ones_like(norms))
    weight.mul_(scale.reshape(-1, *([1] * (weight.dim() - 1))))
    return norms


@METHODS.register("weight_balancing")
@option_ranges(max_norm=greater_than(0), norm_type=at_least(1), every=one_of("epoch", "step"))
class WeightBalancing(Regularizer):
    """MaxNorm on the classifier's class weights; adds no loss term."""

    classifiers = ("linear",)  # the classifier kinds it works with: a cosine one ignores norms
    adds_loss = False  # a projection after each step, no loss term

    def __init__(
        self,
        num_classes,
        feat_dim,
        class_counts,
        run_seed: int = 0,
        max_norm: float = 0.1,
        relative: bool = True,
        norm_type: float = 2.0,
        every: str = "epoch",
    ):
        super().__init__(num_classes, feat_dim, class_counts, run_seed)
        self.max_norm, self.relative = float(max_norm), bool(relative)
        self.norm_type, self.every = float(norm_type), every
        # Fixed when MaxNorm starts; buffers, so a resumed run keeps the radius it started with.
        self.register_buffer("radius", torch.tensor(UNSET))
        self.register_buffer("start_norm_min", torch.tensor(UNSET))
        self.register_buffer("start_norm_max", torch.tensor(UNSET))
        self._context: StepContext | None = None
        self._started = False  # radius >= 0, known without a host sync once true
        self._reset_epoch()

    def _reset_epoch(self) -> None:
        self._clipped: torch.Tensor | None = None  # per class: clipped at least once this epoch
        self._largest: torch.Tensor | None = None  # largest row norm met before a projection
        self._after: torch.Tensor | None = None  # the rows' norms after the last projection
        self._projections = 0

    def forward(self, features, logits, targets, classifier, context=None):
        if self.training:
            self._context = context
            if not self.started() and isinstance(classifier, nn.Linear):
                self._start(classifier.weight)  # before the run's first optimizer step
        return {}

    def started(self) -> bool:
        """Whether the radius is fixed (MaxNorm started, in this run or the checkpoint it resumed)."""
        if not self._started:
            self._started = float(self.radius) >= 0  # one host sync, until it is true
        return self._started

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._started = False  # the loaded radius decides

    @torch.no_grad()
    def _start(self, weight: torch.Tensor) -> None:
        norms = row_norms(weight, self.norm_type)
        self.start_norm_min.fill_(norms.min())
        self.start_norm_max.fill_(norms.max())
        radius = relative_radius(norms, self.max_norm) if self.relative else self.max_norm
        self.radius.fill_(radius)

    @torch.no_grad()
    def after_step(self, classifier: nn.Module) -> None:
        if not isinstance(classifier, nn.Linear):
            raise UserError(
                "method weight_balancing caps the norms of a linear classifier's class weights, "
                f"which a {type(classifier).__name__} normalises away; set model.classifier=linear"
            )
        context = self._context
        if self.every == "epoch" and context is not None:
            if context.step + 1 != context.steps_per_epoch:
                return
        weight = classifier.weight
        if not self.started():  # never saw a training forward: start from these weights
            self._start(weight)
        radius = self.radius.to(weight.device, weight.dtype)
        before = project_rows(weight, radius, self.norm_type)
        clipped = before > radius
        self._clipped = clipped if self._clipped is None else self._clipped | clipped
        largest = before.max()
        self._largest = largest if self._largest is None else torch.maximum(self._largest, largest)
        self._after = torch.where(clipped, radius, before)
        self._projections += 1

    def epoch_stats(self) -> dict[str, float]:
        if self._projections == 0:
            return {}
        stats = {
            "weight_balancing/clipped_classes": float(self._clipped.float().mean()),
            "weight_balancing/max_norm_before": float(self._largest),
            "weight_balancing/mean_norm": float(self._after.mean()),
            "weight_balancing/radius": float(self.radius),
            "weight_balancing/projections": self._projections,
        }
        self._reset_epoch()
        return stats

    def info(self) -> dict:
        return {
            "max_norm": self.max_norm,
            "relative": self.relative,
            "norm_type": self.norm_type,
            "every": self.every,
        }

    def run_summary(self, history: list[dict]) -> tuple[dict, list[str]]:
        rows = [row for row in history if "weight_balancing/clipped_classes" in row]
        bound = [row["epoch"] for row in rows if row["weight_balancing/clipped_classes"] > 0]
        largest = max((row["weight_balancing/max_norm_before"] for row in rows), default=None)
        radius = float(self.radius) if self.started() else None
        stats = {
            "radius": radius,
            "start_norm_min": float(self.start_norm_min) if radius is not None else None,
            "start_norm_max": float(self.start_norm_max) if radius is not None else None,
            "largest_norm_before_projection": largest,
            "epochs_bound": len(bound),
            "first_bound_epoch": bound[0] if bound else None,
            "final_clipped_classes": rows[-1]["weight_balancing/clipped_classes"] if rows else None,
        }
        warnings = []
        if rows and not bound and radius is not None:
            warnings.append(
                f"weight balancing: no class weight's norm ever exceeded the MaxNorm radius "
                f"{radius:.4g} (the largest was {largest:.4g}): the constraint never bound, so the "
                f"run was plain training with weight decay; {self._binding_setting(largest)} "
                "would bind"
            )
        return stats, warnings

    def _binding_setting(self, largest: float) -> str:
        """The ``method.max_norm`` below which the largest norm seen would have been clipped."""
        if not self.relative:
            return f"method.max_norm < {largest:.4g}"
        low, high = float(self.start_norm_min), float(self.start_norm_max)
        if high <= low:  # every class started with the same norm: only an absolute radius helps
            return f"method.relative=false with method.max_norm < {largest:.4g}"
        return f"method.max_norm < {(largest - low) / (high - low):.4g}"
