import json

import numpy as np
import pandas as pd
import pytest
import torch

from lt_bench.cli import main
from lt_bench.config import load_config, run_id
from lt_bench.engine import NonFiniteLoss, train
from lt_bench.errors import UserError
from lt_bench.rundir import LOCK, RunDir, source_run
from lt_bench.rundir import run_path as run_directory
from lt_bench.setup import lr_lambda
from tests.conftest import tiny

TINY = tiny(
    "data.ratio=10",
    "data.eval_batch_size=32",
    "optim.epochs=2",
    "optim.lr=0.05",
    "optim.warmup_epochs=1",
    "optim.milestones=[1]",
    train=40,
    test=10,
)


# Every run directory, training run or second stage, holds exactly these files (and, hidden, the
# lock file a training run holds while it runs).
RUN_FILES = [
    "checkpoint.pt",
    "config.yaml",
    "features.npz",
    "final.json",
    "metrics.jsonl",
    "per_class.csv",
    "separability.json",
    "split.json",
]


class Crash(Exception):
    """Stands in for a killed process after an epoch's checkpoint."""


def crash_after(epochs):
    def hook(epoch, row):
        if epoch == epochs:
            raise Crash

    return hook


def tiny(tmp_path, *overrides):
    return load_config(None, [*TINY, f"out_dir={tmp_path}", *overrides])


def test_two_epoch_run_writes_the_whole_run_directory(tmp_path):
    cfg = tiny(tmp_path, "method.name=sar")
    final = train(cfg)
    run_dir = run_directory(cfg)
    assert run_dir.name == f"synthetic_sar_s0_{run_id(cfg)}"
    assert sorted(p.name for p in run_dir.iterdir() if p.name != LOCK) == RUN_FILES
    assert (run_dir / LOCK).exists() and not RunDir(run_dir).is_locked()  # released at the end
    assert load_config(run_dir / "config.yaml").method.name == "sar"
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {
        "lr",
        "loss/base",
        "sar/anchor_ce",
        "sar/pull",
        "loss/total",
        "train/acc",
        "images_per_s",
        "sar/gate_rate",
    } <= set(rows[0])
    assert rows[0]["loss/total"] == pytest.approx(
        rows[0]["loss/base"] + rows[0]["sar/anchor_ce"] + rows[0]["sar/pull"]
    )
    saved = json.loads((run_dir / "final.json").read_text())
    assert saved == json.loads(json.dumps(final))
    assert (
        saved["status"] == "done"
        and saved["test_images"] == 40
        and saved["train_images"] == 40 + 18 + 8 + 4 - 2  # the head gives 2 validation images
    )
    assert {"top1", "many", "medium", "few", "group_sizes", "wall_time_s", "versions"} <= set(saved)
    assert saved["versions"]["torch"] == torch.__version__
    table = pd.read_csv(run_dir / "per_class.csv")
    assert list(table.columns[:6]) == ["class", "name", "n_train", "n_test", "group", "accuracy"]
    assert {
        "intra_inter_ratio",
        "cdnv",
        "knn_accuracy",
        "ncm_accuracy",
        "centroid_distance",
    } <= set(table.columns)
    sep = json.loads((run_dir / "separability.json").read_text())
    assert {"nc1", "nc2_etf_distance", "nc3_self_duality", "silhouette", "knn_accuracy"} <= set(
        sep["summary"]
    )
    assert sep["settings"]["knn_memory"] == "train" and set(sep["groups"]) == {
        "many",
        "medium",
        "few",
    }
    assert table.n_train.tolist() == [38, 18, 8, 4] and table.n_test.tolist() == [10] * 4
    assert saved["top1"] == pytest.approx((table.accuracy * table.n_test).sum() / 40)
    arrays = np.load(run_dir / "features.npz")
    assert arrays["features"].dtype == np.float16 and arrays["features"].shape == (40, 128)
    assert arrays["logits"].shape == (40, 4) and arrays["classifier_weight"].shape == (4, 128)
    assert (arrays["logits"].argmax(1) == arrays["labels"]).mean() == pytest.approx(saved["top1"])
    assert arrays["confusion"].shape == (4, 4) and np.trace(arrays["confusion"]) == round(
        saved["top1"] * 40
    )
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and "ema_anchors" in state["method"]


def test_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path):
    overrides = ["method.name=center", "optim.epochs=3", "data.sampler=square_root"]
    whole = train(tiny(tmp_path / "a", *overrides))

    cfg = tiny(tmp_path / "b", *overrides)
    with pytest.raises(Crash):
        train(cfg, on_epoch_end=crash_after(1))
    with pytest.raises(UserError, match="pass --resume"):
        train(cfg)
    resumed = train(cfg, resume=True)
    for key in ("top1", "many", "medium", "few", "balanced"):
        assert resumed[key] == whole[key]

    def losses(root):
        rows = [
            json.loads(line)
            for line in next(root.iterdir()).joinpath("metrics.jsonl").read_text().splitlines()
        ]
        return [(r["epoch"], r["loss/total"], r["train/acc"]) for r in rows]

    assert losses(tmp_path / "b") == losses(tmp_path / "a")
    a = np.load(next((tmp_path / "a").iterdir()) / "features.npz")
    b = np.load(next((tmp_path / "b").iterdir()) / "features.npz")
    assert np.array_equal(a["logits"], b["logits"]) and np.array_equal(
        a["centroids"], b["centroids"]
    )


def test_resume_with_a_different_config_is_refused(tmp_path):
    cfg = tiny(tmp_path, "name=run")
    with pytest.raises(Crash):
        train(cfg, on_epoch_end=crash_after(1))
    with pytest.raises(UserError, match=r"config differs \(optim.lr: 0.05 -> 0.1\)"):
        train(tiny(tmp_path, "name=run", "optim.lr=0.1"), resume=True)


def test_same_seed_same_numbers_on_cpu(tmp_path):
    a = train(tiny(tmp_path / "a", "method.name=prototype"))
    b = train(tiny(tmp_path / "b", "method.name=prototype"))
    c = train(tiny(tmp_path / "c", "method.name=prototype", "seed=1"))
    assert a["top1"] == b["top1"] and a["few"] == b["few"]
    fa, fc = (np.load(next((tmp_path / d).iterdir()) / "features.npz")["logits"] for d in "ac")
    assert not np.array_equal(fa, fc) and c["status"] == "done"


def test_non_finite_loss_names_the_term_and_marks_the_run_failed(tmp_path):
    cfg = tiny(tmp_path, "method.name=center", "method.weight=1e38", "optim.warmup_epochs=0")
    with pytest.raises(
        NonFiniteLoss,
        match=r"loss term '(center/pull|loss/base)' became non-finite at epoch 1, step \d+",
    ):
        train(cfg)
    final = json.loads((run_directory(cfg) / "final.json").read_text())
    assert final["status"] == "failed" and "non-finite" in final["error"]


def test_lr_schedule_warmup_multistep_and_cosine():
    cfg = load_config(None, ["optim.epochs=200", "optim.warmup_epochs=5"])
    factor = lr_lambda(cfg.optim, steps_per_epoch=10)
    assert factor(0) == pytest.approx(1 / 50) and factor(49) == pytest.approx(1.0)
    assert factor(50) == 1.0 and factor(1599) == 1.0
    assert factor(1600) == pytest.approx(0.01) and factor(1800) == pytest.approx(0.0001)
    cosine = lr_lambda(
        load_config(
            None, ["optim.schedule=cosine", "optim.epochs=10", "optim.warmup_epochs=0"]
        ).optim,
        10,
    )
    assert (
        cosine(0) == 1.0 and cosine(50) == pytest.approx(0.5) and cosine(100) == pytest.approx(0.0)
    )


def test_mnist_lt_short_run_learns(tmp_path):
    """The embedded default learns: many-shot accuracy above 90% after a few epochs on CPU."""
    cfg = load_config(
        "experiments/mnist_lt.yaml",
        [f"out_dir={tmp_path}", "optim.epochs=6", "train.progress=false"],
    )
    final = train(cfg)
    assert final["many"] > 0.9 and final["grouping"] == "absolute"
    assert final["group_sizes"] == {"many": 3, "medium": 3, "few": 4}


def test_train_cli_and_its_errors(tmp_path, capsys):
    args = [
        "train",
        "experiments/mnist_lt.yaml",
        f"out_dir={tmp_path}",
        "optim.epochs=1",
        "train.progress=false",
    ]
    # Training through the command line (the tiny config: mnist_lt trains in
    # test_mnist_lt_short_run_learns); the errors below are refused before any data is read.
    assert main(["train", "-", *TINY, f"out_dir={tmp_path}", "optim.epochs=1"]) == 0
    assert "top-1" in capsys.readouterr().out
    for extra, message in [
        (["optim.lrr=0.1"], "unknown config key 'optim.lrr'; did you mean optim.lr?"),
        (["optim.epochs=ten"], "bad value for config key 'optim.epochs'"),
        (["method.name=sarr"], "unknown method 'sarr'; did you mean sar"),
        (
            ["method.name=sar", "method.trade_of=0.2"],
            "method sar has no option 'trade_of'; did you mean trade_off?",
        ),
        (["model.name=resnet33_cifar"], "timm has no model 'resnet33_cifar'"),
        (["data.sampler=balanced"], "data.sampler=balanced is out of range; allowed: one of instance"),
    ]:
        assert main([*args, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (extra, err)


def test_malformed_yaml(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  name: [mnist_lt\n")
    assert main(["train", str(bad)]) == 2
    assert "is not valid YAML at line" in capsys.readouterr().err


def test_image_folder_path_trains_through_timm_transforms(tmp_path, fake_imagenet_lt):
    """ImageNet-LT list files -> timm transforms -> DataLoader: the standard (non in-memory) path."""
    cfg = load_config(
        "experiments/imagenet_lt.yaml",
        [
            f"data.root={fake_imagenet_lt}",
            "data.options={num_classes: 4, image_size: 32}",
            "data.num_workers=0",
            "data.batch_size=8",
            "model.name=small_cnn",
            "optim.epochs=1",
            "train.progress=false",
            f"out_dir={tmp_path}",
        ],
    )
    final = train(cfg)
    assert final["status"] == "done" and final["train_images"] == 15 and final["test_images"] == 12
    assert pd.read_csv(run_directory(cfg) / "per_class.csv").n_train.tolist() == [8, 4, 2, 1]


def test_a_finished_run_is_not_trained_again(tmp_path):
    cfg = tiny(tmp_path)
    first = train(cfg)
    stamp = (run_directory(cfg) / "checkpoint.pt").stat().st_mtime_ns
    assert train(cfg) == json.loads(json.dumps(first))
    assert (run_directory(cfg) / "checkpoint.pt").stat().st_mtime_ns == stamp


def test_best_on_validation_selection_never_uses_the_test_set(tmp_path):
    cfg = tiny(tmp_path, "optim.epochs=3", "train.select=best_val", "method.name=prototype")
    final = train(cfg)
    run_dir = run_directory(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    curve = [r["val/balanced"] for r in rows]
    best_epoch = curve.index(max(curve)) + 1
    selection = final["selection"]
    assert selection["mode"] == "best_val" and selection["epoch"] == best_epoch
    assert "per class, drawn with the split seed" in selection["val"]
    assert "never the test set" in selection["val"]
    assert torch.load(run_dir / "best.pt", weights_only=True)["epoch"] == best_epoch
    assert all("test/top1" not in r for r in rows)
    # eval from the checkpoint reports the selected weights, not the last epoch's.
    (run_dir / "features.npz").unlink()
    assert main(["eval", str(run_dir)]) == 0
    assert json.loads((run_dir / "final.json").read_text())["top1"] == final["top1"]
    from lt_bench.report.collect import collect

    assert collect(tmp_path).selection.tolist() == ["best_val"]


def test_train_again_says_already_done_and_force_retrains_keeping_the_old_run(tmp_path, capsys):
    args = ["train", "-", *TINY, "optim.epochs=1", f"out_dir={tmp_path}"]
    assert main(args) == 0
    run_dir = run_directory(load_config(None, args[2:]))
    first = json.loads((run_dir / "final.json").read_text())
    stamp = (run_dir / "final.json").stat().st_mtime_ns
    assert capsys.readouterr().out.startswith(f"{run_dir}: top-1 ")

    assert main(args) == 0  # done already: the saved result, nothing trained
    out = capsys.readouterr().out
    assert out == f"already done: {run_dir} (top-1 {100 * first['top1']:.1f}%); --force retrains\n"
    assert (run_dir / "final.json").stat().st_mtime_ns == stamp
    # Its saved config.yaml (defaults written out) names the same run; a changed one does not.
    saved = run_dir / "config.yaml"
    assert main(["train", str(saved)]) == 0
    assert capsys.readouterr().out.startswith(f"already done: {run_dir} (top-1 ")
    assert source_run(saved, load_config(saved)) == run_dir
    assert source_run(saved, load_config(saved, ["optim.lr=0.2"])) is None
    assert source_run(saved, load_config(saved, [f"out_dir={tmp_path / 'other'}"])) is None

    child = run_dir.with_name(f"{run_dir.name}__crt")  # a second stage goes aside with its parent
    child.mkdir()
    assert main([*args, "--force"]) == 0
    captured = capsys.readouterr()
    aside = run_dir.with_name(f"{run_dir.name}.stale-1")
    assert f"moved the old run {run_dir} aside to {aside}" in captured.err
    assert captured.out.startswith(f"{run_dir}: top-1 ")
    assert json.loads((aside / "final.json").read_text()) == first  # the old run, kept whole
    assert (aside / "final.json").stat().st_mtime_ns == stamp
    assert child.with_name(f"{child.name}.stale-1").is_dir() and not child.exists()
    second = json.loads((run_dir / "final.json").read_text())
    assert second["status"] == "done" and second["wall_time_s"] != first["wall_time_s"]
    assert sorted(p.name for p in run_dir.iterdir() if not p.name.startswith(".")) == RUN_FILES

    assert main([*args, "--force", "--resume"]) == 2
    assert "pass one of them" in capsys.readouterr().err
    assert run_dir.is_dir() and not run_dir.with_name(f"{run_dir.name}.stale-2").exists()
