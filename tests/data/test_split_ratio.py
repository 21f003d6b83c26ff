"""Requested vs achieved imbalance ratio, `lt-bench split` data options, and data.split_file."""

import json

import numpy as np
import pytest

from lt_bench.cli import main
from lt_bench.config import load_config
from lt_bench.data import build_dataset, long_tail_split
from lt_bench.engine import train
from lt_bench.errors import UserError
from lt_bench.report import plots
from lt_bench.report.collect import collect
from lt_bench.rundir import run_path
from tests.conftest import tiny

HEAD_500 = dict(num_classes=4, image_size=4, train_per_class=500, test_per_class=1)
HEAD_500_ARGS = [f"data.options.{k}={v}" for k, v in HEAD_500.items()]


def synthetic(**options):
    return build_dataset("synthetic", **{**HEAD_500, **options})


def test_ratio_300_on_a_500_head_achieves_500_and_warns():
    split = long_tail_split(synthetic(), 300, "exp", val_per_class=0)
    assert split.manifest["counts"] == [500, 74, 11, 1]
    assert split.manifest["ratio"] == 300  # requested: what reports label the run with
    assert split.manifest["achieved_ratio"] == 500
    assert len(split.warnings) == 1
    assert "requested ratio 300 but the drawn counts give 500" in split.warnings[0]
    # every ratio above 250 up to 500 gives a 1-image tail, so ratio 500; only 500 says so truthfully
    for ratio, warned in ((251, 1), (500, 0)):
        same = long_tail_split(synthetic(), ratio, "exp", val_per_class=0)
        assert same.manifest["achieved_ratio"] == 500 and len(same.warnings) == warned
    exact = long_tail_split(synthetic(), 100, "exp", val_per_class=0)
    assert exact.manifest["counts"] == [500, 107, 23, 5]
    assert exact.manifest["achieved_ratio"] == 100 and exact.warnings == []


def test_split_command_takes_data_options_and_prints_the_achieved_ratio(
    tmp_path, capsys, monkeypatch
):
    titles = []
    monkeypatch.setattr(
        plots, "plot_class_distribution", lambda counts, groups, path, title: titles.append(title)
    )
    out = tmp_path / "split"
    argv = ["split", "synthetic", "--ratio", "300", "--val-per-class", "0", "--out", str(out)]
    assert main([*argv[:2], *HEAD_500_ARGS, *argv[2:]]) == 0  # options before the flags
    assert "warning: synthetic: requested ratio 300 but the drawn counts give 500" in (
        capsys.readouterr().out
    )
    saved = json.loads((out / "split.json").read_text())
    assert (saved["ratio"], saved["achieved_ratio"], saved["counts"]) == (
        300,
        500,
        [500, 74, 11, 1],
    )
    assert len(saved["warnings"]) == 1
    assert titles == ["synthetic, ratio 300 asked, 500 drawn, exp"]
    assert main([*argv, *HEAD_500_ARGS]) == 0  # and after them
    assert "requested ratio 300" in capsys.readouterr().out
    assert main([*argv, "root=somewhere"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "data.options.KEY=VALUE" in err


def test_split_file_draws_the_same_train_and_validation_indices(tmp_path):
    drawn = long_tail_split(synthetic(), 300, "exp", seed=3, val_per_class=5, subset="default_rng")
    path = tmp_path / "split.json"
    path.write_text(json.dumps(drawn.manifest))
    again = long_tail_split(synthetic(), split_file=path)  # other ratio, seed, subset, val
    assert again.lines == drawn.lines
    assert np.array_equal(again.train.labels, drawn.train.labels)
    assert again.manifest["sha256"] == drawn.manifest["sha256"]
    assert again.manifest["validation"]["indices"] == drawn.manifest["validation"]["indices"]
    assert np.array_equal(again.validation.labels, drawn.validation.labels)
    assert again.manifest["split_file"] == str(path)

    with pytest.raises(UserError, match="has 4 classes but synthetic here has 5"):
        long_tail_split(synthetic(num_classes=5), split_file=path)
    path.write_text(json.dumps({**drawn.manifest, "dataset": "cifar10_lt"}))
    with pytest.raises(UserError, match="is a split of cifar10_lt, not of synthetic"):
        long_tail_split(synthetic(), split_file=path)
    path.write_text(json.dumps({**drawn.manifest, "sha256": "0" * 64}))
    with pytest.raises(UserError, match="train images are not the ones drawn here"):
        long_tail_split(synthetic(), split_file=path)


def test_train_on_a_split_file_reproduces_it_and_warns_in_final_json(tmp_path):
    options = "data.options={num_classes: 4, image_size: 8, train_per_class: 12, test_per_class: 2}"
    out = tmp_path / "split"
    assert (
        main(
            [
                "split",
                "synthetic",
                "--ratio",
                "10",
                "--val-per-class",
                "2",
                "--out",
                str(out),
                "data.options.num_classes=4",
                "data.options.image_size=8",
                "data.options.train_per_class=12",
                "data.options.test_per_class=2",
            ]
        )
        == 0
    )
    recorded = json.loads((out / "split.json").read_text())
    assert (recorded["achieved_ratio"], recorded["counts"][-1]) == (12, 1)
    cfg = load_config(
        None,
        [
            *tiny("optim.epochs=1", options),
            f"out_dir={tmp_path / 'runs'}",
            f"data.split_file={out / 'split.json'}",
        ],
    )
    final = train(cfg)
    assert any("requested ratio 10 but the drawn counts give 12" in w for w in final["warnings"])
    saved = json.loads((run_path(cfg) / "split.json").read_text())
    assert saved["sha256"] == recorded["sha256"]
    assert saved["validation"]["indices"] == recorded["validation"]["indices"]
    # the report labels it with the file's ratio, not data.ratio's default, and does not object
    row = collect(tmp_path / "runs").iloc[0]
    assert (row["dataset"], row["status"]) == ("synthetic@10", "done")

    other = load_config(
        None,
        [
            *tiny(options.replace("4,", "5,")),
            f"out_dir={tmp_path / 'b'}",
            f"data.split_file={out / 'split.json'}",
        ],
    )
    with pytest.raises(UserError, match="has 4 classes but synthetic here has 5"):
        train(other)
