"""Prediction, the final evaluation of a run, and ``lt-bench eval`` on a saved run.

Every run ends with :func:`final_evaluation` on the balanced test set (train features as kNN and
NCM memory); :func:`evaluate_run` recomputes it later from ``features.npz`` or a checkpoint.
Nothing here ever selects a model on the test set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from lt_bench import distributed
from lt_bench.data import LabelledImages
from lt_bench.errors import UserError
from lt_bench.eval.accuracy import per_class_accuracy, summarize
from lt_bench.eval.evaluate import evaluate_and_write
from lt_bench.failpoints import failpoint
from lt_bench.methods import Regularizer
from lt_bench.models import Network
from lt_bench.rundir import FEATURES, PER_CLASS, RunDir
from lt_bench.setup import Setup, build


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


def balanced_accuracy(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """Mean per-class accuracy of the arg-max predictions (classes without images left out)."""
    return float(np.nanmean(per_class_accuracy(logits.argmax(1), labels, num_classes)))


def test_set_arrays(
    network: Network, method: Regularizer, setup: Setup, cfg: DictConfig
) -> dict:
    """What ``features.npz`` holds: test features, labels, logits, train counts, the classifier's
    rows and the method's centroids."""
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


test_set_arrays.__test__ = False  # a library function, not a pytest test


def final_evaluation(run: RunDir, network, method: Regularizer, setup: Setup, cfg: DictConfig):
    """Evaluate on the balanced test set, with train features as kNN and NCM memory. Every rank
    predicts a shard; rank 0 writes per_class.csv, separability.json and features.npz and gets
    (metrics, test arrays); other ranks get None."""
    arrays = test_set_arrays(network, method, setup, cfg)
    train_features, _, train_labels = predict_all(network, setup.split.train, setup, cfg)
    if not distributed.is_main():
        return None
    metrics = evaluate_and_write(
        run.path,
        arrays,
        setup.source.info.class_names,
        cfg.data.grouping,
        train_features,
        train_labels,
    )
    failpoint("final_evaluation")
    return metrics, arrays


def load_weights(setup: Setup, checkpoint: Path) -> None:
    """Network and method weights from a checkpoint (``checkpoint.pt``, ``best.pt``)."""
    state = torch.load(checkpoint, map_location=setup.device, weights_only=True)
    setup.network.load_state_dict(state["network"])
    setup.method.load_state_dict(state["method"])


def _arrays_from_checkpoint(run: RunDir, cfg: DictConfig, train_features: bool):
    """Test arrays (and train features when asked) recomputed from the selected checkpoint."""
    if not run.selected_checkpoint().exists():
        raise UserError(f"{run.path} has neither features.npz nor checkpoint.pt; retrain the run")
    setup = build(cfg)
    load_weights(setup, run.selected_checkpoint())
    arrays = test_set_arrays(setup.network, setup.method, setup, cfg)
    train = (None, None)
    if train_features:
        f, _, labels = predict(
            setup.network, setup.batches(setup.split.train, cfg), setup.device, setup.amp
        )
        train = (f, labels)
    return arrays, train, setup.source.info.class_names


def evaluate_run(
    run_dir: str | Path, train_features: bool = False, posthoc_tau: float = 0.0
) -> dict:
    """Recompute a finished run's evaluation from ``features.npz``, or from ``checkpoint.pt`` when
    the features are missing or train features are asked for (kNN / NCM memory). A post-hoc logit
    adjustment (tau > 0) is reported under ``final.json["posthoc"]``, the run's own metrics kept."""
    run = RunDir(run_dir)
    if not run.has_config:
        raise UserError(
            f"{run.path} is not a run directory (no config.yaml); pass a folder written by lt-bench train"
        )
    cfg = run.config()
    final = run.final()
    features_path = run / FEATURES
    train_f = train_l = None
    class_names: list[str] = []
    if train_features or not features_path.exists():
        arrays, (train_f, train_l), class_names = _arrays_from_checkpoint(run, cfg, train_features)
    else:
        with np.load(features_path) as saved:
            arrays = {k: saved[k] for k in saved.files}
    if not class_names and (run / PER_CLASS).exists():
        class_names = pd.read_csv(run / PER_CLASS)["name"].astype(str).tolist()
    metrics = evaluate_and_write(
        run.path,
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
    run.write_final(final)
    return final
