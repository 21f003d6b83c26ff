"""NCM: nearest class mean of the frozen network's training features, as the official code does by
default (facebookresearch/classifier-balancing: ``models/KNNClassifier.py`` with its defaults
``feat_type='cl2n'``, ``dist_type='l2'``, and ``run_networks.py``'s ``get_knncentroids``): subtract
the mean training feature, L2-normalise, and predict the class whose mean of such features is
nearest in Euclidean distance (the means are not normalised again)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from omegaconf import DictConfig

from lt_bench.options import one_of, option_ranges
from lt_bench.predict import predict
from lt_bench.rundir import RunDir
from lt_bench.setup import Setup
from lt_bench.stages.base import Stage, register

METRICS = ("euclidean", "cosine")


class ClassMeanClassifier(nn.Module):
    """Logits of nearest class mean: features minus ``mean`` (zeros: not centred), L2-normalised,
    then minus the squared Euclidean distance to each row of ``weight`` (the class means of such
    features), written as the official ``l2_similarity``; or, ``metric="cosine"``, the cosine with
    each class mean (a departure)."""

    def __init__(self, means: torch.Tensor, mean: torch.Tensor, metric: str = "euclidean"):
        super().__init__()
        self.register_buffer("weight", means)
        self.register_buffer("mean", mean)
        self.metric = metric

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.normalize(x - self.mean, dim=1)
        if self.metric == "cosine":
            return x @ F.normalize(self.weight, dim=1).T
        squared = (
            x.square().sum(1, keepdim=True) + self.weight.square().sum(1) - 2 * x @ self.weight.T
        )
        return -squared

    def extra_repr(self) -> str:
        return f"classes={self.weight.shape[0]}, metric={self.metric}"


def class_mean_classifier(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    centre: bool = True,
    metric: str = "euclidean",
) -> ClassMeanClassifier:
    """The nearest-class-mean classifier of training ``features``: the official
    ``get_knncentroids``'s ``cl2n`` means (``centre=False``: its ``l2n`` means), the classes' means
    of the features minus their mean over all images, L2-normalised."""
    features = features.float()
    mean = features.mean(0) if centre else torch.zeros(features.shape[1])
    normalised = F.normalize(features - mean, dim=1)
    sums = torch.zeros(num_classes, features.shape[1]).index_add_(0, labels, normalised)
    counts = torch.bincount(labels, minlength=num_classes).clamp(min=1)
    return ClassMeanClassifier(sums / counts[:, None], mean, metric)  # an empty class: mean 0


@register
class NearestClassMean(Stage):
    """The classifier becomes the class means of the training features (no augmentation, network
    in eval mode, as ``get_knncentroids``). Other choices, by name: ``centre=false`` (no mean
    subtracted: the official ``feat_type='l2n'``, not its default) and ``metric=cosine`` (a
    departure: the cosine with the normalised class means; the official ``dist_type='cos'`` is a
    dot product with the means as they are); ``centre=false metric=cosine`` is what this stage did
    before issue 19."""

    name = "ncm"
    display = "NCM"

    @option_ranges(metric=one_of(*METRICS))
    @dataclass
    class Options:
        centre: bool = True  # subtract the mean training feature before normalising (cl2n)
        metric: str = "euclidean"  # euclidean (official l2) | cosine (a departure)

    def fit(self, setup: Setup, cfg: DictConfig, run: RunDir) -> dict:
        network = setup.network
        features, _, labels = predict(
            network, setup.batches(setup.split.train, cfg), setup.device, setup.amp
        )
        network.classifier = class_mean_classifier(
            torch.as_tensor(features),
            torch.as_tensor(labels),
            setup.source.info.num_classes,
            self.options.centre,
            self.options.metric,
        ).to(setup.device)
        run.write_metrics([])  # no epochs: an empty metrics.jsonl
        return {}
