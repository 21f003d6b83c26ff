"""The figures of a study with second stages: a tau_norm child's metrics.jsonl holds its tau
curve (rows with epoch 0, no loss), an ncm child's is empty; neither has training epochs, so the
training curves show the parent only, and the report draws every figure that has something to show
(one ratio: no accuracy-against-ratio figure, and the report says so)."""

import pytest

from lt_bench.config import load_config
from lt_bench.engine import train
from lt_bench.report import read_figure_inputs, write_report
from lt_bench.report.collect import collect
from lt_bench.report.figures import NothingToShow, training_curves
from lt_bench.rundir import run_path
from lt_bench.stages import retrain
from tests.conftest import tiny


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny trained SAR run and its tau_norm and ncm children."""
    runs = tmp_path_factory.mktemp("runs")
    cfg = load_config(
        None, [*tiny("method.name=sar", "optim.epochs=2", "data.ratio=4"), f"out_dir={runs}"]
    )
    train(cfg)
    for stage in ("tau_norm", "ncm"):
        retrain(run_path(cfg), stage)
    return runs


def test_training_curves_read_training_epochs_only(runs):
    done = collect(runs)
    assert list(done.status) == ["done"] * 3
    parent = done.loc[done.stage.isna(), "run_dir"].item()
    drawn = read_figure_inputs(done, runs)
    assert list(drawn.histories) == [parent]
    assert list(drawn.histories[parent]["epoch"]) == [1, 2]
    assert len(drawn.per_class) == 3  # every run has per-class accuracy


def test_the_report_draws_every_figure_over_second_stages(runs, tmp_path):
    result = write_report(runs, tmp_path / "out")
    stems = ("training_curves", "per_class_accuracy", "class_mean_cosine", "performance_profile")
    for stem in (*stems, "separability_by_group"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= set(result["written"])
        assert (tmp_path / "out" / f"{stem}.pdf").read_bytes()[:4] == b"%PDF"
    for stem in ("accuracy_vs_ratio", "interval_estimates"):  # one data set at one ratio
        assert f"{stem}.png" not in result["written"]
        assert any(line.startswith(f"{stem} not drawn: ") for line in result["skipped"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_no_training_epochs_no_training_curves(runs):
    done = collect(runs)
    inputs = read_figure_inputs(done, runs)
    inputs.histories = {}
    with pytest.raises(NothingToShow, match="no done run has training epochs"):
        training_curves(done, inputs)  # nothing to show: no figure
