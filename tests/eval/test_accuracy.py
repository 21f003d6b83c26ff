import json

import numpy as np
import pytest

from lt_bench.cli import main
from lt_bench.data.splits import shot_groups
from lt_bench.eval.accuracy import (
    adjust_logits,
    calibration,
    confusion_matrix,
    group_accuracy,
    per_class_accuracy,
    summarize,
)


def test_group_accuracy_is_the_mean_of_per_class_accuracies():
    # Train counts: class 0 many, 1 medium, 2 and 3 few.
    counts = [150, 50, 10, 5]
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2, 3])
    preds = np.array([0, 0, 0, 1, 1, 0, 2, 0, 0])
    per_class = per_class_accuracy(preds, labels, 4)
    assert per_class.tolist() == [0.75, 0.5, 0.5, 0.0]
    groups = group_accuracy(per_class, shot_groups(counts))
    assert groups == {
        "many": 0.75,
        "medium": 0.5,
        "few": 0.25,
    }  # few: (0.5 + 0) / 2, not 1/3 pooled
    logits = np.eye(4)[preds]
    metrics, _, _ = summarize(logits, labels, counts)
    assert metrics["top1"] == pytest.approx(5 / 9) and metrics["balanced"] == pytest.approx(
        1.75 / 4
    )
    assert metrics["top5"] == 1.0 and metrics["grouping"] == "absolute"


def test_an_empty_shot_group_stays_empty_nan_in_metrics_and_null_in_json(tmp_path):
    from lt_bench.data.splits import long_tail_counts
    from lt_bench.eval.evaluate import evaluate_and_write

    counts = long_tail_counts(10, 5000, 100)  # CIFAR-10-LT: no class has < 20 training images
    labels = np.repeat(np.arange(10), 3)
    logits = np.eye(10)[labels]
    metrics, _, groups = summarize(logits, labels, counts)
    assert metrics["grouping"] == "absolute" and len(groups["few"]) == 0
    assert metrics["group_sizes"] == {"many": 8, "medium": 2, "few": 0}
    assert metrics["many"] == metrics["medium"] == 1.0 and np.isnan(metrics["few"])
    # Terciles only when asked for, and named as such.
    metrics, _, _ = summarize(logits, labels, counts, "terciles")
    assert metrics["grouping"] == "terciles" and metrics["few"] == 1.0
    assert metrics["group_sizes"] == {"many": 4, "medium": 3, "few": 3}
    arrays = {
        "labels": labels,
        "logits": logits,
        "train_counts": np.asarray(counts),
        "features": np.random.default_rng(0).normal(size=(30, 4)) + logits[:, :4],
    }
    written = evaluate_and_write(tmp_path, arrays, [], write_features=False)
    assert written["few"] is None and written["group_sizes"]["few"] == 0  # null, never filled
    separability = json.loads((tmp_path / "separability.json").read_text())
    assert separability["settings"]["grouping"] == "absolute"
    assert all(value is None for value in separability["groups"]["few"].values())


def test_ece_hand_computed():
    # Two bins get used: confidences 0.9 (correct, wrong) and 0.6 (correct).
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6]])
    logits = np.log(p)
    labels = np.array([0, 1, 1])
    ece, reliability = calibration(logits, labels, bins=15)
    # bin of 0.9: accuracy 0.5, confidence 0.9 -> |0.4| x 2/3 ; bin of 0.6: |1 - 0.6| x 1/3
    assert ece == pytest.approx(0.4 * 2 / 3 + 0.4 / 3)
    assert sum(reliability["count"]) == 3 and len(reliability["lower"]) == 15
    used = [i for i, n in enumerate(reliability["count"]) if n]
    assert [reliability["accuracy"][i] for i in used] == [1.0, 0.5]


def test_confusion_matrix_and_posthoc_adjustment():
    cm = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    logits = np.array([[1.0, 0.9]])
    counts = [90, 10]
    assert (
        adjust_logits(logits, counts, 1.0).argmax() == 1
    )  # the tail class wins once the prior is removed
    assert np.allclose(adjust_logits(logits, counts, 0.0), logits)


def test_eval_cli_recomputes_from_features_and_from_the_checkpoint(tmp_path, capsys):
    from lt_bench.engine import train
    from lt_bench.rundir import run_path as run_directory
    from tests.test_engine import tiny

    cfg = tiny(tmp_path, "method.name=prototype")
    trained = train(cfg)
    run_dir = run_directory(cfg)
    before = json.loads((run_dir / "separability.json").read_text())
    (run_dir / "separability.json").unlink()
    assert main(["eval", str(run_dir), "--posthoc-tau", "1"]) == 0
    after = json.loads((run_dir / "separability.json").read_text())
    assert after["summary"]["nc1"] == pytest.approx(
        before["summary"]["nc1"], rel=1e-3
    )  # float16 features
    assert after["settings"]["knn_memory"] == "test, leave-one-out"
    final = json.loads((run_dir / "final.json").read_text())
    assert final["top1"] == trained["top1"] and final["posthoc"]["tau"] == 1
    # Without features.npz the checkpoint is run again; with --train-features the train split too.
    (run_dir / "features.npz").unlink()
    assert main(["eval", str(run_dir), "--train-features"]) == 0
    again = json.loads((run_dir / "separability.json").read_text())
    assert again["summary"]["nc1"] == pytest.approx(before["summary"]["nc1"], rel=1e-5)
    assert again["settings"]["knn_memory"] == "train" and (run_dir / "features.npz").exists()
    assert "top-1" in capsys.readouterr().out
    assert main(["eval", str(tmp_path / "nowhere")]) == 2
    assert "is not a run directory" in capsys.readouterr().err
