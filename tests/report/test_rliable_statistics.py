"""lt_bench.report.compare's aggregates against a transcription of rliable's own code.

The transcription follows google-research/rliable at 3ccd9f4: ``rliable/metrics.py``
(``aggregate_iqm``, ``probability_of_improvement``) and ``rliable/library.py``
(``StratifiedBootstrap`` and ``StratifiedIndependentBootstrap``, which index
``scores[(indices, *strata_indices)]``; ``get_interval_estimates(reps=50000,
confidence_interval_size=0.95, method='percentile')``), with arch's percentile interval
(``np.percentile(values, [2.5, 97.5])``). It runs one resample at a time, as rliable does; the
library computes all resamples at once. Both are fed the same run indices, so the intervals agree
to rounding (1e-12: only the order of float sums differs).
"""

import inspect

import numpy as np
import pytest
import scipy.stats

from lt_bench.report import compare
from lt_bench.report.compare import (
    iqm,
    probability_of_improvement,
    stratified_bootstrap_iqm,
    stratified_independent_bootstrap_improvement,
)

# ----------------------------------------------------------------------------- rliable, transcribed


def rliable_aggregate_iqm(scores):
    return scipy.stats.trim_mean(scores, proportiontocut=0.25, axis=None)


def rliable_probability_of_improvement(scores_x, scores_y):
    num_tasks = scores_x.shape[1]
    task_improvement_probabilities = []
    num_runs_x, num_runs_y = scores_x.shape[0], scores_y.shape[0]
    for task in range(num_tasks):
        if np.array_equal(scores_x[:, task], scores_y[:, task]):
            task_improvement_prob = 0.5
        else:
            task_improvement_prob, _ = scipy.stats.mannwhitneyu(
                scores_x[:, task], scores_y[:, task], alternative="greater"
            )
            task_improvement_prob /= num_runs_x * num_runs_y
        task_improvement_probabilities.append(task_improvement_prob)
    return np.mean(task_improvement_probabilities)


def rliable_strata_indices(shape):
    """StratifiedBootstrap._get_strata_indices: the task index of every column."""
    return np.ogrid[tuple(slice(x) for x in (0, *shape[1:]))][1:]


def arch_percentile_interval(values):
    """arch IIDBootstrap.conf_int(method='percentile', size=0.95, tail='two')."""
    alpha = (1.0 - 0.95) / 2
    low, high = np.percentile(values, [100 * alpha, 100 * (1.0 - alpha)])
    return low, high


def rliable_iqm_interval(scores, picks):
    """get_interval_estimates({key: scores}, aggregate_iqm): StratifiedBootstrap, one resample per
    row of ``picks`` (each a runs x tasks array of run indices, as update_indices draws)."""
    strata = rliable_strata_indices(scores.shape)
    values = [rliable_aggregate_iqm(scores[(indices, *strata)]) for indices in picks]
    return arch_percentile_interval(np.array(values))


def rliable_improvement_interval(scores_x, scores_y, picks_x, picks_y):
    """get_interval_estimates({key: [x, y]}, probability_of_improvement):
    StratifiedIndependentBootstrap, x and y resampled independently within each task."""
    strata_x = rliable_strata_indices(scores_x.shape)
    strata_y = rliable_strata_indices(scores_y.shape)
    values = [
        rliable_probability_of_improvement(scores_x[(ix, *strata_x)], scores_y[(iy, *strata_y)])
        for ix, iy in zip(picks_x, picks_y)
    ]
    return arch_percentile_interval(np.array(values))


# ----------------------------------------------------------------------------- fixed score matrices

# rliable's own test matrices (tests/rliable/metrics_test.py): IQM 1.5 and 2, PoI 1/3.
RLIABLE_X = np.array([[1, 2], [2, 2], [1, 1], [2, 1]], dtype=float)
RLIABLE_Y = np.array([[1, 1], [2, 2], [3, 3]], dtype=float)

# Runs x tasks, with ties inside and across the two matrices, different run counts, and one task
# (the last) where both are equal run by run (rliable's array_equal case).
X = np.array(
    [
        [0.61, 0.72, 0.50, 0.33],
        [0.58, 0.70, 0.55, 0.35],
        [0.64, 0.70, 0.48, 0.31],
        [0.58, 0.75, 0.52, 0.30],
    ]
)
Y = np.array([[0.60, 0.70, 0.52, 0.33], [0.58, 0.74, 0.47, 0.35], [0.62, 0.69, 0.55, 0.31]])
Y_SAME_LAST = np.vstack([Y, [0.59, 0.71, 0.50, 0.30]])
Y_SAME_LAST[:, 3] = X[:, 3]


def test_iqm_is_rliables():
    assert iqm(RLIABLE_X) == rliable_aggregate_iqm(RLIABLE_X) == 1.5
    assert iqm(RLIABLE_Y) == rliable_aggregate_iqm(RLIABLE_Y) == 2
    assert iqm(X) == pytest.approx(rliable_aggregate_iqm(X), abs=1e-15)


@pytest.mark.parametrize(
    "scores_x, scores_y",
    [(RLIABLE_X, RLIABLE_Y), (X, Y), (Y, X), (X, Y_SAME_LAST), (X, X), (X[:, :1], Y[:, :1])],
    ids=["rliable-test", "x-y", "y-x", "equal-task", "same", "one-task"],
)
def test_probability_of_improvement_is_rliables_exactly(scores_x, scores_y):
    assert probability_of_improvement(scores_x, scores_y) == rliable_probability_of_improvement(
        scores_x, scores_y
    )


def test_probability_of_improvement_by_hand():
    assert probability_of_improvement(RLIABLE_X, RLIABLE_Y) == pytest.approx(1 / 3)
    # One task: 0.5 beats 0.45 only, 0.6 beats 0.45 only, 0.9 beats all three: 5 of 9 pairs.
    row, base = np.array([[0.5], [0.6], [0.9]]), np.array([[0.45], [0.7], [0.8]])
    assert probability_of_improvement(row, base) == pytest.approx(5 / 9)
    assert probability_of_improvement(X, X) == 0.5


def test_stratified_bootstrap_iqm_is_rliables_with_the_same_draws():
    reps, seed = 2000, 3
    runs, tasks = X.shape
    picks = np.random.default_rng(seed).integers(0, runs, size=(reps, runs, tasks))
    expected = rliable_iqm_interval(X, picks)
    assert stratified_bootstrap_iqm(X, reps, np.random.default_rng(seed)) == pytest.approx(
        expected, abs=1e-12
    )


def test_stratified_independent_bootstrap_improvement_is_rliables_with_the_same_draws():
    reps, seed = 300, 5  # scipy's mannwhitneyu takes ~2 ms a call: few resamples
    rng = np.random.default_rng(seed)  # the library draws every x resample, then every y one
    picks_x = rng.integers(0, X.shape[0], size=(reps, *X.shape))
    picks_y = rng.integers(0, Y_SAME_LAST.shape[0], size=(reps, *Y_SAME_LAST.shape))
    expected = rliable_improvement_interval(X, Y_SAME_LAST, picks_x, picks_y)
    got = stratified_independent_bootstrap_improvement(
        X, Y_SAME_LAST, reps, np.random.default_rng(seed)
    )
    assert got == pytest.approx(expected, abs=1e-12)
    assert got[0] < probability_of_improvement(X, Y_SAME_LAST) < got[1]


def test_resample_counts_are_rliables_default():
    assert compare.RESAMPLES == 50_000 and compare.CONFIDENCE == 0.95
    assert compare.PERCENTILES == pytest.approx((2.5, 97.5))
    for function in (compare.aggregate_iqm, compare.aggregate_improvement, compare.aggregates):
        assert inspect.signature(function).parameters["reps"].default == 50_000, function
    assert "50,000 resamples" in compare.AGGREGATE_CAPTION
