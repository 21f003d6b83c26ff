"""From a config to what a run is made of: device, data, network, method, base loss, and what the
loop steps with (optimizer, schedule, re-weighting, batches, generators).

The optimizer and schedule are built here, once, for every method: a regularizer only adds loss
terms and, at most, its own parameter group, so comparisons are fair by construction.
Nothing here checks a config: :func:`lt_bench.validate.validate` has done that before.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from omegaconf import DictConfig

from lt_bench import distributed
from lt_bench.config import to_dict
from lt_bench.data import (
    LabelledImages,
    LongTailSplit,
    SourceDataset,
    build_dataset,
    long_tail_split,
)
from lt_bench.data.samplers import epoch_indices
from lt_bench.data.transforms import make_batches
from lt_bench.errors import UserError
from lt_bench.losses import BaseLoss, Reweighting, build_loss, split_loss_options
from lt_bench.methods import Regularizer, build_method
from lt_bench.models import Network, build_network


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(
            f"device {name!r} asked for but CUDA is not available; use train.device=cpu"
        )
    return torch.device(name)


@dataclass
class Setup:
    """What a run is made of: data, network, method and base loss, on their device."""

    device: torch.device
    source: SourceDataset
    split: LongTailSplit
    test: LabelledImages
    network: Network
    method: Regularizer
    base_loss: BaseLoss
    amp: bool  # bf16 autocast

    @property
    def precision(self) -> str:
        return "bf16" if self.amp else "fp32"

    def batches(self, data: LabelledImages, cfg: DictConfig):
        """Evaluation batches (no augmentation) of ``data``."""
        return make_batches(
            data,
            cfg.data.eval_batch_size,
            self.device,
            "none",
            0,
            cfg.data.num_workers,
            cfg.train.channels_last,
        )


def build(cfg: DictConfig) -> Setup:
    """Data (long-tailed train split, balanced test set), then network, method and base loss, seeded
    so that the same config gives the same initial weights. The config's plugin ``imports`` come
    first (``retrain`` and ``eval`` build a run without :func:`~lt_bench.validate.validate`)."""
    from lt_bench.plugins import import_modules

    import_modules(cfg.get("imports") or ())
    device = distributed.init_from_environment(select_device(cfg.train.device))
    source = build_dataset(cfg.data.name, root=cfg.data.root, **cfg.data.options)
    split = long_tail_split(
        source,
        cfg.data.ratio,
        cfg.data.profile,
        cfg.data.split_seed,
        cfg.data.max_count,
        grouping=cfg.data.grouping,
        val_per_class=cfg.data.val_per_class,
        subset=cfg.data.subset,
        split_file=cfg.data.get("split_file"),
    )
    test = source.load("test")
    num_classes = source.info.num_classes

    torch.manual_seed(cfg.seed)
    loss_args, _ = split_loss_options(to_dict(cfg.loss))
    base_loss = build_loss(cfg.loss.name, split.counts, **loss_args).to(device)
    classifier = base_loss.classifier if cfg.model.classifier == "auto" else cfg.model.classifier
    network = build_network(
        cfg.model.name,
        num_classes,
        source.info.image_size[0],
        cfg.model.pretrained,
        cfg.model.weights,
        classifier,
        cosine_scale(cfg, base_loss),
        **cfg.model.options,
    ).to(device)
    method_args = {k: v for k, v in to_dict(cfg.method).items() if k != "name"}
    method = build_method(
        cfg.method.name,
        num_classes,
        network.num_features,
        split.counts,
        run_seed=cfg.seed,  # drawn state (SAR's anchors, ETF's basis) follows the run's seed
        **method_args,
    ).to(device)
    if method.fixed_classifier() is not None:
        network.fix_classifier(method.fixed_classifier())
    if cfg.train.channels_last:  # faster convolutions with cuDNN, and with oneDNN on CPU
        network = network.to(memory_format=torch.channels_last)
    amp = cfg.train.amp is True or (cfg.train.amp == "auto" and device.type == "cuda")
    return Setup(device, source, split, test, network, method, base_loss, amp)


def cosine_scale(cfg: DictConfig, base_loss: BaseLoss) -> float:
    """A cosine classifier's scale: ``model.cosine_scale``, else the loss's own (LDAM's
    ``loss.scale``), else 30 (that the two agree, the validator has checked)."""
    own, asked = base_loss.cosine_scale, cfg.model.cosine_scale
    return float(asked if asked is not None else own if own is not None else 30.0)


# ----------------------------------------------------------------------------- what the loop steps


def lr_lambda(optim: DictConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Learning-rate factor per optimizer step: linear warm-up, then multistep or cosine."""
    warmup = optim.warmup_epochs * steps_per_epoch
    total = optim.epochs * steps_per_epoch

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if optim.schedule == "cosine":
            progress = (step - warmup) / max(total - warmup, 1)
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        epoch = step // steps_per_epoch
        return optim.gamma ** sum(epoch >= m for m in optim.milestones)

    return factor


def shard_order(
    order: torch.Tensor, batch_size: int, rank: int, world: int
) -> tuple[torch.Tensor, list]:
    """This rank's part of every global batch of ``order``, and the global batches themselves.

    One process: the order unchanged. Under DDP, global batch b is split into ``world`` parts and
    rank r keeps part r; a last global batch smaller than ``world`` is dropped so that every rank
    takes the same number of steps."""
    batches = list(torch.split(order, batch_size))
    if world > 1 and batches and len(batches[-1]) < world:
        batches = batches[:-1]
    if world == 1:
        return order, batches
    return torch.cat([torch.tensor_split(b, world)[rank] for b in batches]), batches


@dataclass
class Loop:
    """What the loop steps with, identical for every method: the forward (DDP-wrapped and
    compiled as asked), optimizer, schedule, class re-weighting, and the generators that fix the
    data order and the augmentation."""

    forward: Callable
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    reweight: Reweighting
    batches: Callable
    steps_per_epoch: int
    generator: torch.Generator
    augment_generator: torch.Generator
    labels: np.ndarray
    num_classes: int
    batch_size: int
    sampler: str

    def epoch_batches(self, epoch: int):
        """This rank's batches of one epoch, in the order the generator draws."""
        world, rank = distributed.world_size(), distributed.rank()
        order = epoch_indices(self.labels, self.sampler, self.generator, self.num_classes)
        order, _ = shard_order(order, self.batch_size, rank, world)
        return self.batches(order, self.augment_generator)


def parallel_forward(cfg: DictConfig, network: Network, device: torch.device) -> Callable:
    """The network as the loop calls it: DDP-wrapped over several processes (SyncBatchNorm when
    asked), compiled when asked."""
    forward = network
    if distributed.world_size() > 1:
        if cfg.train.sync_bn:
            network = torch.nn.SyncBatchNorm.convert_sync_batchnorm(network)
        forward = torch.nn.parallel.DistributedDataParallel(
            network, device_ids=[device] if device.type == "cuda" else None
        )
    if cfg.train.compile:
        forward = torch.compile(forward)
    return forward


def build_loop(cfg: DictConfig, setup: Setup) -> Loop:
    """Batches, re-weighting, the DDP / compiled forward, optimizer and schedule, generators."""
    world, rank = distributed.world_size(), distributed.rank()
    batches = make_batches(
        setup.split.train,
        cfg.data.batch_size // world,
        setup.device,
        cfg.data.augment,
        cfg.data.pad,
        cfg.data.num_workers,
        cfg.train.channels_last,
    )
    _, reweight_options = split_loss_options(to_dict(cfg.loss))
    reweight = Reweighting(setup.split.counts, **reweight_options)
    forward = parallel_forward(cfg, setup.network, setup.device)

    # Optimizer and schedule: owned here, identical for every method.
    network_params = [p for p in setup.network.parameters() if p.requires_grad]
    param_groups = [{"params": network_params, "name": "network"}, *setup.method.param_groups()]
    optimizer = torch.optim.SGD(
        param_groups,
        lr=cfg.optim.lr,
        momentum=cfg.optim.momentum,
        nesterov=cfg.optim.nesterov,
        weight_decay=cfg.optim.weight_decay,
    )
    steps_per_epoch = len(
        shard_order(torch.arange(len(setup.split.train)), cfg.data.batch_size, 0, world)[1]
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg.optim, steps_per_epoch))
    # The data order (and, in one process, the augmentation). Under DDP every rank draws the same
    # order and augments its own shard with its own generator.
    generator = torch.Generator().manual_seed(cfg.seed)
    augment_generator = (
        generator if world == 1 else torch.Generator().manual_seed(cfg.seed + 1000 * rank + 1)
    )
    return Loop(
        forward,
        optimizer,
        scheduler,
        reweight,
        batches,
        steps_per_epoch,
        generator,
        augment_generator,
        setup.split.train.labels,
        setup.source.info.num_classes,
        cfg.data.batch_size,
        cfg.data.sampler,
    )


def config_warnings(cfg: DictConfig) -> list[str]:
    """Settings that are accepted but have no effect in this run, as plain sentences."""
    warnings = []
    epochs = cfg.optim.epochs
    if cfg.optim.schedule == "multistep":
        late = [m for m in cfg.optim.milestones if m >= epochs]
        if late and len(late) == len(cfg.optim.milestones):
            warnings.append(
                f"optim.milestones {list(cfg.optim.milestones)} are all at or past the last epoch "
                f"({epochs}): the learning rate never decayed"
            )
    if cfg.loss.get("reweight") == "drw" and cfg.loss.get("drw_epoch", 160) >= epochs:
        warnings.append(
            f"loss.drw_epoch={cfg.loss.get('drw_epoch', 160)} is at or past the last epoch "
            f"({epochs}): the DRW re-weighting never switched on"
        )
    if cfg.train.sync_bn and distributed.world_size() == 1:
        warnings.append("train.sync_bn has no effect in a single process")
    return warnings


def environment() -> dict:
    """Versions of Python, torch, torchvision, timm and lt-bench, the git commit, whether the
    package's source differed from it (:mod:`lt_bench.provenance`), the platform."""
    import timm
    import torchvision

    from lt_bench.provenance import code_identity

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        **code_identity(),
        "platform": platform.platform(),
    }
