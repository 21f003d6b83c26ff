"""What classification needs of SAR beyond the segmentation rules: scaled cosine logits (so the
gate can open under LDAM), seeds that follow the run, fp32 terms under autocast, and warnings
whenever the pull does not act."""

import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from lt_bench.cli import main
from lt_bench.config import load_config
from lt_bench.engine import method_terms, train
from lt_bench.methods.sar import SAR
from lt_bench.report import write_report
from lt_bench.setup import build
from tests.conftest import tiny

TINY = tiny("data.ratio=3", "method.name=sar", "optim.epochs=2", "optim.lr=0.05", train=24, test=6)


def test_sar_with_ldam_opens_its_gate_on_mnist_lt(tmp_path):
    """Raw cosines cap an anchor's probability at e / (e + 9/e) = 0.45 for 10 classes, below
    update_conf 0.8: the gate could never open. Scaled by s = 30 it opens in the first epoch."""
    cfg = load_config(
        "experiments/mnist_lt.yaml",
        [
            "method.name=sar",
            "loss.name=ldam",
            "optim.epochs=2",
            f"out_dir={tmp_path}",
            "name=run",
            "train.progress=false",
        ],
    )
    final = train(cfg)
    assert final["classifier"] == {"kind": "cosine", "scale": 30.0}
    stats = final["method_stats"]
    assert stats["first_gate_epoch"] == 1 and stats["gate_rate"] > 0.5
    assert not any("never opened" in w for w in final["warnings"])
    # The saved logits are the scaled ones every consumer uses (ECE, post-hoc, stages).
    with np.load(tmp_path / "run" / "features.npz") as arrays:
        logits = arrays["logits"]
    assert np.abs(logits).max() > 5.0 and np.abs(logits).max() <= 30.0 + 1e-4


def test_a_gate_that_never_opens_is_a_warning_everywhere(tmp_path, capsys):
    runs = tmp_path / "runs"
    code = main(
        ["train", "-", *TINY, "method.update_conf=0.999999", f"out_dir={runs}", "name=closed"]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "lt-bench: warning: SAR's gate never opened" in err
    final = json.loads((runs / "closed" / "final.json").read_text())
    assert (
        final["method_stats"]["gated_steps"] == 0
        and final["method_stats"]["first_gate_epoch"] is None
    )
    assert any("the pull was never applied" in w for w in final["warnings"])
    # The report marks the row and prints the sentence under the table.
    write_report(runs, tmp_path / "report", figures=False)
    table = (tmp_path / "report" / "main_table.md").read_text()
    assert "| sar † |" in table and "SAR's gate never opened" in table
    assert "SAR's gate never opened" in (tmp_path / "report" / "report.md").read_text()


def test_run_summary_numbers():
    sar = SAR(10, 8, [1] * 10, momentum=0.999)
    history = [
        {"epoch": 1, "sar/gate_steps": 0, "sar/steps": 25, "sar/anchor_acc": 0.9},
        {"epoch": 2, "sar/gate_steps": 1, "sar/steps": 25},
        {"epoch": 3, "sar/gate_steps": 305, "sar/steps": 350},
    ]
    stats, warnings = sar.run_summary(history)
    assert stats["first_gate_epoch"] == 2 and stats["gated_steps"] == 306
    assert stats["gate_rate"] == pytest.approx(306 / 400)
    assert stats["ema_first_copy_weight"] == pytest.approx(0.999**305)  # 0.737: the demo's case
    (ema,) = warnings
    assert "carry 74% of their first copy after 306 gated steps" in ema
    suggested = 0.01 ** (1 / 305)
    assert f"method.momentum={suggested:.4f}" in ema and suggested**305 == pytest.approx(0.01)

    rare = [{"epoch": 1, "sar/gate_steps": 3, "sar/steps": 100}]
    _, warnings = SAR(10, 8, [1] * 10, momentum=0.5).run_summary(rare)
    assert warnings == [
        "SAR's gate opened on only 3.0% of steps (3 of 100, first in epoch 1): the pull acted rarely"
    ]
    _, warnings = SAR(10, 8, [1] * 10, momentum=0.9).run_summary(
        [{"epoch": 1, "sar/gate_steps": 90, "sar/steps": 100}]
    )
    assert warnings == []  # 0.9^89: nothing left of the first copy, the gate open 90% of steps


@pytest.mark.parametrize("method", ["sar", "etf"])
def test_drawn_anchors_follow_the_run_seed(method):
    def anchors(*overrides):
        setup = build(load_config(None, [*TINY, f"method.name={method}", *overrides]))
        buffer = "random_anchors" if method == "sar" else "anchors"
        return getattr(setup.method, buffer), setup.method.info()["anchor_seed"]

    a0, s0 = anchors("seed=0")
    a1, s1 = anchors("seed=1")
    assert (s0, s1) == (0, 1) and not torch.equal(a0, a1)
    fixed0, fs0 = anchors("seed=0", "method.seed=7")
    fixed1, fs1 = anchors("seed=1", "method.seed=7")
    assert (fs0, fs1) == (7, 7) and torch.equal(fixed0, fixed1)  # an explicit method seed wins


def test_method_terms_are_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    sar = SAR(5, 16, [1] * 5, update_conf=0.01, filter_conf=0.99)
    classifier = nn.Linear(16, 5)
    features, targets = torch.randn(8, 16), torch.arange(8) % 5
    logits = classifier(features)
    sar.eval()  # no EMA update: both calls see the same state
    reference = method_terms(sar, features, logits, targets, classifier)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16_features = features.to(torch.bfloat16)
        inside = method_terms(sar, bf16_features, logits.to(torch.bfloat16), targets, classifier)
        unguarded = sar(bf16_features.float(), logits, targets, classifier)
    assert {value.dtype for value in inside.values()} == {torch.float32}
    # The anchors' pass through the classifier is fp32: bit-identical to no autocast at all,
    # while the same call without the guard runs the classifier in bf16 and differs.
    assert inside["sar/anchor_ce"].item() == reference["sar/anchor_ce"].item()
    assert unguarded["sar/anchor_ce"].item() != reference["sar/anchor_ce"].item()


def test_cosine_scale_settings(tmp_path, capsys):
    setup = build(load_config(None, [*TINY, "loss.name=ldam", "loss.scale=16"]))
    assert setup.network.classifier_info() == {"kind": "cosine", "scale": 16.0}
    setup = build(load_config(None, [*TINY, "model.classifier=cosine", "model.cosine_scale=10"]))
    assert setup.network.classifier_info() == {"kind": "cosine", "scale": 10.0}
    code = main(
        [
            "train",
            "-",
            *TINY,
            "loss.name=ldam",
            "model.cosine_scale=10",
            f"out_dir={tmp_path / 'r'}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "model.cosine_scale=10 disagrees with loss.scale=30" in err
    assert not (tmp_path / "r").exists()
