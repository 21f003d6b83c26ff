"""Every run under a folder as one row of a pandas DataFrame: config keys, status, metrics.

Model selection is explicit: a run's metrics are those of its last epoch (the long-tail
convention, ``selection = "last"``); nothing here ever picks a checkpoint by test accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from lt_bench.config import flatten
from lt_bench.errors import UserError

METRICS = ("top1", "top5", "balanced", "many", "medium", "few", "ece")


def run_label(row: dict) -> str:
    """Table row name: the method, plus the base loss and re-weighting when not plain CE."""
    label = str(row.get("method.name"))
    loss, reweight = row.get("loss.name", "ce"), row.get("loss.reweight", "none")
    if loss != "ce" or reweight not in (None, "none"):
        label += f" + {loss}" + (f"-{reweight}" if reweight not in (None, "none") else "")
    if row.get("stage"):
        label += f" + {row['stage']}"
    return label


def read_run(run_dir: Path, runs_dir: Path) -> dict:
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    row = {"run_dir": run_dir.relative_to(runs_dir).as_posix(), **flatten(cfg)}
    final_path = run_dir / "final.json"
    final = json.loads(final_path.read_text()) if final_path.exists() else {}
    status = final.get("status")
    row["status"] = status if status in ("done", "failed") else "incomplete"
    row["error"] = final.get("error")
    row["run_id"] = final.get("run_id")
    row["stage"] = final.get("stage")
    row["parent"] = final.get("parent")
    row["selection"] = (final.get("selection") or {}).get("mode", "last")
    row["warnings"] = json.dumps(final.get("warnings") or [])  # sentences, as a JSON list
    for key in (*METRICS, "grouping", "wall_time_s", "train_images"):
        row[key] = final.get(key)
    sep_path = run_dir / "separability.json"
    if row["status"] == "done" and sep_path.exists():
        sep = json.loads(sep_path.read_text())
        row.update(sep["summary"])
        for group, values in sep["groups"].items():
            row.update({f"{name}.{group}": value for name, value in values.items()})
    row["label"] = run_label(row)
    # The split's own ratio: list-file data sets (ImageNet-LT) ignore data.ratio and keep their list's.
    split_path = run_dir / "split.json"
    ratio = (
        json.loads(split_path.read_text()).get("ratio")
        if split_path.exists()
        else row.get("data.ratio")
    )
    row["split_ratio"] = ratio
    row["dataset"] = (
        f"{row.get('data.name')}@{ratio:g}" if ratio is not None else str(row.get("data.name"))
    )
    return row


def collect(runs_dir: str | Path) -> pd.DataFrame:
    """One row per run directory (any depth below ``runs_dir``), sorted by label, data set, seed."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise UserError(f"runs folder {runs_dir} does not exist; pass the --runs-dir of a sweep")
    rows = [
        read_run(path.parent, runs_dir)
        for path in sorted(runs_dir.rglob("config.yaml"))
        if ".submitit" not in path.parts
    ]
    if not rows:
        raise UserError(
            f"no runs under {runs_dir} (no */config.yaml); run lt-bench train or sweep first"
        )
    frame = pd.DataFrame(rows)
    return frame.sort_values(["dataset", "label", "seed", "run_dir"], kind="stable").reset_index(
        drop=True
    )
