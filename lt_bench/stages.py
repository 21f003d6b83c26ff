"""Two-stage decoupling (Kang et al., ICLR 2020) on top of any finished run, with the backbone frozen.

- ``crt``: re-initialise the linear classifier and retrain it with a class-balanced sampler;
- ``lws``: learn one scale per class on the fixed classifier, class-balanced sampler;
- ``tau_norm``: divide each classifier row by its norm to the power tau, tau chosen on a validation
  split (never on the test set): images the long-tailed split left over (CIFAR-LT, MNIST-LT), or the
  data set's own val list (ImageNet-LT, Places-LT);
- ``ncm``: nearest class mean, by cosine, on L2-normalised training features.

A stage writes a child run next to its parent (``<parent>__<stage>``) with the parent's schema:
config.yaml (the parent's plus a ``stage`` section), split.json, metrics.jsonl, checkpoint.pt,
final.json (with ``stage`` and ``parent``), per_class.csv, separability.json and features.npz.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from lt_bench import atomic
from lt_bench.config import load_config, run_id, to_dict
from lt_bench.data import validation_set
from lt_bench.data.samplers import epoch_indices
from lt_bench.data.transforms import make_batches
from lt_bench.errors import UserError
from lt_bench.eval.accuracy import per_class_accuracy
from lt_bench.options import at_least, check_options, greater_than, option_ranges

STAGES = {"crt": "cRT", "lws": "LWS", "tau_norm": "tau-norm", "ncm": "NCM"}


@option_ranges(epochs=at_least(1), lr=greater_than(0))
@dataclass
class CRTOptions:
    epochs: int = 10
    lr: float = 0.1


@option_ranges(epochs=at_least(1), lr=greater_than(0))
@dataclass
class LWSOptions:
    epochs: int = 5
    lr: float = 0.1


@option_ranges(taus=at_least(0), val_per_class=at_least(1))
@dataclass
class TauNormOptions:
    taus: list[float] = field(default_factory=lambda: [round(0.1 * i, 1) for i in range(21)])
    val_per_class: int = 20


@dataclass
class NCMOptions:
    pass


# Each stage's options (``stage.*`` keys): types, defaults and ranges, checked like the schema's.
OPTIONS = {"crt": CRTOptions, "lws": LWSOptions, "tau_norm": TauNormOptions, "ncm": NCMOptions}


def child_dir(parent_dir: Path, stage: str) -> Path:
    """Where a stage's child run of ``parent_dir`` goes by default: beside it, ``<parent>__<stage>``."""
    return parent_dir.parent / f"{parent_dir.name}__{stage}"


class ScaledClassifier(nn.Module):
    """LWS: the fixed classifier's logits times one learned scale per class."""

    def __init__(self, classifier: nn.Module, num_classes: int):
        super().__init__()
        self.classifier = classifier
        self.scales = nn.Parameter(torch.ones(num_classes))
        for p in self.classifier.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x) * self.scales

    @property
    def weight(self) -> torch.Tensor:
        return self.classifier.weight * self.scales[:, None]


class CosineNCM(nn.Module):
    """Nearest class mean: cosine between L2-normalised features and normalised class means."""

    def __init__(self, means: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", F.normalize(means, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) @ self.weight.T


def tau_normalize(classifier: nn.Linear, tau: float) -> nn.Linear:
    """A copy of ``classifier`` with row c divided by ||w_c||^tau (bias kept): tau 0 is the original."""
    out = nn.Linear(
        classifier.in_features, classifier.out_features, bias=classifier.bias is not None
    )
    with torch.no_grad():
        norms = classifier.weight.norm(dim=1, keepdim=True)
        out.weight.copy_(classifier.weight / norms.pow(tau))
        if classifier.bias is not None:
            out.bias.copy_(classifier.bias)
    return out.to(classifier.weight.device)


def _train_head(
    head: nn.Module, setup, cfg: DictConfig, epochs: int, lr: float, run_dir: Path
) -> list[dict]:
    """Train ``head`` on frozen-backbone features of class-balanced, augmented batches."""
    from lt_bench.engine import _write_jsonl

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
    generator = torch.Generator().manual_seed(cfg.seed)
    backbone = setup.network.backbone
    history = []
    for epoch in range(epochs):
        start = time.time()
        order = epoch_indices(
            setup.split.train.labels, "class_balanced", generator, setup.source.info.num_classes
        )
        drawn = np.bincount(
            setup.split.train.labels[order.numpy()], minlength=setup.source.info.num_classes
        )
        total, correct, seen = 0.0, 0, 0
        for x, y in batches(order, generator):
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
        _write_jsonl(run_dir / "metrics.jsonl", history)
    return history


def retrain(
    parent_dir: str | Path, stage: str, overrides: list[str] | tuple[str, ...] = ()
) -> dict:
    """Run ``stage`` on the finished run in ``parent_dir``; return the child's final.json."""
    from lt_bench.engine import build, environment, final_evaluation, predict, selected_checkpoint

    if stage not in STAGES:
        raise UserError(f"unknown stage {stage!r}; choose one of: {', '.join(STAGES)}")
    parent_dir = Path(parent_dir)
    parent_final = parent_dir / "final.json"
    if not parent_final.exists() or json.loads(parent_final.read_text()).get("status") != "done":
        raise UserError(
            f"{parent_dir} is not a finished run (final.json status done); train it first"
        )
    if not selected_checkpoint(parent_dir).exists():
        raise UserError(
            f"{parent_dir} has no checkpoint.pt to start the stage from; retrain the parent"
        )
    defaults = asdict(OPTIONS[stage]())
    stage_args = [f"stage.{k}={json.dumps(v)}" for k, v in defaults.items()]
    cfg = load_config(
        parent_dir / "config.yaml",
        [
            f"stage.name={stage}",
            *stage_args,
            f"out_dir={parent_dir.parent}",
            f"name={child_dir(parent_dir, stage).name}",
            *overrides,
        ],
    )
    options = {k: v for k, v in to_dict(cfg.stage).items() if k != "name"}
    check_options(OPTIONS[stage], options, "stage.", f"stage {stage}")
    run_dir = parent_dir.parent / cfg.name
    if (run_dir / "final.json").exists() and json.loads((run_dir / "final.json").read_text()).get(
        "status"
    ) == "done":
        return json.loads((run_dir / "final.json").read_text())
    started = time.time()

    setup = build(cfg)
    state = torch.load(
        selected_checkpoint(parent_dir), map_location=setup.device, weights_only=True
    )
    network = setup.network
    network.load_state_dict(state["network"])
    setup.method.load_state_dict(state["method"])
    network.eval()  # the backbone is frozen, BatchNorm statistics included
    for p in network.backbone.parameters():
        p.requires_grad_(False)
    if stage == "tau_norm":  # checked before anything is written
        if not isinstance(network.classifier, nn.Linear):
            raise UserError(
                f"tau_norm needs a linear classifier; this run's is {network.classifier_info()['kind']}: "
                "use --stage crt, lws or ncm"
            )
        val, described = validation_set(setup.source, cfg, cfg.stage.val_per_class)

    run_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    atomic.write_text(run_dir / "split.json", (parent_dir / "split.json").read_text())
    atomic.write_json(
        run_dir / "final.json",
        {"status": "running", "stage": STAGES[stage], "parent": parent_dir.name},
    )
    num_classes = setup.source.info.num_classes
    extra: dict = {}
    torch.manual_seed(cfg.seed)
    if stage == "crt":
        network.classifier = nn.Linear(network.num_features, num_classes).to(setup.device)
        _train_head(network.classifier, setup, cfg, cfg.stage.epochs, cfg.stage.lr, run_dir)
    elif stage == "lws":
        network.classifier = ScaledClassifier(network.classifier, num_classes).to(setup.device)
        _train_head(network.classifier, setup, cfg, cfg.stage.epochs, cfg.stage.lr, run_dir)
        extra["scales"] = network.classifier.scales.detach().cpu().tolist()
    elif stage == "tau_norm":
        features, _, labels = predict(network, setup.batches(val, cfg), setup.device, setup.amp)
        curve = []
        base = network.classifier
        for tau in cfg.stage.taus:
            head = tau_normalize(base, float(tau)).cpu()
            with torch.no_grad():
                preds = head(torch.as_tensor(features)).argmax(1).numpy()
            curve.append(
                {
                    "tau": float(tau),
                    "val_balanced": float(
                        np.nanmean(per_class_accuracy(preds, labels, num_classes))
                    ),
                }
            )
        best = max(
            curve, key=lambda point: point["val_balanced"]
        )  # first of ties: the smallest tau
        network.classifier = tau_normalize(base, best["tau"])
        extra.update(tau=best["tau"], tau_curve=curve, tau_selected_on=described)
        _write_curve(run_dir, curve)
    else:  # ncm
        features, _, labels = predict(
            network, setup.batches(setup.split.train, cfg), setup.device, setup.amp
        )
        features = F.normalize(torch.as_tensor(features), dim=1)
        sums = torch.zeros(num_classes, features.shape[1]).index_add_(
            0, torch.as_tensor(labels), features
        )
        network.classifier = CosineNCM(sums).to(setup.device)
        _write_curve(run_dir, [])

    checkpoint = {
        "epoch": 0,
        "network": network.state_dict(),
        "method": setup.method.state_dict(),
        "stage": stage,
    }
    with atomic.atomic_path(run_dir / "checkpoint.pt") as tmp:
        torch.save(checkpoint, tmp)
    metrics, arrays = final_evaluation(run_dir, network, setup.method, setup, cfg)
    final = {
        "status": "done",
        "run_id": run_id(cfg),
        "stage": STAGES[stage],
        "parent": parent_dir.name,
        **metrics,
        **extra,
        "train_images": int(len(setup.split.train)),
        "test_images": int(len(arrays["labels"])),
        "classifier": network.classifier_info() if hasattr(network, "classifier_info") else None,
        "device": str(setup.device),
        "precision": setup.precision,
        "warnings": [],
        "wall_time_s": time.time() - started,
        "versions": environment(),
    }
    atomic.write_json(run_dir / "final.json", final)
    return final


def _write_curve(run_dir: Path, curve: list[dict]) -> None:
    """Stages without epochs still write metrics.jsonl (one line per tau tried, or none)."""
    atomic.write_text(
        run_dir / "metrics.jsonl",
        "".join(json.dumps({"epoch": 0, **point}) + "\n" for point in curve),
    )
