"""cRT (Kang et al., ICLR 2020): re-initialise the linear classifier and retrain it on the frozen
backbone's features with a class-balanced sampler, as the official code does
(facebookresearch/classifier-balancing: ``config/ImageNet_LT/cls_crt.yaml``, ``run_networks.py``,
``models/DotProductClassifier.py``; :func:`lt_bench.stages.base.train_head` says how)."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn
from omegaconf import DictConfig

from lt_bench.rundir import RunDir
from lt_bench.setup import Setup
from lt_bench.stages.base import HeadTrainingOptions, Stage, register, train_head


@register
class ClassifierRetraining(Stage):
    """A new linear classifier (``nn.Linear``'s own initialisation, as the official
    ``DotProduct_Classifier`` whose stage-1 weights ``load_model`` skips) trained with
    class-balanced sampling."""

    name = "crt"
    display = "cRT"

    @dataclass
    class Options(HeadTrainingOptions):
        """The official ImageNet-LT cRT config: 10 epochs, and :class:`HeadTrainingOptions`."""

        epochs: int = 10

    def fit(self, setup: Setup, cfg: DictConfig, run: RunDir) -> dict:
        network = setup.network
        num_classes = setup.source.info.num_classes
        network.classifier = nn.Linear(network.num_features, num_classes).to(setup.device)
        train_head(network.classifier, setup, cfg, self.options, run)
        return {}
