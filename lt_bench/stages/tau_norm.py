"""tau-normalisation (Kang et al., ICLR 2020): divide each classifier row by its norm to the power
tau and drop the bias, as the official code does (facebookresearch/classifier-balancing,
``tau_norm.py``: ``pnorm`` then ``dotproduct_similarity``, the stage-1 ``fc.bias`` loaded but never
used; its taus are ``np.linspace(0, 2, 21)``, ours by default). tau is chosen on a validation
split, never on the test set: images the long-tailed split left over (CIFAR-LT, MNIST-LT), or the
data set's own val list (ImageNet-LT, Places-LT)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
from omegaconf import DictConfig

from lt_bench.errors import UserError
from lt_bench.eval.accuracy import per_class_accuracy
from lt_bench.options import at_least, option_ranges
from lt_bench.predict import predict
from lt_bench.rundir import RunDir
from lt_bench.setup import Setup
from lt_bench.stages.base import Stage, register


def tau_normalize(classifier: nn.Linear, tau: float, bias: bool = False) -> nn.Linear:
    """A copy of ``classifier`` with row c divided by ||w_c||^tau and, as the official
    ``tau_norm.py``, no bias: logits are W x / ||W||^tau. ``bias=True`` keeps the classifier's bias
    (a departure; then tau 0 is the original classifier)."""
    keep = bias and classifier.bias is not None
    out = nn.Linear(classifier.in_features, classifier.out_features, bias=keep)
    with torch.no_grad():
        norms = classifier.weight.norm(dim=1, keepdim=True)
        out.weight.copy_(classifier.weight / norms.pow(tau))
        if keep:
            out.bias.copy_(classifier.bias)
    return out.to(classifier.weight.device)


@register
class TauNormalization(Stage):
    """The parent's linear classifier tau-normalised without its bias (``bias=true``: kept, a
    departure from the official code), tau the best balanced accuracy on validation images (the
    first of ties: the smallest tau); final.json keeps tau, the curve and its source."""

    name = "tau_norm"
    display = "tau-norm"

    @option_ranges(taus=at_least(0))
    @dataclass
    class Options:
        taus: list[float] = field(default_factory=lambda: [round(0.1 * i, 1) for i in range(21)])
        bias: bool = False  # true keeps the classifier's bias: a departure from the official code

    def check(self, setup: Setup, cfg: DictConfig) -> None:
        if not self.options.taus:
            raise UserError(
                "stage.taus is empty; give the taus to try, e.g. stage.taus=[0.0,0.5,1.0]"
            )
        classifier = setup.network.classifier
        if not isinstance(classifier, nn.Linear):
            raise UserError(
                f"tau_norm needs a linear classifier; this run's is {setup.network.classifier_info()['kind']}: "
                "use --stage crt, lws or ncm"
            )
        self.validation = setup.split.require_validation("stage tau_norm")
        self.described = setup.split.validation_described

    def fit(self, setup: Setup, cfg: DictConfig, run: RunDir) -> dict:
        network, num_classes = setup.network, setup.source.info.num_classes
        features, _, labels = predict(
            network, setup.batches(self.validation, cfg), setup.device, setup.amp
        )
        features = torch.as_tensor(features)
        base = network.classifier
        curve = []
        for tau in self.options.taus:
            with torch.no_grad():
                preds = (
                    tau_normalize(base, float(tau), self.options.bias)
                    .cpu()(features)
                    .argmax(1)
                    .numpy()
                )
            balanced = float(np.nanmean(per_class_accuracy(preds, labels, num_classes)))
            curve.append({"tau": float(tau), "val_balanced": balanced})
        best = max(curve, key=lambda point: point["val_balanced"])  # first of ties: smallest tau
        network.classifier = tau_normalize(base, best["tau"], self.options.bias)
        run.write_metrics([{"epoch": 0, **point} for point in curve])
        return {"tau": best["tau"], "tau_curve": curve, "tau_selected_on": self.described}
