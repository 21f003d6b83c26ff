import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from lt_bench.cli import main
from lt_bench.config import load_config
from lt_bench.engine import train
from lt_bench.errors import UserError
from lt_bench.report.collect import collect
from lt_bench.rundir import LOCK, run_path
from lt_bench.stages import retrain
from lt_bench.stages.tau_norm import tau_normalize
from tests.test_engine import RUN_FILES

PARENT = [
    "data.name=synthetic",
    "data.options={num_classes: 5, image_size: 12, train_per_class: 60, test_per_class: 12}",
    "data.ratio=10",
    "data.batch_size=16",
    "model.name=small_cnn",
    "method.name=sar",
    "optim.epochs=3",
    "optim.lr=0.05",
    "optim.warmup_epochs=0",
    "train.progress=false",
]


def train_parent(out_dir) -> Path:
    """A tiny finished SAR run under ``out_dir``, for second stages to start from."""
    cfg = load_config(None, [*PARENT, f"out_dir={out_dir}"])
    train(cfg)
    return run_path(cfg)


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    return train_parent(tmp_path_factory.mktemp("runs"))


def backbone_state(path):
    state = torch.load(path, weights_only=True)["network"]
    return {k: v for k, v in state.items() if k.startswith("backbone.")}


@pytest.mark.parametrize("stage", ["crt", "lws", "tau_norm", "ncm"])
def test_each_stage_writes_a_child_run_and_keeps_the_backbone_bit_identical(parent, stage):
    final = retrain(parent, stage, ["stage.epochs=2"] if stage in ("crt", "lws") else [])
    child = parent.parent / f"{parent.name}__{stage}"
    assert sorted(p.name for p in child.iterdir() if p.name != LOCK) == RUN_FILES
    assert final["status"] == "done" and final["parent"] == parent.name and final["stage"]
    before, after = (
        backbone_state(parent / "checkpoint.pt"),
        backbone_state(child / "checkpoint.pt"),
    )
    # cRT and LWS run the frozen backbone in train mode, as the official code (stage.bn_mode=train):
    # BatchNorm's running statistics move towards the class-balanced batches'; every weight stays.
    statistics = ("running_mean", "running_var", "num_batches_tracked")
    kept = [k for k in before if stage in ("tau_norm", "ncm") or not k.endswith(statistics)]
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in kept)
    assert json.loads((child / "split.json").read_text()) == json.loads(
        (parent / "split.json").read_text()
    )
    assert load_config(child / "config.yaml").stage.name == stage


def test_crt_draws_class_balanced_batches(parent):
    retrain(parent, "crt", ["name=crt_default"])  # 10 epochs by default
    rows = [
        json.loads(line)
        for line in (parent.parent / "crt_default" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 10
    drawn = np.sum([r["sampled_class_counts"] for r in rows], axis=0)
    train_counts = json.loads((parent / "split.json").read_text())["counts"]
    # 60 -> 6 images; the head, used whole, gives its 20 validation images out of its training
    # set. Instance sampling would draw class 0 about seven times as often as class 4.
    assert train_counts == [40, 33, 18, 10, 6]
    # The official class-aware sampler: int(images / 512) steps of 512 an epoch (at least one),
    # every class visited (4 images) equally often up to one visit over the 10 epochs.
    steps = max(1, sum(train_counts) // 512)
    assert drawn.max() - drawn.min() <= 4 and drawn.sum() == 10 * steps * 512


def test_tau_zero_is_the_classifier_and_tau_one_equalises_norms():
    linear = nn.Linear(4, 3)
    assert torch.equal(tau_normalize(linear, 0.0).weight, linear.weight)
    assert tau_normalize(linear, 0.0).bias is None  # the official tau_norm.py uses no bias
    assert torch.equal(tau_normalize(linear, 0.0, bias=True).bias, linear.bias)
    assert torch.allclose(tau_normalize(linear, 1.0).weight.norm(dim=1), torch.ones(3))


def test_tau_norm_child_with_tau_zero_predicts_like_the_parent(parent):
    # With the bias kept (a departure: the official tau-norm drops it), tau 0 is the parent.
    final = retrain(parent, "tau_norm", ["stage.taus=[0.0]", "stage.bias=true", "name=tau_zero"])
    assert final["tau"] == 0.0
    mine = np.load(parent.parent / "tau_zero" / "features.npz")["logits"]
    theirs = np.load(parent / "features.npz")["logits"]
    assert np.array_equal(mine.argmax(1), theirs.argmax(1)) and np.allclose(mine, theirs, atol=1e-5)


def test_tau_is_chosen_on_the_runs_validation_set_never_the_test_set(parent):
    final = retrain(parent, "tau_norm")
    split = json.loads((parent / "split.json").read_text())
    assert "never the test set" in final["tau_selected_on"]
    assert "per class, drawn with the split seed" in final["tau_selected_on"]
    assert len(split["validation"]["counts"]) == len(split["counts"])  # every class
    curve = final["tau_curve"]
    assert [p["tau"] for p in curve][:3] == [0.0, 0.1, 0.2] and len(curve) == 21
    assert final["tau"] == max(curve, key=lambda p: p["val_balanced"])["tau"]


def test_child_runs_appear_in_the_report_as_method_plus_stage(parent):
    retrain(parent, "ncm")
    runs = collect(parent.parent)
    assert {"sar", "sar + cRT", "sar + NCM"} <= set(runs.label)


def test_retrain_cli_and_errors(parent, capsys):
    assert main(["retrain", str(parent), "--stage", "lws", "stage.epochs=1", "name=lws_cli"]) == 0
    assert "+ LWS: top-1" in capsys.readouterr().out
    assert main(["retrain", str(parent), "--stage", "crt2"]) == 2
    assert "unknown stage 'crt2'" in capsys.readouterr().err
    assert main(["retrain", str(parent), "--stage", "crt", "stage.epoch=3"]) == 2
    assert "stage crt has no option 'epoch'" in capsys.readouterr().err
    with pytest.raises(UserError, match="not a finished run"):
        retrain(parent.parent / "nowhere", "crt")


def test_a_child_of_a_short_mnist_lt_run_has_the_full_schema_and_a_report_row(tmp_path):
    cfg = load_config(
        "experiments/mnist_lt.yaml",
        [f"out_dir={tmp_path}", "optim.epochs=1", "train.progress=false"],
    )
    train(cfg)
    parent = run_path(cfg)
    final = retrain(parent, "crt", ["stage.epochs=1"])
    child = parent.parent / f"{parent.name}__crt"
    assert sorted(p.name for p in child.iterdir() if p.name != LOCK) == RUN_FILES and final["stage"] == "cRT"
    sep = json.loads((child / "separability.json").read_text())
    assert {"nc1", "knn_accuracy"} <= set(sep["summary"]) and final["test_images"] == 1000
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "report"), "--no-figures"]) == 0
    rows = (tmp_path / "report" / "main_table.md").read_text()
    assert "| none |" in rows and "| none + cRT |" in rows
