"""The training loop: one function, read top to bottom.

The engine owns data, backbone, classifier, optimizer, schedule and base loss; a method (the
regularizer) only adds loss terms, and its own parameters get their own param group. Every
method is therefore trained by exactly the same loop.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from lt_bench import atomic, distributed
from lt_bench.config import check_values, flatten, run_id, to_dict
from lt_bench.data import (
    LabelledImages,
    LongTailSplit,
    SourceDataset,
    build_dataset,
    long_tail_split,
    validation_set,
)
from lt_bench.data.samplers import epoch_indices
from lt_bench.data.transforms import make_batches
from lt_bench.errors import UserError
from lt_bench.eval.accuracy import summarize
from lt_bench.eval.evaluate import evaluate_and_write
from lt_bench.failpoints import failpoint
from lt_bench.losses import (
    BaseLoss,
    Reweighting,
    build_loss,
    check_loss_options,
    split_loss_options,
)
from lt_bench.methods import METHODS, Regularizer, build_method
from lt_bench.models import Network, build_network
from lt_bench.options import check_options, declared_types
from lt_bench.trackers import Trackers, check_trackers


class NonFiniteLoss(UserError):
    """A loss term became NaN or infinite."""


# ----------------------------------------------------------------------------- pieces


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(
            f"device {name!r} asked for but CUDA is not available; use train.device=cpu"
        )
    return torch.device(name)


def lr_lambda(optim: DictConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Learning-rate factor per optimizer step: linear warm-up, then multistep or cosine."""
    warmup = optim.warmup_epochs * steps_per_epoch
    total = optim.epochs * steps_per_epoch
    if optim.schedule not in ("multistep", "cosine"):
        raise UserError(f"unknown schedule {optim.schedule!r}; choose multistep or cosine")

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if optim.schedule == "cosine":
            progress = (step - warmup) / max(total - warmup, 1)
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        epoch = step // steps_per_epoch
        return optim.gamma ** sum(epoch >= m for m in optim.milestones)

    return factor


def test_arrays(network: Network, method: Regularizer, setup: Setup, cfg: DictConfig) -> dict:
    """What ``features.npz`` holds: test features, labels, logits, classifier rows, the method's centroids."""
    features, logits, labels = predict_all(network, setup.test, setup, cfg)
    arrays = {
        "features": features,
        "labels": labels,
        "logits": logits,
        "train_counts": np.asarray(setup.split.counts),
    }
    weight = getattr(network.classifier, "weight", None)
    if weight is not None:
        arrays["classifier_weight"] = weight.detach().float().cpu().numpy()
    centroids = method.centroids()
    if centroids is not None:
        arrays["centroids"] = centroids.detach().float().cpu().numpy()
    return arrays


@torch.no_grad()
def predict(
    network: torch.nn.Module, batches, device: torch.device, amp: bool
) -> tuple[np.ndarray, ...]:
    """Features, logits and labels of a whole evaluation set, in order."""
    network.eval()
    features, logits, labels = [], [], []
    for x, y in batches():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            f, z = network(x)
        features.append(f.float().cpu())
        logits.append(z.float().cpu())
        labels.append(y.cpu())
    return torch.cat(features).numpy(), torch.cat(logits).numpy(), torch.cat(labels).numpy()


def environment() -> dict:
    import timm
    import torchvision

    import lt_bench

    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
                cwd=Path(__file__).parent,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "lt_bench": lt_bench.__version__,
        "git_commit": commit,
        "platform": platform.platform(),
    }


def check_config(cfg: DictConfig) -> None:
    """Refuse unknown names and out-of-range values before any data is loaded or anything is
    written (one-line errors with the fix). The ranges are declared beside each option."""
    from lt_bench.data import DATASETS
    from lt_bench.data.samplers import SAMPLERS
    from lt_bench.data.splits import check_profile
    from lt_bench.data.transforms import AUGMENTATIONS
    from lt_bench.losses import LOSSES
    from lt_bench.models.network import check_model_name

    DATASETS.get(cfg.data.name)
    METHODS.get(cfg.method.name)
    LOSSES.get(cfg.loss.name)
    check_model_name(cfg.model.name)
    check_values(cfg)
    check_profile(cfg.data.ratio, cfg.data.profile)
    check_trackers(cfg)
    method_options = {k: v for k, v in to_dict(cfg.method).items() if k != "name"}
    check_options(
        METHODS.get(cfg.method.name), method_options, "method.", f"method {cfg.method.name}"
    )
    check_loss_options(to_dict(cfg.loss))
    for value, allowed, what in [
        (cfg.data.sampler, SAMPLERS, "sampler"),
        (cfg.data.augment, AUGMENTATIONS, "augmentation"),
        (cfg.optim.schedule, ("multistep", "cosine"), "schedule"),
        (cfg.model.classifier, ("auto", "linear", "cosine"), "classifier"),
        (cfg.train.select, ("last", "best_val"), "model selection (train.select)"),
    ]:
        if value not in allowed:
            raise UserError(f"unknown {what} {value!r}; choose one of: {', '.join(allowed)}")


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
    so that the same config gives the same initial weights."""
    device = distributed.init_from_environment(select_device(cfg.train.device))
    source = build_dataset(cfg.data.name, root=cfg.data.root, **cfg.data.options)
    split = long_tail_split(
        source,
        cfg.data.ratio,
        cfg.data.profile,
        cfg.data.split_seed,
        cfg.data.max_count,
        grouping=cfg.data.grouping,
    )
    test = source.load("test")
    num_classes = source.info.num_classes

    torch.manual_seed(cfg.seed)
    method_args = {k: v for k, v in to_dict(cfg.method).items() if k != "name"}
    if "seed" in declared_types(METHODS.get(cfg.method.name)) and method_args.get("seed") is None:
        method_args["seed"] = cfg.seed  # drawn state (anchors) follows the run's seed
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
    method = build_method(
        cfg.method.name, num_classes, network.num_features, split.counts, **method_args
    ).to(device)
    if method.fixed_classifier() is not None:
        network.fix_classifier(method.fixed_classifier())
    if cfg.train.channels_last:  # faster convolutions with cuDNN, and with oneDNN on CPU
        network = network.to(memory_format=torch.channels_last)
    amp = cfg.train.amp is True or (cfg.train.amp == "auto" and device.type == "cuda")
    return Setup(device, source, split, test, network, method, base_loss, amp)


def cosine_scale(cfg: DictConfig, base_loss: BaseLoss) -> float:
    """A cosine classifier's scale: ``model.cosine_scale``, else the loss's own (LDAM's
    ``loss.scale``), else 30. The two may not disagree: LDAM's margin is taken in the scale's units."""
    own, asked = base_loss.cosine_scale, cfg.model.cosine_scale
    if own is not None and asked is not None and own != asked:
        raise UserError(
            f"model.cosine_scale={asked:g} disagrees with loss.scale={own:g} of loss "
            f"{cfg.loss.name}; set only loss.scale"
        )
    return float(asked if asked is not None else own if own is not None else 30.0)


def check_writable(folder: Path) -> None:
    """Refuse an output folder that cannot be created or written, before any work is done."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(
            f"cannot write runs under {folder}: {existing} is not a writable folder; set out_dir=... to one"
        )


def run_directory(cfg: DictConfig) -> Path:
    name = cfg.name or f"{cfg.data.name}_{cfg.method.name}_{run_id(cfg)}"
    return Path(cfg.out_dir) / name


def check_same_config(saved_path: Path, cfg: DictConfig) -> None:
    """Refuse to resume a run whose saved config differs from the requested one."""
    from lt_bench.config import NON_IDENTITY_KEYS, load_config

    saved = flatten(
        to_dict(load_config(saved_path))
    )  # merged with the schema: new keys get defaults
    wanted = flatten(to_dict(cfg))
    for key in NON_IDENTITY_KEYS:
        saved.pop(key, None)
        wanted.pop(key, None)
    diff = [
        f"{k}: {saved.get(k)!r} -> {wanted.get(k)!r}"
        for k in sorted(set(saved) | set(wanted))
        if saved.get(k) != wanted.get(k)
    ]
    if diff:
        raise UserError(
            f"cannot resume {saved_path.parent}: its config differs ({'; '.join(diff)}); "
            "rerun with the saved config or choose another run name"
        )


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic.write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


def _read_jsonl(path: Path) -> list[dict]:
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if path.exists()
        else []
    )


# ----------------------------------------------------------------------------- the loop


def train(
    cfg: DictConfig, resume: bool = False, on_epoch_end: Callable[[int, dict], None] | None = None
) -> dict:
    """Train one run and write its directory; return the final metrics (``final.json``)."""
    started = time.time()
    run_dir = run_directory(cfg)
    finished = check_before_start(cfg, run_dir, resume)
    if finished is not None:  # done already: a sweep's repeat launch is a no-op
        return finished

    # Set-up: data, network, method, base loss, then what the loop steps. Nothing is written yet.
    setup = build(cfg)
    network, method, base_loss, device = setup.network, setup.method, setup.base_loss, setup.device
    loop = build_loop(cfg, setup)
    main = distributed.rank() == 0  # only rank 0 writes the run directory
    select_best = cfg.train.select == "best_val"  # else the last epoch; never the test set
    if select_best:
        val, val_described = validation_set(setup.source, cfg, cfg.data.val_per_class)

    start_epoch, history = resume_from_checkpoint(run_dir, setup, loop) if resume else (0, [])
    if main:
        open_run_directory(run_dir, cfg, setup, fresh=start_epoch == 0)
    trackers = Trackers(cfg, run_dir, start_epoch, enabled=main)  # TensorBoard, MLflow
    check_every = 1 if device.type == "cpu" else 25  # finiteness checks sync the GPU
    progress = _progress(cfg, start_epoch, enabled=main)
    try:
        for epoch in range(start_epoch, cfg.optim.epochs):
            network.train()
            method.train()
            class_weight = loop.reweight(epoch)
            class_weight = class_weight.to(device) if class_weight is not None else None
            sums: dict[str, torch.Tensor] = {}
            correct, seen = torch.zeros((), device=device), torch.zeros((), device=device)
            epoch_start = time.time()
            for step, (x, y) in enumerate(loop.epoch_batches(epoch)):
                failpoint("train_step", epoch=epoch + 1, step=step + 1)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=setup.amp):
                    features, logits = loop.forward(x)
                    terms = {"loss/base": base_loss(logits.float(), y, class_weight)}
                terms.update(method_terms(method, features, logits, y, network.classifier))
                total = sum(terms.values())
                loop.optimizer.zero_grad(set_to_none=True)
                total.backward()
                distributed.average_gradients(method.parameters())  # DDP averages the network's
                loop.optimizer.step()
                loop.scheduler.step()

                for name, value in terms.items():
                    sums[name] = sums.get(name, 0) + value.detach().float() * len(y)
                correct += (logits.detach().argmax(1) == y).sum()
                seen += len(y)
                if (step + 1) % check_every == 0 or step + 1 == loop.steps_per_epoch:
                    _check_finite(sums, epoch, step, check_every)

            row = epoch_row(epoch, sums, correct, seen, time.time() - epoch_start, loop, method)
            last = epoch + 1 == cfg.optim.epochs
            if cfg.train.eval_every and (epoch + 1) % cfg.train.eval_every == 0 and not last:
                _, logits_test, labels_test = predict_all(network, setup.test, setup, cfg)
                metrics, _, _ = summarize(
                    logits_test, labels_test, setup.split.counts, cfg.data.grouping
                )
                row.update({f"test/{k}": v for k, v in metrics.items() if isinstance(v, float)})
            if select_best:
                _, val_logits, val_labels = predict_all(network, val, setup, cfg)
                row["val/balanced"] = balanced_accuracy(val_logits, val_labels, loop.num_classes)
                if main and row["val/balanced"] > max(
                    (r["val/balanced"] for r in history), default=-1.0
                ):  # ties keep the earlier epoch
                    save_weights(run_dir / "best.pt", epoch + 1, network, method)
            history.append(row)
            save_epoch(run_dir, epoch + 1, history, setup, loop)
            trackers.log_epoch(epoch + 1, row)
            progress.update(1)
            progress.set_postfix(loss=f"{row['loss/total']:.3f}", acc=f"{row['train/acc']:.3f}")
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, row)
    except NonFiniteLoss as err:
        if main:
            record = {"status": "failed", "error": str(err), "run_id": run_id(cfg)}
            atomic.write_json(run_dir / "final.json", record)
        trackers.close()
        raise
    finally:
        progress.close()

    selection = {"mode": "last", "epoch": cfg.optim.epochs}
    if select_best:
        selection = load_best(run_dir, setup, history, val_described)

    # Final evaluation on the balanced test set (each rank predicts a shard, rank 0 gathers);
    # train features serve as kNN and NCM memory.
    evaluated = final_evaluation(run_dir, network, method, setup, cfg)
    in_sync = _method_state_in_sync(method) if distributed.world_size() > 1 else True
    if not main:
        distributed.barrier()
        return {"status": "done", "rank": distributed.rank()}
    metrics, arrays = evaluated
    method_stats, method_warnings = method.run_summary(history)
    final = {
        "status": "done",
        "run_id": run_id(cfg),
        **metrics,
        "epochs": cfg.optim.epochs,
        "train_images": int(len(setup.split.train)),
        "test_images": int(len(arrays["labels"])),
        "method_info": method.info(),
        "method_stats": method_stats,
        "warnings": config_warnings(cfg, setup) + method_warnings + trackers.warnings,
        "classifier": network.classifier_info(),
        "device": str(device),
        "precision": setup.precision,
        "compiled": bool(cfg.train.compile),
        "processes": distributed.world_size(),
        "selection": selection,
        "method_state_in_sync": in_sync,
        "wall_time_s": time.time() - started,
        "versions": environment(),
    }
    atomic.write_json(run_dir / "final.json", final)
    logged_warnings = len(trackers.warnings)
    trackers.log_final(final, run_dir, cfg.optim.epochs)
    trackers.close()
    if len(trackers.warnings) > logged_warnings:  # a tracker failed at the end: say so
        final["warnings"] += trackers.warnings[logged_warnings:]
        atomic.write_json(run_dir / "final.json", final)
    distributed.barrier()
    return final


# ----------------------------------------------------------------------------- the loop's helpers


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


def check_before_start(cfg: DictConfig, run_dir: Path, resume: bool) -> dict | None:
    """Every check that needs no data: names and values of the config, the output folder, an
    existing run's state. Returns the saved final metrics if the run is done already."""
    check_config(cfg)
    check_writable(run_dir)
    final_path = run_dir / "final.json"
    previous = json.loads(final_path.read_text()) if final_path.exists() else {}
    if previous.get("status") == "done":
        check_same_config(run_dir / "config.yaml", cfg)
        return previous
    if (run_dir / "checkpoint.pt").exists() and not resume:
        raise UserError(
            f"{run_dir} already has a checkpoint; pass --resume to continue it, or set name=... for a new run"
        )
    if resume and (run_dir / "config.yaml").exists():
        check_same_config(run_dir / "config.yaml", cfg)
    return None


def build_loop(cfg: DictConfig, setup: Setup) -> Loop:
    """Batches, re-weighting, the DDP / compiled forward, optimizer and schedule, generators."""
    world, rank, device, network = (
        distributed.world_size(),
        distributed.rank(),
        setup.device,
        setup.network,
    )
    if cfg.data.batch_size % world:
        raise UserError(
            f"data.batch_size {cfg.data.batch_size} does not split over {world} processes; use a multiple"
        )
    batches = make_batches(
        setup.split.train,
        cfg.data.batch_size // world,
        device,
        cfg.data.augment,
        cfg.data.pad,
        cfg.data.num_workers,
        cfg.train.channels_last,
    )
    _, reweight_options = split_loss_options(to_dict(cfg.loss))
    reweight = Reweighting(setup.split.counts, **reweight_options)
    forward = network
    if world > 1:
        if cfg.train.sync_bn:
            if device.type != "cuda":
                raise UserError(
                    "train.sync_bn needs CUDA (SyncBatchNorm has no CPU kernel); set train.sync_bn=false"
                )
            network = torch.nn.SyncBatchNorm.convert_sync_batchnorm(network)
        forward = torch.nn.parallel.DistributedDataParallel(
            network, device_ids=[device] if device.type == "cuda" else None
        )
    if cfg.train.compile:
        forward = torch.compile(forward)

    # Optimizer and schedule: owned here, identical for every method.
    param_groups = [
        {"params": [p for p in network.parameters() if p.requires_grad], "name": "network"}
    ]
    param_groups += setup.method.param_groups()
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


def resume_from_checkpoint(run_dir: Path, setup: Setup, loop: Loop) -> tuple[int, list[dict]]:
    """Restore weights, method state, optimizer, schedule and generators from ``checkpoint.pt``;
    return the epoch to start from and the metrics rows of the epochs already done. A run killed
    before its first checkpoint starts again from epoch 0."""
    checkpoint_path = run_dir / "checkpoint.pt"
    if distributed.is_main():  # a kill during a write leaves only a temporary file behind
        for stale in run_dir.glob(".*.tmp"):
            stale.unlink()
    if not checkpoint_path.exists():
        return 0, []
    state = torch.load(checkpoint_path, map_location=setup.device, weights_only=True)
    setup.network.load_state_dict(state["network"])
    setup.method.load_state_dict(state["method"])
    loop.optimizer.load_state_dict(state["optimizer"])
    loop.scheduler.load_state_dict(state["scheduler"])
    loop.generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if distributed.world_size() > 1:
        loop.augment_generator.set_state(state["augment_generators"][distributed.rank()])
    start_epoch = state["epoch"]
    rows = _read_jsonl(run_dir / "metrics.jsonl")
    return start_epoch, [row for row in rows if row["epoch"] <= start_epoch]


def open_run_directory(run_dir: Path, cfg: DictConfig, setup: Setup, fresh: bool) -> None:
    """A fresh run writes its folder, resolved config and split; every run then says it is running."""
    if fresh:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic.write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        atomic.write_json(run_dir / "split.json", setup.split.manifest)
    atomic.write_json(run_dir / "final.json", {"status": "running", "run_id": run_id(cfg)})


def method_terms(method: Regularizer, features, logits, targets, classifier) -> dict:
    """The regularizer's terms in fp32 with autocast off, as the official SAR code computes them:
    under bf16 autocast the anchors' pass through the classifier would otherwise run in bf16."""
    with torch.autocast(features.device.type, enabled=False):
        return method(features.float(), logits.float(), targets, classifier)


def config_warnings(cfg: DictConfig, setup: Setup) -> list[str]:
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


def epoch_row(epoch, sums, correct, seen, seconds, loop: Loop, method: Regularizer) -> dict:
    """One line of ``metrics.jsonl``: each loss term's mean over the epoch's images (summed over
    processes), the total, lr, train accuracy, throughput and the method's diagnostics."""
    for value in (*sums.values(), correct, seen):
        distributed.all_reduce_sum(value)
    seen = float(seen)
    row = {"epoch": epoch + 1, "lr": loop.optimizer.param_groups[0]["lr"]}
    row.update({name: float(value) / seen for name, value in sums.items()})
    row["loss/total"] = sum(v for k, v in row.items() if "/" in k and k != "loss/total")
    row["train/acc"] = float(correct) / seen
    row["time_s"] = seconds
    row["images_per_s"] = seen / seconds
    row.update(method.epoch_stats())
    return row


def save_weights(path: Path, epoch: int, network, method: Regularizer) -> None:
    """Network and method weights of one epoch (``best.pt``), written atomically."""
    state = {"epoch": epoch, "network": network.state_dict(), "method": method.state_dict()}
    with atomic.atomic_path(path) as tmp:
        torch.save(state, tmp)


def save_epoch(run_dir: Path, epoch: int, history: list[dict], setup: Setup, loop: Loop) -> None:
    """``metrics.jsonl`` then ``checkpoint.pt`` (rank 0), each written atomically: a kill at any
    point leaves the previous or the new checkpoint, never a torn one."""
    world = distributed.world_size()
    augment_states = (
        distributed.gather_objects(loop.augment_generator.get_state()) if world > 1 else None
    )
    if not distributed.is_main():
        return
    _write_jsonl(run_dir / "metrics.jsonl", history)
    state = {
        "epoch": epoch,
        "network": setup.network.state_dict(),
        "method": setup.method.state_dict(),
        "optimizer": loop.optimizer.state_dict(),
        "scheduler": loop.scheduler.state_dict(),
        "generator": loop.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
    }
    if augment_states is not None:
        state["augment_generators"] = augment_states
    with atomic.atomic_path(run_dir / "checkpoint.pt") as tmp:
        torch.save(state, tmp)
        failpoint("checkpoint_write", epoch=epoch)


def load_best(run_dir: Path, setup: Setup, history: list[dict], val_described: dict) -> dict:
    """Load ``best.pt`` (written by rank 0) into the network and method; return the selection record."""
    distributed.barrier()
    best = torch.load(run_dir / "best.pt", map_location=setup.device, weights_only=True)
    setup.network.load_state_dict(best["network"])
    setup.method.load_state_dict(best["method"])
    return {
        "mode": "best_val",
        "epoch": best["epoch"],
        "val_balanced": history[best["epoch"] - 1]["val/balanced"],
        "val": val_described,
    }


def final_evaluation(run_dir: Path, network, method: Regularizer, setup: Setup, cfg: DictConfig):
    """Evaluate on the balanced test set, with train features as kNN and NCM memory. Every rank
    predicts a shard; rank 0 writes per_class.csv, separability.json and features.npz and gets
    (metrics, test arrays); other ranks get None."""
    arrays = test_arrays(network, method, setup, cfg)
    train_features, _, train_labels = predict_all(network, setup.split.train, setup, cfg)
    if not distributed.is_main():
        return None
    metrics = evaluate_and_write(
        run_dir,
        arrays,
        setup.source.info.class_names,
        cfg.data.grouping,
        train_features,
        train_labels,
    )
    failpoint("final_evaluation")
    return metrics, arrays


def selected_checkpoint(run_dir: Path) -> Path:
    """The weights a run reports: ``best.pt`` when it selected on validation, else ``checkpoint.pt``."""
    return run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "checkpoint.pt"


def balanced_accuracy(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    from lt_bench.eval.accuracy import per_class_accuracy

    return float(np.nanmean(per_class_accuracy(logits.argmax(1), labels, num_classes)))


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


def predict_all(
    network, data: LabelledImages, setup: Setup, cfg: DictConfig
) -> tuple[np.ndarray, ...]:
    """Features, logits and labels of all of ``data`` in order: each rank predicts every
    ``world``-th image and the shards are gathered (one process: a plain pass)."""
    world, rank = distributed.world_size(), distributed.rank()
    if world == 1:
        return predict(network, setup.batches(data, cfg), setup.device, setup.amp)
    index = np.arange(rank, len(data), world)
    shard = predict(network, setup.batches(data.subset(index), cfg), setup.device, setup.amp)
    parts = distributed.gather_objects((index, *shard))
    order = np.argsort(np.concatenate([p[0] for p in parts]), kind="stable")
    return tuple(np.concatenate([p[i] for p in parts])[order] for i in (1, 2, 3))


def _method_state_in_sync(method: Regularizer) -> bool:
    """Whether every rank holds the same method state (centres, prototypes, EMA anchors)."""
    checksum = [
        float(t.double().sum()) for t in method.state_dict().values() if t.is_floating_point()
    ]
    every = distributed.gather_objects(checksum)
    return all(c == every[0] for c in every)


def _check_finite(sums: dict[str, torch.Tensor], epoch: int, step: int, window: int) -> None:
    for name, value in sums.items():
        if not torch.isfinite(value):
            where = (
                f"step {step + 1}"
                if window == 1
                else f"steps {max(step + 2 - window, 1)}-{step + 1}"
            )
            raise NonFiniteLoss(
                f"loss term {name!r} became non-finite at epoch {epoch + 1}, {where}; "
                "lower optim.lr or the term's weight"
            )


def _progress(cfg: DictConfig, start_epoch: int, enabled: bool = True):
    from tqdm.auto import tqdm

    return tqdm(
        total=cfg.optim.epochs,
        initial=start_epoch,
        unit="epoch",
        desc=f"{cfg.data.name}/{cfg.method.name}",
        disable=not (enabled and cfg.train.progress and sys.stderr.isatty()),
    )


# ----------------------------------------------------------------------------- evaluation of a saved run


def evaluate_run(
    run_dir: str | Path, train_features: bool = False, posthoc_tau: float = 0.0
) -> dict:
    """Recompute a finished run's evaluation from ``features.npz``, or from ``checkpoint.pt`` when
    the features are missing or train features are asked for (kNN / NCM memory). A post-hoc logit
    adjustment (tau > 0) is reported under ``final.json["posthoc"]``, the run's own metrics kept."""
    from lt_bench.config import load_config

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise UserError(
            f"{run_dir} is not a run directory (no config.yaml); pass a folder written by lt-bench train"
        )
    cfg = load_config(run_dir / "config.yaml")
    final_path = run_dir / "final.json"
    final = json.loads(final_path.read_text()) if final_path.exists() else {}
    features_path = run_dir / "features.npz"
    train_f = train_l = None
    class_names: list[str] = []
    if train_features or not features_path.exists():
        if not selected_checkpoint(run_dir).exists():
            raise UserError(
                f"{run_dir} has neither features.npz nor checkpoint.pt; retrain the run"
            )
        setup = build(cfg)
        state = torch.load(
            selected_checkpoint(run_dir), map_location=setup.device, weights_only=True
        )
        setup.network.load_state_dict(state["network"])
        setup.method.load_state_dict(state["method"])
        arrays = test_arrays(setup.network, setup.method, setup, cfg)
        if train_features:
            train_f, _, train_l = predict(
                setup.network, setup.batches(setup.split.train, cfg), setup.device, setup.amp
            )
        class_names = setup.source.info.class_names
    else:
        with np.load(features_path) as saved:
            arrays = {k: saved[k] for k in saved.files}
    if not class_names and (run_dir / "per_class.csv").exists():
        class_names = pd.read_csv(run_dir / "per_class.csv")["name"].astype(str).tolist()
    metrics = evaluate_and_write(
        run_dir,
        arrays,
        class_names,
        cfg.data.grouping,
        train_f,
        train_l,
        write_features=not features_path.exists(),
    )
    if posthoc_tau:
        adjusted, _, _ = summarize(
            np.asarray(arrays["logits"], dtype=np.float64),
            arrays["labels"],
            arrays["train_counts"],
            cfg.data.grouping,
            posthoc_tau,
        )
        final["posthoc"] = {"tau": posthoc_tau, **adjusted}
    final.update(metrics)
    final["evaluated_with"] = {"train_features": train_features}
    atomic.write_json(final_path, final)
    return final
