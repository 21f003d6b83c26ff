"""CIFAR ResNets (He et al., 2016, Sec. 4.2) and a small CNN, registered in timm's own registry.

The CIFAR design: a 3x3 stem with 16 channels, three stages of n basic blocks with 16/32/64
channels (depth 6n + 2), option-A shortcuts (stride-2 subsampling plus zero-padded channels, no
parameters) as in LDAM-DRW's ResNet-32, global average pooling, one linear layer. Each model has
the face of every timm model (forward_features, forward_head, num_features, get_classifier,
reset_classifier) and a ``default_cfg`` with 32x32 input and CIFAR mean/std, so
``timm.data.resolve_data_config`` sees CIFAR settings rather than ImageNet's.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from lt_bench.normalization import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    MNIST_SUBSET_MEAN,
    MNIST_SUBSET_STD,
)


class BasicBlock(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chs)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.stride, self.pad = stride, out_chs - in_chs

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1 and self.pad == 0:
            return x
        x = x[:, :, :: self.stride, :: self.stride]  # option A: subsample, zero-pad channels
        return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class _ClassifierFace(nn.Module):
    """timm's classifier methods for models that end in global pooling plus ``self.fc``."""

    num_features: int
    fc: nn.Module

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean(dim=(2, 3))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class ResNetCifar(_ClassifierFace):
    def __init__(
        self,
        depth: int = 32,
        num_classes: int = 10,
        in_chans: int = 3,
        widths=(16, 32, 64),
    ):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n + 2, got {depth}")
        blocks = (depth - 2) // 6
        self.num_classes, self.num_features = num_classes, widths[-1]
        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers, in_chs = [], widths[0]
        for stage, width in enumerate(widths):
            for i in range(blocks):
                layers.append(BasicBlock(in_chs, width, 2 if stage > 0 and i == 0 else 1))
                in_chs = width
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        for m in self.modules():  # He initialisation, as in the reference CIFAR ResNets
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(F.relu(self.bn1(self.conv1(x))))


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(8, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"small_cnn norm must be batch, group or none, not {kind!r}")


class SmallCNN(_ClassifierFace):
    """Three conv-norm-ReLU stages (32/64/128 channels); for the embedded 28x28 and 8x8 data.
    ``norm``: batch (default), group (8 groups) or none."""

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        widths=(32, 64, 128),
        norm: str = "batch",
    ):
        super().__init__()
        self.num_classes, self.num_features = num_classes, widths[-1]
        layers, in_chs = [], in_chans
        for i, width in enumerate(widths):
            layers += [
                nn.Conv2d(in_chs, width, 3, padding=1, bias=norm == "none"),
                _norm(norm, width),
                nn.ReLU(inplace=True),
            ]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            in_chs = width
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _cfg(**kwargs) -> dict:
    return {
        "url": "",
        "num_classes": 10,
        "input_size": (3, 32, 32),
        "pool_size": (8, 8),
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "mean": CIFAR10_MEAN,
        "std": CIFAR10_STD,
        "first_conv": "conv1",
        "classifier": "fc",
        **kwargs,
    }


default_cfgs = generate_default_cfgs(
    {
        **{f"resnet{d}_cifar.untrained": _cfg() for d in (20, 32, 44, 56, 110)},
        "small_cnn.untrained": _cfg(
            input_size=(1, 28, 28), pool_size=(7, 7), mean=MNIST_SUBSET_MEAN, std=MNIST_SUBSET_STD
        ),
    }
)


def _create(cls, variant: str, pretrained: bool, **kwargs):
    return build_model_with_cfg(cls, variant, pretrained, **kwargs)


@register_model
def resnet20_cifar(pretrained: bool = False, **kwargs) -> ResNetCifar:
    return _create(ResNetCifar, "resnet20_cifar", pretrained, depth=20, **kwargs)


@register_model
def resnet32_cifar(pretrained: bool = False, **kwargs) -> ResNetCifar:
    return _create(ResNetCifar, "resnet32_cifar", pretrained, depth=32, **kwargs)


@register_model
def resnet44_cifar(pretrained: bool = False, **kwargs) -> ResNetCifar:
    return _create(ResNetCifar, "resnet44_cifar", pretrained, depth=44, **kwargs)


@register_model
def resnet56_cifar(pretrained: bool = False, **kwargs) -> ResNetCifar:
    return _create(ResNetCifar, "resnet56_cifar", pretrained, depth=56, **kwargs)


@register_model
def resnet110_cifar(pretrained: bool = False, **kwargs) -> ResNetCifar:
    return _create(ResNetCifar, "resnet110_cifar", pretrained, depth=110, **kwargs)


@register_model
def small_cnn(pretrained: bool = False, **kwargs) -> SmallCNN:
    return _create(SmallCNN, "small_cnn", pretrained, **kwargs)
