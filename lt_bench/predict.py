"""Prediction, the final evaluation of a run, and ``lt-bench eval`` on a saved run.

Every run ends with :func:`final_evaluation` on the balanced test set (train features as kNN and
NCM memory); :func:`evaluate_run` recomputes it later from ``features.npz`` or a checkpoint.
Nothing here ever selects a model on the test set.
"""

from __future__ import annotations

import pickle
import zipfile
import zlib
from dataclasses import dataclass
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
from lt_bench.options import at_least, check_options, one_of, option_ranges
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


def load_weights(setup: Setup, checkpoint: Path, fix: str = "train the run again") -> None:
    """Network and method weights from a checkpoint (``checkpoint.pt``, ``best.pt``); a damaged
    checkpoint, or one that does not fit the network, is a one-line UserError ending in ``fix``."""
    try:
        state = torch.load(checkpoint, map_location=setup.device, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        raise UserError(f"{checkpoint} is damaged ({type(err).__name__}); {fix}") from err
    try:
        setup.network.load_state_dict(state["network"])
        setup.method.load_state_dict(state["method"])
    except (RuntimeError, KeyError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"{checkpoint} does not fit the network its run's config builds ({first}); {fix}"
        ) from err


@option_ranges(train_features=one_of(True, False), posthoc_tau=at_least(0))
@dataclass
class EvalOptions:
    """The options of ``lt-bench eval``, checked before the run is read."""

    train_features: bool = False  # recompute train features from the checkpoint (kNN / NCM memory)
    posthoc_tau: float = 0.0  # also report post-hoc logit adjustment with this tau (0: none)


# What features.npz must hold for an evaluation (classifier rows and centroids are optional).
FEATURE_ARRAYS = ("features", "labels", "logits", "train_counts")


def read_features(run: RunDir) -> dict:
    """``features.npz`` as a dict of arrays; a damaged file is named with its fix."""
    path = run / FEATURES
    try:
        with np.load(path) as saved:
            arrays = {k: saved[k] for k in saved.files}
        missing = [k for k in FEATURE_ARRAYS if k not in arrays]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        fix = (
            f"delete it and rerun lt-bench eval {run.path} (it is recomputed from the checkpoint)"
            if run.selected_checkpoint().exists()
            else "the run has no checkpoint to recompute it from: train the run again"
        )
        raise UserError(f"{path} is damaged ({type(err).__name__}: {err}); {fix}") from err
    return arrays


def _arrays_from_checkpoint(run: RunDir, cfg: DictConfig, train_features: bool):
    """Test arrays (and train features when asked) recomputed from the selected checkpoint."""
    if not run.selected_checkpoint().exists():
        raise UserError(f"{run.path} has neither features.npz nor checkpoint.pt; retrain the run")
    setup = build(cfg)
    load_weights(setup, run.selected_checkpoint(), f"train {run.path} again")
    arrays = test_set_arrays(setup.network, setup.method, setup, cfg)
    train = (None, None)
    if train_features:
        f, _, labels = predict(
            setup.network, setup.batches(setup.split.train, cfg), setup.device, setup.amp
        )
        train = (f, labels)
    return arrays, train, setup.source.info.class_names


def finished_run(run_dir: str | Path) -> tuple[RunDir, DictConfig, dict]:
    """A finished run's folder, config and final.json; anything else is refused, naming why."""
    run = RunDir(run_dir)
    if not run.has_config:
        raise UserError(
            f"{run.path} is not a run directory (no config.yaml); pass a folder written by lt-bench train"
        )
    cfg = run.config()
    final = run.final()  # a damaged final.json is named here
    if run.status() != "done":
        shown = final.get("status") or run.status()
        raise UserError(
            f"{run.path} is not finished (status {shown}); train or --resume it first"
        )
    return run, cfg, final


def evaluate_run(
    run_dir: str | Path, train_features: bool = False, posthoc_tau: float = 0.0
) -> dict:
    """Recompute a finished run's evaluation from ``features.npz``, or from ``checkpoint.pt`` when
    the features are missing or train features are asked for (kNN / NCM memory). A post-hoc logit
    adjustment (tau > 0) is reported under ``final.json["posthoc"]``, the run's own metrics kept.
    The options are checked and the run's files read before anything is written; the run's lock is
    held meanwhile (no training or second eval of it runs at the same time)."""
    options = {"train_features": train_features, "posthoc_tau": posthoc_tau}
    check_options(EvalOptions, options, "", "lt-bench eval")
    run, cfg, final = finished_run(run_dir)
    with run.lock():
        return _evaluate_locked(run, cfg, final, EvalOptions(**options))


def _evaluate_locked(run: RunDir, cfg: DictConfig, final: dict, options: EvalOptions) -> dict:
    features_path = run / FEATURES
    train_f = train_l = None
    class_names: list[str] = []
    if options.train_features or not features_path.exists():
        arrays, (train_f, train_l), class_names = _arrays_from_checkpoint(
            run, cfg, options.train_features
        )
    else:
        arrays = read_features(run)
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
    if options.posthoc_tau:
        adjusted, _, _ = summarize(
            np.asarray(arrays["logits"], dtype=np.float64),
            arrays["labels"],
            arrays["train_counts"],
            cfg.data.grouping,
            options.posthoc_tau,
        )
        final["posthoc"] = {"tau": options.posthoc_tau, **adjusted}
    final.update(metrics)
    final["evaluated_with"] = {"train_features": options.train_features}
    run.write_final(final)
    return final
