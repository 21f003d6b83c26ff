"""The figures of a study with second stages: a tau_norm child's metrics.jsonl holds its tau
curve (rows with epoch 0, no loss), an ncm child's is empty; neither has training epochs, so the
training curves show the parent only, and the report draws every figure."""

import pytest

from lt_bench.config import load_config
from lt_bench.engine import train
from lt_bench.report import plots, read_figure_inputs, write_report
from lt_bench.report.collect import collect
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


def test_the_report_draws_every_figure_over_second_stages(runs, tmp_path, monkeypatch):
    # t-SNE takes seconds a panel and reads only features (test_report.py draws it): stubbed here.
    monkeypatch.setattr(plots, "tsne_plot", lambda *args, **kwargs: ["tsne.png", "tsne.pdf"])
    written = write_report(runs, tmp_path / "out")["written"]
    stems = ("training_curves", "per_class_accuracy", "accuracy_vs_ratio", "class_mean_cosine")
    for stem in (*stems, "separability_by_group"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= set(written)
        assert (tmp_path / "out" / f"{stem}.pdf").read_bytes()[:4] == b"%PDF"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_no_training_epochs_no_training_curves(runs, tmp_path):
    done = collect(runs)
    assert plots.training_curves_plot(done, {}, tmp_path) == []  # nothing to show: no figure
    assert list(tmp_path.iterdir()) == []
