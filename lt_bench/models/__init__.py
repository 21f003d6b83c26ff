"""Backbones: any timm model, plus the CIFAR ResNets and small CNN registered in timm's registry."""

from lt_bench.models import cifar_resnet  # noqa: F401  (registers resnet*_cifar and small_cnn in timm)
from lt_bench.models.network import CosineClassifier, Network, build_network

__all__ = ["CosineClassifier", "Network", "build_network"]
