"""NCM: nearest class mean, by cosine, on L2-normalised training features of the frozen network."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from omegaconf import DictConfig

from lt_bench.predict import predict
from lt_bench.rundir import RunDir
from lt_bench.setup import Setup
from lt_bench.stages.base import Stage, register


class CosineNCM(nn.Module):
    """Nearest class mean: cosine between L2-normalised features and normalised class means."""

    def __init__(self, means: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", F.normalize(means, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) @ self.weight.T


@register
class NearestClassMean(Stage):
    """The classifier becomes the normalised class means of the training features (no options)."""

    name = "ncm"
    display = "NCM"

    def fit(self, setup: Setup, cfg: DictConfig, run: RunDir) -> dict:
        network = setup.network
        features, _, labels = predict(
            network, setup.batches(setup.split.train, cfg), setup.device, setup.amp
        )
        features = F.normalize(torch.as_tensor(features), dim=1)
        # The sum of a class's normalised features has the direction of their mean.
        sums = torch.zeros(setup.source.info.num_classes, features.shape[1]).index_add_(
            0, torch.as_tensor(labels), features
        )
        network.classifier = CosineNCM(sums).to(setup.device)
        run.write_metrics([])  # no epochs: an empty metrics.jsonl
        return {}
