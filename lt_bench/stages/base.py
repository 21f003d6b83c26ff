"""The face every second stage has, their registry, and what stages share: training a new head on
the frozen backbone's features of class-balanced batches (cRT, LWS), as Decoupling's official code
does (Kang et al., ICLR 2020; facebookresearch/classifier-balancing: ``run_networks.py`` for the
loop, ``config/ImageNet_LT/cls_crt.yaml`` and ``cls_lws.yaml`` for the optimiser and schedule,
``data/ClassAwareSampler.py`` for the batches).

A stage is one file ``lt_bench/stages/<name>.py`` holding one ``@register``\\ ed subclass of
:class:`Stage` whose ``name`` is the file's name; :func:`lt_bench.stages.retrain` does the rest
(the child run's folder, config, checkpoint, final evaluation and final.json).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from omegaconf import DictConfig

from lt_bench.data.samplers import SAMPLES_PER_CLASS, ClassAwareSampler, iid_indices
from lt_bench.data.transforms import make_batches
from lt_bench.options import at_least, between, greater_than, one_of, option_ranges
from lt_bench.registry import Registry
from lt_bench.rundir import RunDir
from lt_bench.setup import Setup


@dataclass
class NoOptions:
    """The options of a stage that takes none."""


class Stage:
    """A second stage on a finished run whose network is loaded, frozen and in eval mode (a stage
    that trains a head puts the backbone's BatchNorm in train mode while it trains, as the
    official code does: :func:`train_head`). ``retrain`` builds it with its checked options, calls
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


# The departures a head-training stage can ask for, each beside the official default.
HEAD_SCHEDULES = ("epoch_cosine", "step_cosine")
HEAD_SAMPLERS = ("class_balanced", "class_balanced_iid")
BN_MODES = ("train", "eval")


@option_ranges(
    epochs=at_least(1),
    lr=greater_than(0),
    batch_size=at_least(1),
    momentum=between(0, 1, high_open=True),
    weight_decay=at_least(0),
    schedule=one_of(*HEAD_SCHEDULES),
    sampler=one_of(*HEAD_SAMPLERS),
    samples_per_class=at_least(1),
    bn_mode=one_of(*BN_MODES),
)
@dataclass
class HeadTrainingOptions:
    """How cRT and LWS train their head; the defaults are the official ImageNet-LT stage-2 configs
    (``config/ImageNet_LT/cls_crt.yaml``, ``cls_lws.yaml``: SGD, lr 0.2, momentum 0.9, weight
    decay 5e-4, batch 512, ``coslr`` with ``endlr`` 0, ClassAwareSampler with ``num_samples_cls``
    4) and ``run_networks.py`` (every network in ``train()`` mode while training). Departures, by
    name: ``schedule=step_cosine`` (cosine per step down to 0 after the last step),
    ``sampler=class_balanced_iid`` (i.i.d. draws with replacement), ``bn_mode=eval`` (BatchNorm
    normalises with the parent's running statistics and leaves them as they were); what this
    stage did before issue 19 is those three with ``batch_size``, ``momentum`` and
    ``weight_decay`` set to the run's ``data.batch_size``, ``optim.momentum`` and
    ``optim.weight_decay``, and lr 0.1."""

    epochs: int = 10
    lr: float = 0.2
    batch_size: int = 512
    momentum: float = 0.9
    weight_decay: float = 5e-4
    # epoch_cosine: the official CosineAnnealingLR(T_max=epochs), stepped before each epoch.
    schedule: str = "epoch_cosine"
    sampler: str = "class_balanced"
    samples_per_class: int = SAMPLES_PER_CLASS  # class_balanced's images per class visit
    bn_mode: str = "train"


def head_lr_factor(schedule: str, epochs: int, steps: int) -> Callable[[int], float]:
    """The learning rate of step ``t`` (from 0) over the base lr. ``epoch_cosine`` is the official
    ``CosineAnnealingLR(optimizer, epochs, eta_min=0)`` stepped at the start of every epoch (the
    older PyTorch order ``run_networks.py`` uses), so epoch e of E (from 1) trains at
    (1 + cos(pi e / E)) / 2 and the last epoch at 0: with ``epochs=1`` nothing is learned.
    ``step_cosine`` (a departure) decays per step from 1 to 0 after the last step."""
    if schedule == "epoch_cosine":
        return lambda t: 0.5 * (1 + math.cos(math.pi * (t // steps + 1) / epochs))
    return lambda t: 0.5 * (1 + math.cos(math.pi * t / (epochs * steps)))


def train_head(
    head: nn.Module, setup: Setup, cfg: DictConfig, options: HeadTrainingOptions, run: RunDir
) -> list[dict]:
    """Train ``head`` on frozen-backbone features of class-balanced, augmented batches; one
    metrics.jsonl row an epoch.

    As ``run_networks.py`` does: an epoch is ``int(train images / batch_size)`` steps of full
    batches (at least one step here, where the official loop would take none); one class-aware
    sampler serves every epoch, its cycles carrying over; the backbone is in train mode, so
    BatchNorm normalises with each class-balanced batch's statistics and its running statistics
    move towards them (they are what the child evaluates with; the backbone's weights stay fixed).
    The official loop also keeps the epoch best on validation; here the last epoch is kept."""
    params = [p for p in head.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params, lr=options.lr, momentum=options.momentum, weight_decay=options.weight_decay
    )
    train = setup.split.train
    steps = max(1, len(train) // options.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, head_lr_factor(options.schedule, options.epochs, steps)
    )
    batches = make_batches(
        train,
        options.batch_size,
        setup.device,
        cfg.data.augment,
        cfg.data.pad,
        cfg.data.num_workers,
        cfg.train.channels_last,
    )
    generator = torch.Generator().manual_seed(cfg.seed)  # data order and augmentation
    labels, num_classes = train.labels, setup.source.info.num_classes
    class_aware = (
        ClassAwareSampler(labels, generator, options.samples_per_class)
        if options.sampler == "class_balanced"
        else None
    )
    backbone = setup.network.backbone
    history = []
    for epoch in range(options.epochs):
        start = time.time()
        backbone.train(options.bn_mode == "train")
        count = steps * options.batch_size
        order = (
            class_aware.draw(count)
            if class_aware is not None
            else iid_indices(labels, options.sampler, generator, count, num_classes)
        )
        drawn = np.bincount(labels[order.numpy()], minlength=num_classes)
        total, correct, seen, lr = _head_epoch(
            head, backbone, batches(order, generator), optimizer, scheduler
        )
        history.append(
            {
                "epoch": epoch + 1,
                "lr": lr,
                "loss/base": total / seen,
                "loss/total": total / seen,
                "train/acc": correct / seen,
                "time_s": time.time() - start,
                "images_per_s": seen / (time.time() - start),
                "sampled_class_counts": drawn.tolist(),
            }
        )
        run.write_metrics(history)
    setup.network.eval()
    return history


def _head_epoch(head, backbone, batches, optimizer, scheduler) -> tuple[float, int, int, float]:
    """One pass of cross-entropy steps on ``head``; returns (summed loss, correct, images, the
    learning rate of the last step)."""
    total, correct, seen, lr = 0.0, 0, 0, optimizer.param_groups[0]["lr"]
    for x, y in batches:
        with torch.no_grad():
            features = backbone(x)
        logits = head(features)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        total += float(loss.detach()) * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
    return total, correct, seen, lr
