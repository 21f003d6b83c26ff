"""The face every second stage has, their registry, and what stages share: training a new head on
the frozen backbone's features of class-balanced batches (cRT, LWS).

A stage is one file ``lt_bench/stages/<name>.py`` holding one ``@register``\\ ed subclass of
:class:`Stage` whose ``name`` is the file's name; :func:`lt_bench.stages.retrain` does the rest
(the child run's folder, config, checkpoint, final evaluation and final.json).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from omegaconf import DictConfig

from lt_bench.data.samplers import epoch_indices
from lt_bench.data.transforms import make_batches
from lt_bench.registry import Registry
from lt_bench.rundir import RunDir
from lt_bench.setup import Setup


@dataclass
class NoOptions:
    """The options of a stage that takes none."""


class Stage:
    """A second stage on a finished run whose network is loaded and frozen (backbone in eval mode,
    BatchNorm statistics included). ``retrain`` builds it with its checked options, calls
    :meth:`check` before anything is written, seeds torch with ``cfg.seed``, then :meth:`fit`."""

    name: ClassVar[str]  # the file's name and the ``--stage`` value: "crt"
    display: ClassVar[str]  # how reports and final.json["stage"] show it: "cRT" (a plain literal)
    Options: ClassVar[type] = NoOptions  # the ``stage.*`` options: a dataclass with @option_ranges

    def __init__(self, options):
        self.options = options

    def check(self, setup: Setup, cfg: DictConfig) -> None:
        """Refuse, with a one-line UserError, a run this stage cannot work on; nothing is written
        yet. What it prepares here (a validation set) it may keep for :meth:`fit`."""

    def fit(self, setup: Setup, cfg: DictConfig, run: RunDir) -> dict:
        """Replace ``setup.network.classifier``, writing the child's metrics.jsonl (one row per
        epoch, or per value tried, or none); return the stage's extra final.json fields."""
        raise NotImplementedError


REGISTRY: Registry[type[Stage]] = Registry("stage")


def register(stage: type[Stage]) -> type[Stage]:
    """Class decorator: add a stage to the registry under its ``name``, which must be its file's
    (``get_stage`` finds a stage by importing ``lt_bench.stages.<name>``)."""
    module = stage.__module__.rpartition(".")[2]
    if stage.name != module:
        raise TypeError(
            f"stage {stage.name!r} must live in lt_bench/stages/{stage.name}.py, not {module}.py"
        )
    return REGISTRY.register(stage.name)(stage)


def train_head(
    head: nn.Module, setup: Setup, cfg: DictConfig, epochs: int, lr: float, run: RunDir
) -> list[dict]:
    """Train ``head`` on frozen-backbone features of class-balanced, augmented batches (SGD with
    the run's momentum and weight decay, cosine schedule per step); one metrics.jsonl row an epoch."""
    params = [p for p in head.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params, lr=lr, momentum=cfg.optim.momentum, weight_decay=cfg.optim.weight_decay
    )
    steps = math.ceil(len(setup.split.train) / cfg.data.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs * steps, 1))
    batches = make_batches(
        setup.split.train,
        cfg.data.batch_size,
        setup.device,
        cfg.data.augment,
        cfg.data.pad,
        cfg.data.num_workers,
        cfg.train.channels_last,
    )
    generator = torch.Generator().manual_seed(cfg.seed)  # data order and augmentation
    labels, num_classes = setup.split.train.labels, setup.source.info.num_classes
    history = []
    for epoch in range(epochs):
        start = time.time()
        order = epoch_indices(labels, "class_balanced", generator, num_classes)
        drawn = np.bincount(labels[order.numpy()], minlength=num_classes)
        total, correct, seen = _head_epoch(
            head, setup.network.backbone, batches(order, generator), optimizer, scheduler
        )
        history.append(
            {
                "epoch": epoch + 1,
                "lr": optimizer.param_groups[0]["lr"],
                "loss/base": total / seen,
                "loss/total": total / seen,
                "train/acc": correct / seen,
                "time_s": time.time() - start,
                "images_per_s": seen / (time.time() - start),
                "sampled_class_counts": drawn.tolist(),
            }
        )
        run.write_metrics(history)
    return history


def _head_epoch(head, backbone, batches, optimizer, scheduler) -> tuple[float, int, int]:
    """One pass of cross-entropy steps on ``head``; returns (summed loss, correct, images)."""
    total, correct, seen = 0.0, 0, 0
    for x, y in batches:
        with torch.no_grad():
            features = backbone(x)
        logits = head(features)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += float(loss.detach()) * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
    return total, correct, seen
