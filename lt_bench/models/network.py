"""Backbone -> pooled features -> classifier; the network returns both features and logits."""

from __future__ import annotations

from pathlib import Path

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F

from lt_bench.errors import UserError


class CosineClassifier(nn.Module):
    """Logits are ``scale`` times the cosines between L2-normalised features and class weights
    (LDAM's NormedLinear with its s = 30 moved into the classifier): every consumer of logits (the
    base loss, SAR's anchor probabilities and gate, ECE, post-hoc adjustment, second stages) sees
    the same scaled numbers, never raw cosines in [-1, 1]."""

    def __init__(self, in_features: int, num_classes: int, scale: float = 30.0):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_features).uniform_(-1, 1))
        self.in_features, self.out_features, self.scale = in_features, num_classes, float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.linear(F.normalize(x, dim=1), F.normalize(self.weight, dim=1))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, scale={self.scale:g}"


class Network(nn.Module):
    """``forward(x) -> (features, logits)``: features are what the classifier sees."""

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        classifier: str = "linear",
        cosine_scale: float = 30.0,
    ):
        super().__init__()
        self.backbone = backbone
        self.num_features = backbone.num_features
        if classifier == "linear":
            self.classifier: nn.Module = nn.Linear(self.num_features, num_classes)
        elif classifier == "cosine":
            self.classifier = CosineClassifier(self.num_features, num_classes, cosine_scale)
        else:
            raise UserError(f"unknown classifier {classifier!r}; choose linear or cosine")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(x)
        return features, self.classifier(features)

    def classifier_info(self) -> dict:
        """What final.json records: the classifier's kind, and a cosine classifier's scale."""
        if isinstance(self.classifier, CosineClassifier):
            return {"kind": "cosine", "scale": self.classifier.scale}
        weight = getattr(self.classifier, "weight", None)  # fixed rows under a trained norm: fixed
        trained = (
            weight.requires_grad
            if isinstance(weight, torch.Tensor)
            else any(p.requires_grad for p in self.classifier.parameters())
        )
        return {"kind": "linear" if trained else "fixed"}

    def fix_classifier(self, weight: torch.Tensor | nn.Module) -> None:
        """Replace the classifier by fixed rows (e.g. a simplex ETF): no bias, no gradient; or by
        a method's own classifier module (its fixed rows in ``weight``; e.g. etf_dr's, which
        normalises the features first), whose trainable parameters the network then trains."""
        if isinstance(weight, nn.Module):
            classifier = weight
        else:
            classifier = nn.Linear(self.num_features, weight.shape[0], bias=False)
            classifier.weight.data.copy_(weight)
            classifier.weight.requires_grad_(False)
        self.classifier = classifier.to(next(self.backbone.parameters()).device)


def build_network(
    name: str,
    num_classes: int,
    in_chans: int = 3,
    pretrained: bool = False,
    weights: str | None = None,
    classifier: str = "linear",
    cosine_scale: float = 30.0,
    **kwargs,
) -> Network:
    """A timm backbone by name (``num_classes=0``: pooled features) under our classifier."""
    try:
        backbone = timm.create_model(
            name, pretrained=pretrained, num_classes=0, in_chans=in_chans, **kwargs
        )
    except (RuntimeError, TypeError, OSError) as err:  # no weights, a bad option, no network
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(
            f"timm could not create {name!r} ({reason}); check model.pretrained and model.options, "
            "or pass local weights with model.weights=FILE"
        ) from err
    if weights:
        path = Path(weights)
        if not path.is_file():
            raise UserError(
                f"weights file {path} does not exist; pass an existing file to model.weights"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = (
            state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
        )
        missing, unexpected = backbone.load_state_dict(state, strict=False)
        loaded = len(state) - len(unexpected)
        if loaded == 0:
            raise UserError(
                f"no tensor in {path} matches {name}'s parameters; is it a {name} checkpoint?"
            )
    return Network(backbone, num_classes, classifier, cosine_scale)
