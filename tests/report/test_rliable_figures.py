"""The rliable figures draw the numbers they claim: performance profiles equal fractions counted by
hand, the plotted interval endpoints are compare.py's (the comparison table's), the mean and its
interval follow the IQM's normalisation and resampling, and with too few runs no interval is drawn
(the figure notes say why)."""

import math

import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer

from lt_bench.report import compare, draw_figures, estimates, read_figure_inputs
from lt_bench.report.collect import collect
from lt_bench.report.figures import (
    FigureContext,
    interval_estimates,
    performance_profile,
    probability_of_improvement,
)
from tests.report.fixtures import fabricate_study


def test_a_performance_profile_is_the_fraction_of_runs_above_tau():
    scores = np.array([0.6, 0.7, 0.8])
    taus = [0.5, 0.6, 0.65, 0.8, 0.9]
    assert estimates.performance_profile(scores, taus).tolist() == [1, 2 / 3, 2 / 3, 0, 0]
    matrix = np.array([[50.0, 60.0], [70.0, 80.0], [90.0, 55.0]])  # 3 runs x 2 tasks: pooled
    assert estimates.performance_profile(matrix, [52, 65, 85]).tolist() == [5 / 6, 3 / 6, 1 / 6]


def test_a_profile_band_holds_the_profile_and_collapses_without_spread():
    rng = np.random.default_rng(0)
    matrix = np.array([[50.0, 60.0], [70.0, 80.0], [90.0, 55.0]])
    taus = np.linspace(40, 95, 12)
    low, high = estimates.profile_band(matrix, taus, 2000, rng)
    profile = estimates.performance_profile(matrix, taus)
    assert np.all(low <= profile) and np.all(profile <= high) and np.any(low < high)
    flat = np.array([[60.0, 70.0]] * 3)  # each task's runs equal: every resample is the same
    low, high = estimates.profile_band(flat, taus, 200, rng)
    assert np.array_equal(low, high) and np.array_equal(
        low, estimates.performance_profile(flat, taus)
    )


def test_the_mean_interval_resamples_runs_within_tasks():
    rng = np.random.default_rng(0)
    flat = np.array([[0.2, 0.6]] * 3)
    assert estimates.stratified_bootstrap_mean(flat, 100, rng) == pytest.approx((0.4, 0.4))
    scores = np.array([[0.0, 1.0], [0.5, 1.0], [1.0, 1.0]])
    low, high = estimates.stratified_bootstrap_mean(scores, 20_000, rng)
    # a resample's mean is (m + 1) / 2, m the mean of 3 draws from {0, .5, 1}: m = 0 and m = 1
    # each have probability 1/27 > 2.5%, so the 2.5% and 97.5% points are m = 0 and m = 1
    assert (low, high) == pytest.approx((0.5, 1.0))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """4 arms x 3 seeds x 2 ratios: enough tasks and runs for intervals."""
    runs = fabricate_study(tmp_path_factory.mktemp("rliable") / "runs", arms=4, features_rows=0)
    done = collect(runs)
    return done[done.status == "done"], runs


def plotted(ax) -> dict[str, tuple[float, float, float]]:
    """Per row (its series' label): the plotted point and the interval's ends (NaN: none)."""
    found = {}
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            line, _, (bars,) = container.lines
            ((low, _), (high, _)) = bars.get_segments()[0]
            found[container.get_label()] = (line.get_xdata()[0], low, high)
    for line in ax.get_lines():
        if not line.get_label().startswith("_") and line.get_label() not in found:
            found[line.get_label()] = (line.get_xdata()[0], math.nan, math.nan)
    return found


def test_the_plotted_iqm_intervals_are_the_comparison_tables(study):
    done, _ = study
    fig = interval_estimates(done)
    mean_ax, iqm_ax = fig.axes[:2]
    table = compare.aggregate_iqm(done).set_index("row")
    shown = plotted(iqm_ax)
    assert set(shown) == set(table.index) and len(shown) == 4
    for row, (point, low, high) in shown.items():
        assert (point, low, high) == pytest.approx(
            tuple(table.loc[row, ["iqm", "iqm_low", "iqm_high"]]), abs=1e-12
        )
        assert low < point < high or low <= point <= high
    # the mean: normalised per task by min-max over the row means, by hand
    means = done.groupby(["dataset", "label"]).top1.mean()
    worst, best = means.groupby(level=0).min(), means.groupby(level=0).max()
    normalised = (done.top1 - done.dataset.map(worst)) / (
        done.dataset.map(best) - done.dataset.map(worst)
    )
    expected = normalised.groupby(done.label).mean()
    for row, (point, low, high) in plotted(mean_ax).items():
        assert point == pytest.approx(expected[row], abs=1e-12)
        assert low <= point <= high


def test_the_plotted_probability_of_improvement_is_the_comparison_tables(study):
    done, _ = study
    fig = probability_of_improvement(done)
    table = compare.aggregate_improvement(done).set_index("row")
    shown = plotted(fig.axes[0])
    assert len(shown) == len(table) == 2  # center and center (weight=0.1), against none
    names = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert names == [f"{row}\nvs {table.loc[row, 'baseline']}" for row in shown]
    for row, (point, low, high) in shown.items():
        assert (point, low, high) == pytest.approx(
            tuple(table.loc[row, ["p_improvement", "low", "high"]]), abs=1e-12
        )


def test_the_plotted_profile_is_the_fraction_of_each_rows_runs(study):
    done, _ = study
    context = FigureContext.of(done)
    fig = performance_profile(done, context=context)
    lines = {line.get_label(): line for ax in fig.axes for line in ax.get_lines()}
    lines.pop("_context", None)
    for row, line in lines.items():
        runs = done.loc[done.label == row, "top1"].to_numpy() * 100
        taus = line.get_xdata()
        assert line.get_ydata().tolist() == [np.mean(runs > t) for t in taus]
    bands = [c for ax in fig.axes for c in ax.collections if c.get_label() != "_context"]
    assert len(bands) == 4  # 2 tasks x 3 runs: a band for every row


def test_too_few_runs_draw_no_interval_and_say_why(tmp_path):
    runs = fabricate_study(tmp_path / "runs", arms=3, seeds=(0, 1), features_rows=0)
    done = collect(runs)
    drawn = draw_figures(done, read_figure_inputs(done, runs))
    for stem in ("interval_estimates", "probability_of_improvement"):
        fig = drawn.figures[stem]
        assert not [c for ax in fig.axes for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert all(
            not math.isnan(point) for ax in fig.axes[:1] for point, *_ in plotted(ax).values()
        )
        assert any(
            n.startswith(f"{stem} drawn without intervals: 4 runs over 2 tasks")
            for n in drawn.notes
        )
    assert any(
        n.startswith("performance_profile drawn without bands for every row") for n in drawn.notes
    )
    profile = drawn.figures["performance_profile"]
    assert not [c for ax in profile.axes for c in ax.collections if c.get_label() != "_context"]


def test_rows_missing_a_task_are_left_out_of_the_aggregate_with_why(study):
    done, _ = study
    partial = done[~((done.label == "center") & (done.seed == 2) & (done.dataset == "mnist_lt@10"))]
    context = FigureContext.of(partial)
    fig = interval_estimates(partial, context=context)
    assert "center" not in plotted(fig.axes[0])
    assert any("interval_estimates drawn without rows center" in n for n in context.notes)
