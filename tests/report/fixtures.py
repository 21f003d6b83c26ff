"""Light run folders made by hand, as many arms as a real study has (14 by default), with numbers
drawn from a seeded generator: what the report reads (config.yaml, split.json, final.json,
metrics.jsonl, per_class.csv, separability.json, and features.npz for a few rows), no training.

    fabricate_study(tmp_path / "runs")            # 14 arms x 3 seeds x ratios 10 and 100

At ratio 10 the classes have 500..50 training images, so the few-shot group is empty (as in
Fashion-MNIST-LT); at ratio 100, 500..5."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml
from omegaconf import OmegaConf

from lt_bench import atomic
from lt_bench.config import load_config

BASE = ["data.name=mnist_lt", "optim.epochs=4", "optim.warmup_epochs=0"]
ARMS = (  # (overrides, how much the arm adds to every class's accuracy)
    (["method.name=none"], 0.00),
    (["method.name=none", "loss.name=balanced_softmax"], 0.10),
    (["method.name=center"], 0.00),
    (["method.name=center", "method.weight=0.1"], -0.02),
    (["method.name=center", "loss.name=balanced_softmax"], 0.10),
    (["method.name=prototype"], 0.01),
    (["method.name=prototype", "loss.name=balanced_softmax"], 0.11),
    (["method.name=etf"], 0.01),
    (["method.name=etf", "loss.name=balanced_softmax"], 0.11),
    (["method.name=sar"], 0.05),
    (["method.name=sar", "method.trade_off=0"], 0.05),
    (["method.name=sar", "method.detach_classifier=true"], 0.00),
    (["method.name=sar", "loss.name=balanced_softmax"], 0.14),
    (["method.name=sar", "loss.name=balanced_softmax", "method.trade_off=0"], 0.13),
)
CLASSES = 10
TEST_PER_CLASS = 8  # feature arrays: 80 test points
SUMMARY = ("nc1", "cdnv", "intra_inter_ratio", "silhouette", "knn_accuracy", "ncm_accuracy",
           "centroid_distance", "centroid_cosine")  # fmt: skip
GROUP_VALUES = ("intra_inter_ratio", "knn_accuracy", "centroid_distance", "centroid_cosine")


def class_counts(ratio: float, largest: int = 500) -> np.ndarray:
    """The exponential profile: ``largest`` images for class 0, ``largest / ratio`` for the last."""
    return np.round(largest * ratio ** (-np.arange(CLASSES) / (CLASSES - 1))).astype(int)


def shot_group(count: int) -> str:
    return "many" if count > 100 else "medium" if count >= 20 else "few"


def fabricate_study(
    runs: Path,
    arms: int = len(ARMS),
    seeds: tuple[int, ...] = (0, 1, 2),
    ratios: tuple[float, ...] = (10, 100),
    features_rows: int = 2,
    epochs: int = 4,
) -> Path:
    """``arms`` x ``seeds`` x ``ratios`` done runs under ``runs``; the first ``features_rows`` arms
    keep feature arrays on the largest ratio's first seed. Returns ``runs``."""
    for arm, (overrides, effect) in enumerate(ARMS[:arms]):
        # validated once per arm; seed and ratio are then set in the plain dict (fast)
        cfg = OmegaConf.to_container(load_config(None, [*BASE, *overrides, f"out_dir={runs}"]))
        for ratio in ratios:
            for seed in seeds:
                cfg["seed"], cfg["data"]["ratio"] = seed, float(ratio)
                rng = np.random.default_rng([arm, int(ratio), seed])
                name = f"{cfg['method']['name']}_{arm:02d}_r{ratio:g}_s{seed}"
                features = arm < features_rows and ratio == max(ratios) and seed == seeds[0]
                _write_run(runs / name, cfg, name, rng, effect, ratio, epochs, features)
    return runs


def _write_run(folder, cfg, name, rng, effect, ratio, epochs, features) -> None:
    counts = class_counts(ratio)
    groups = [shot_group(c) for c in counts]
    # accuracy rises with log class size; the arm shifts it, the seed adds noise
    accuracy = np.clip(0.15 * np.log(counts) - 0.05 + effect + rng.normal(0, 0.03, CLASSES), 0, 1)
    accuracy = np.round(accuracy * TEST_PER_CLASS) / TEST_PER_CLASS
    atomic.write_text(folder / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
    atomic.write_json(folder / "split.json", {"ratio": float(ratio)})
    by_group = {
        g: float(np.mean([a for a, h in zip(accuracy, groups) if h == g])) if g in groups else None
        for g in ("many", "medium", "few")
    }
    final = {
        "status": "done",
        "run_id": name,
        "top1": float(accuracy.mean()),
        "top5": float(min(1.0, accuracy.mean() + 0.3)),
        "balanced": float(accuracy.mean()),
        **by_group,
        "ece": float(rng.uniform(0.02, 0.1)),
        "grouping": "absolute",
        "group_sizes": {g: groups.count(g) for g in ("many", "medium", "few")},
        "epochs": epochs,
        "train_images": int(counts.sum()),
        "test_images": CLASSES * TEST_PER_CLASS,
        "wall_time_s": float(rng.uniform(50, 70)),
    }
    atomic.write_json(folder / "final.json", final)
    rows = []
    for epoch in range(1, epochs + 1):
        base = float(2.0 * np.exp(-0.4 * epoch) * (1 + effect) + rng.normal(0, 0.02) + 0.2)
        row = {"epoch": epoch, "lr": 0.1, "loss/base": base, "train/acc": 1 - base / 2.5}
        method = cfg["method"]["name"]
        if method != "none":
            row[f"{method}/pull"] = float(rng.uniform(0.001, 0.01))
        row["loss/total"] = base + row.get(f"{method}/pull", 0.0)
        rows.append(row)
    atomic.write_text(folder / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    lines = ["class,name,n_train,n_test,group,accuracy,knn_accuracy"]
    lines += [
        f"{c},{c},{counts[c]},{TEST_PER_CLASS},{groups[c]},{accuracy[c]},{accuracy[c]}"
        for c in range(CLASSES)
    ]
    atomic.write_text(folder / "per_class.csv", "\n".join(lines) + "\n")
    separability = {
        "summary": {key: float(rng.uniform(0.2, 1.5)) for key in SUMMARY},
        "groups": {
            g: {key: float(rng.uniform(0.2, 1.5)) for key in GROUP_VALUES}
            for g in ("many", "medium", "few")
            if g in groups
        },
    }
    for values in separability["groups"].values():
        values["knn_accuracy"] = float(rng.uniform(0.3, 0.9))
    atomic.write_json(folder / "separability.json", separability)
    if features:
        labels = np.repeat(np.arange(CLASSES), TEST_PER_CLASS)
        centres = rng.normal(0, 1, (CLASSES, 16))
        points = centres[labels] + rng.normal(0, 0.5, (len(labels), 16))
        np.savez(folder / "features.npz", features=points.astype(np.float32), labels=labels)
