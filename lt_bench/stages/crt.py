"""cRT (Kang et al., ICLR 2020): re-initialise the linear classifier and retrain it on the frozen
backbone's features with a class-balanced sampler."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn
from omegaconf import DictConfig

from lt_bench.options import at_least, greater_than, option_ranges
from lt_bench.rundir import RunDir
from lt_bench.setup import Setup
from lt_bench.stages.base import Stage, register, train_head


@register
class ClassifierRetraining(Stage):
    """A new linear classifier trained with class-balanced sampling."""

    name = "crt"
    display = "cRT"

    @option_ranges(epochs=at_least(1), lr=greater_than(0))
    @dataclass
    class Options:
        epochs: int = 10
        lr: float = 0.1

    def fit(self, setup: Setup, cfg: DictConfig, run: RunDir) -> dict:
        network = setup.network
        num_classes = setup.source.info.num_classes
        network.classifier = nn.Linear(network.num_features, num_classes).to(setup.device)
        train_head(network.classifier, setup, cfg, self.options.epochs, self.options.lr, run)
        return {}
