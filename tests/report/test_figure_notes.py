"""A report that draws figures but cannot draw some (light run records: no feature arrays) says
which and why, in report.md and on the command line, never silently."""

from lt_bench.report import figure_notes, read_figure_inputs
from lt_bench.report.collect import collect


def test_figures_without_features_are_named(fixture_runs):
    runs = collect(fixture_runs)
    done = runs[runs.status == "done"]
    assert figure_notes(done, read_figure_inputs(done, fixture_runs)) == []
    assert figure_notes(done, None) == []  # --no-figures: nothing to say
    for path in fixture_runs.rglob("features.npz"):
        path.unlink()
    notes = figure_notes(done, read_figure_inputs(done, fixture_runs))
    assert len(notes) == 1
    assert "class_mean_cosine and tsne not drawn: no features.npz for any row" in notes[0]
