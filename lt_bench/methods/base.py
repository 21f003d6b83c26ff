"""The regularizer's face: it only adds named, already-weighted loss terms.

The engine owns backbone, classifier, optimizer, schedule and base loss, so every method is
trained by the same loop and comparisons are fair by construction. State (centres, prototypes,
anchors) lives in buffers and parameters, so checkpoints carry it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn

from lt_bench.registry import Registry


@dataclass(frozen=True)
class StepContext:
    """Where the loop is when it calls a regularizer: the epoch and the step within it (both
    0-based) and the steps an epoch has. ``None`` outside the training loop (unit tests, probes)."""

    epoch: int
    step: int
    steps_per_epoch: int

    @property
    def global_step(self) -> int:
        """Optimizer steps taken before this one."""
        return self.epoch * self.steps_per_epoch + self.step


class Regularizer(nn.Module):
    """A method's face. The constructor gets the class count, the feature dimension, the training
    class counts, ``run_seed`` (the run's ``seed``: anything a method draws at random must draw
    from it, so that a study's seeds differ in it too) and the method's options (``method.*``)."""

    # Constructor arguments the engine always passes: not options, never in ``method.*``.
    given_arguments = ("run_seed",)
    # The classifier kinds (model.classifier, resolved) the method works with; validate refuses others.
    classifiers: tuple[str, ...] = ("linear", "cosine")
    # Whether forward returns loss terms: a method that adds none needs a base loss (loss.name!=none).
    adds_loss: bool = True

    def __init__(
        self, num_classes: int, feat_dim: int, class_counts: Sequence[int], run_seed: int = 0
    ):
        super().__init__()
        self.num_classes, self.feat_dim, self.run_seed = num_classes, feat_dim, run_seed

    def forward(
        self,
        features: torch.Tensor,
        logits: torch.Tensor,
        targets: torch.Tensor,
        classifier: nn.Module,
        context: StepContext | None = None,
    ) -> dict[str, torch.Tensor]:
        """Named, already-weighted loss terms, e.g. {"sar/anchor_ce": ..., "sar/pull": ...}."""
        return {}

    def param_groups(self) -> list[dict]:
        """The regularizer's own trainable parameters, as optimizer param groups."""
        params = [p for p in self.parameters() if p.requires_grad]
        return [{"params": params, "name": "method"}] if params else []

    def centroids(self) -> torch.Tensor | None:
        """The class centres features are pulled towards (K x D), if the method keeps any."""
        return None

    def fixed_classifier(self) -> torch.Tensor | nn.Module | None:
        """Rows that replace the learned classifier (K x D), if the method fixes it; or a whole
        classifier module (with its fixed K x D rows as ``weight``), built afresh on each call so
        that its parameters belong to the network alone."""
        return None

    def after_step(self, classifier: nn.Module) -> None:
        """Called after every optimizer step, before the schedule's: a projection of the network's
        weights (MaxNorm caps each class's classifier norm). Deterministic, so every DDP process
        applies the same one. Default: nothing."""

    def epoch_stats(self) -> dict[str, float]:
        """Diagnostics accumulated since the last call (logged once per epoch), then reset."""
        return {}

    def info(self) -> dict:
        """Facts fixed at construction, recorded in final.json."""
        return {}

    def run_summary(self, history: list[dict]) -> tuple[dict, list[str]]:
        """Facts about the whole run, from its ``metrics.jsonl`` rows and the method's state
        (recorded in final.json as ``method_stats``), and warnings: plain sentences about any part
        of the method that silently did nothing (a gate that never opened, a centre never moved)."""
        return {}, []


METHODS: Registry[type[Regularizer]] = Registry("method")


@METHODS.register("none")
class NoRegularizer(Regularizer):
    """Plain training with the base loss."""

    adds_loss = False


def build_method(
    name: str,
    num_classes: int,
    feat_dim: int,
    class_counts: Sequence[int],
    run_seed: int = 0,
    **options,
) -> Regularizer:
    """The registered method ``name`` with its options (checked by :mod:`lt_bench.validate`)."""
    return METHODS.get(name)(num_classes, feat_dim, class_counts, run_seed=run_seed, **options)
