"""LWS (Kang et al., ICLR 2020): learn one scale per class on the fixed classifier, with a
class-balanced sampler, as the official code does (facebookresearch/classifier-balancing:
``models/TauNormClassifier.py``, ``config/ImageNet_LT/cls_lws.yaml``, ``run_networks.py``;
:func:`lt_bench.stages.base.train_head` says how)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from omegaconf import DictConfig

from lt_bench.rundir import RunDir
from lt_bench.setup import Setup
from lt_bench.stages.base import HeadTrainingOptions, Stage, register, train_head


class ScaledClassifier(nn.Module):
    """LWS: the fixed classifier's logits (its bias included) times one learned scale per class,
    the scales starting at 1: the official ``TauNormClassifier.DotProduct_Classifier``."""

    def __init__(self, classifier: nn.Module, num_classes: int):
        super().__init__()
        self.classifier = classifier
        self.scales = nn.Parameter(torch.ones(num_classes))
        for p in self.classifier.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x) * self.scales

    @property
    def weight(self) -> torch.Tensor:
        return self.classifier.weight * self.scales[:, None]


@register
class LearnableWeightScaling(Stage):
    """One learned scale per class on the parent's classifier; final.json keeps the scales."""

    name = "lws"
    display = "LWS"

    @dataclass
    class Options(HeadTrainingOptions):
        """The official ImageNet-LT LWS config: 5 epochs, and :class:`HeadTrainingOptions` (the
        weight decay, 5e-4, pulls the scales towards 0 as the official optimiser does)."""

        epochs: int = 5

    def fit(self, setup: Setup, cfg: DictConfig, run: RunDir) -> dict:
        network = setup.network
        num_classes = setup.source.info.num_classes
        network.classifier = ScaledClassifier(network.classifier, num_classes).to(setup.device)
        train_head(network.classifier, setup, cfg, self.options, run)
        return {"scales": network.classifier.scales.detach().cpu().tolist()}
