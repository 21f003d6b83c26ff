"""A report that draws figures but cannot draw some says which and why, in report.md and on the
command line, never silently: light run records (no feature arrays), t-SNE not asked for."""

from lt_bench.report import figure_notes, read_figure_inputs
from lt_bench.report.collect import collect

TSNE = "tsne not drawn: pass --tsne"


def test_figures_without_features_are_named(fixture_runs):
    runs = collect(fixture_runs)
    done = runs[runs.status == "done"]
    notes = figure_notes(done, read_figure_inputs(done, fixture_runs), tsne=True)
    interval_notes = [n for n in notes if "without intervals" in n]
    assert [n for n in notes if "class_mean_cosine" in n or "tsne" in n] == []
    assert figure_notes(done, None) == []  # --no-figures: nothing to say
    for path in fixture_runs.rglob("features.npz"):
        path.unlink()
    notes = figure_notes(done, read_figure_inputs(done, fixture_runs), tsne=True)
    why = "no features.npz for any row on synthetic@10 (light run records keep no feature arrays)"
    assert f"class_mean_cosine not drawn: {why}" in notes and f"tsne not drawn: {why}" in notes
    assert [n for n in notes if "without intervals" in n] == interval_notes


def test_figures_missing_some_rows_name_them(fixture_runs):
    runs = collect(fixture_runs)
    done = runs[runs.status == "done"]
    for path in fixture_runs.rglob("features.npz"):
        if "_sar_" in path.parent.name:
            path.unlink()
    notes = figure_notes(done, read_figure_inputs(done, fixture_runs))
    assert TSNE in notes  # t-SNE only on request
    assert (
        "class_mean_cosine drawn without rows sar: no features.npz for them on synthetic@10 "
        "(light run records keep no feature arrays)"
    ) in notes
