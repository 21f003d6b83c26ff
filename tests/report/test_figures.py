"""Every figure of the report is readable, measured with matplotlib's renderer
(tests/report/readability.py): on the committed fixture runs and on a study as large as a real one
(14 arms, 3 seeds, 2 ratios). A row looks the same in every figure and unlike every other row,
accuracies are in %, integer quantities get integer ticks, spreads over seeds are drawn, and a
figure with nothing to show is left out with its reason."""

import subprocess
import sys

import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex
from matplotlib.container import ErrorbarContainer

from lt_bench.report import (
    FIGURES,
    draw_figures,
    read_figure_inputs,
    report_file_names,
    write_report,
)
from lt_bench.report.collect import collect
from lt_bench.report.figures import (
    FigureContext,
    NothingToShow,
    per_class_accuracy,
    training_curves,
)
from lt_bench.report.figures.style import MARKERS, PALETTE, save_png_and_pdf, wrap
from tests.report.fixtures import fabricate_study
from tests.report.readability import problems, series_signatures

ROW_SERIES = ("per_class_accuracy", "accuracy_vs_ratio", "training_curves", "performance_profile")


def drawn_from(runs_dir, tsne=True):
    runs = collect(runs_dir)
    done = runs[runs.status == "done"]
    inputs = read_figure_inputs(done, runs_dir)
    return done, inputs, draw_figures(done, inputs, tsne=tsne)


@pytest.fixture(scope="module")
def fourteen(fourteen_arms):
    """Every figure of the 14-arm study, t-SNE included (80 points a row: cheap)."""
    return drawn_from(fourteen_arms)


def test_every_figure_is_readable_at_fourteen_rows(fourteen):
    done, _, drawn = fourteen
    assert done.label.nunique() == 14
    assert list(drawn.figures) == list(FIGURES)  # each has something to show here
    for stem, fig in drawn.figures.items():
        assert problems(fig) == [], stem


def test_every_figure_is_readable_on_the_fixture_runs(fixture_runs):
    _, _, drawn = drawn_from(fixture_runs)
    assert list(drawn.figures) == list(FIGURES)
    for stem, fig in drawn.figures.items():
        assert problems(fig) == [], stem


def test_a_row_looks_the_same_in_every_figure_and_unlike_any_other(fourteen):
    done, _, drawn = fourteen
    styles = FigureContext.of(done).styles
    pairs = {(style.colour, style.marker) for style in styles.values()}
    assert len(styles) == len(pairs) == 14
    assert {c for c, _ in pairs} <= set(PALETTE) and {m for _, m in pairs} <= set(MARKERS)
    for stem in ROW_SERIES:
        fig = drawn.figures[stem]
        shown = [text.get_text() for text in fig.legends[0].get_texts()]
        assert shown == [wrap(label, 46) for label in styles], stem  # every row, in one order
        for label, signatures in series_signatures(fig).items():
            style = styles[label]
            assert signatures == {(to_hex(style.colour), style.marker)}, (stem, label)


def test_accuracies_are_in_percent_with_spreads_over_seeds(fourteen):
    _, _, drawn = fourteen
    fig = drawn.figures["per_class_accuracy"]
    ys = [y for ax in fig.axes for line in ax.get_lines() for y in line.get_ydata()]
    assert 1 < max(ys) <= 100 and min(ys) >= 0
    assert all("(%)" in ax.get_ylabel() for ax in fig.axes if ax.get_ylabel())
    bands = [c for ax in fig.axes for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2 * 14  # mean +- std over seeds, every row on both data sets
    fig = drawn.figures["accuracy_vs_ratio"]
    bars = [c for ax in fig.axes for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2 * 14 and any(c.lines[2][0].get_segments() for c in bars)
    assert "%" in drawn.figures["performance_profile"].axes[0].get_xlabel()


def tick_texts(ax, axis="x") -> list[str]:
    """The tick labels shown (the figure drawn already)."""
    low, high = sorted(getattr(ax, f"get_{axis}lim")())
    ticks = getattr(ax, f"get_{axis}ticks")()
    labels = getattr(ax, f"get_{axis}ticklabels")()
    return [t.get_text() for v, t in zip(ticks, labels) if low <= v <= high and t.get_text()]


def test_integer_quantities_get_integer_ticks(fourteen):
    _, _, drawn = fourteen
    for stem in ("training_curves", "class_mean_cosine", "per_class_accuracy"):
        drawn.figures[stem].draw_without_rendering()
    for ax in drawn.figures["training_curves"].axes:
        if ax.get_visible():
            assert tick_texts(ax) and all(t.isdigit() for t in tick_texts(ax))  # epochs
    heatmap = drawn.figures["class_mean_cosine"].axes[0]
    for axis in "xy":
        assert all(t.isdigit() for t in tick_texts(heatmap, axis))  # class index
    sizes = drawn.figures["per_class_accuracy"].axes[0]
    assert all(t.isdigit() for t in tick_texts(sizes))  # class sizes: plain numbers on a log axis
    assert sizes.get_xscale() == "log"


def test_a_figure_with_nothing_to_show_is_left_out_with_why(tmp_path, capsys):
    from lt_bench.cli import main

    runs = fabricate_study(tmp_path / "runs", arms=3, seeds=(0,), ratios=(100,), features_rows=0)
    for metrics in runs.rglob("metrics.jsonl"):
        metrics.unlink()
    assert main(["report", str(runs), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    notes = [
        "accuracy_vs_ratio not drawn: every data set ran at one imbalance ratio (mnist_lt at 100)",
        "training_curves not drawn: no done run has training epochs in its metrics.jsonl",
        "class_mean_cosine not drawn: no features.npz for any row on mnist_lt@100 (light run "
        "records keep no feature arrays)",
        "tsne not drawn: pass --tsne",
        "interval_estimates not drawn: one data set @ ratio: scores normalised across tasks "
        "need two or more",
        "probability_of_improvement drawn without intervals: ",
        "performance_profile drawn without bands for every row: ",
    ]
    report = (tmp_path / "out" / "report.md").read_text()
    section = report.split("## Figures left out\n\n")[1]
    for note in notes:
        assert f"- {note}" in section and note in printed, note
    written = {p.name for p in (tmp_path / "out").iterdir()}
    for stem in (
        "accuracy_vs_ratio", "training_curves", "class_mean_cosine", "tsne", "interval_estimates"
    ):
        assert f"{stem}.png" not in written
    for stem in ("per_class_accuracy", "probability_of_improvement", "performance_profile"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= written
    done = collect(runs)
    with pytest.raises(NothingToShow, match="no done run has training epochs"):
        training_curves(done, read_figure_inputs(done, runs))


def test_every_figure_stem_is_a_name_a_report_may_write():
    for stem in FIGURES:
        assert {f"{stem}.png", f"{stem}.pdf"} <= report_file_names()


def test_figures_are_saved_as_png_and_reproducible_pdf(tmp_path):
    runs = fabricate_study(tmp_path / "runs", arms=2, seeds=(0,), ratios=(10, 100))
    done = write_report(runs, tmp_path / "a")["runs"]
    written = {p.name for p in (tmp_path / "a").iterdir()}
    assert {"per_class_accuracy.png", "per_class_accuracy.pdf"} <= written
    assert "tsne.png" not in written  # no t-SNE unless asked for
    assert (tmp_path / "a" / "per_class_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    fig = per_class_accuracy(done, read_figure_inputs(done, runs))
    save_png_and_pdf(fig, tmp_path, "first")
    save_png_and_pdf(fig, tmp_path, "second")
    assert (tmp_path / "first.pdf").read_bytes() == (tmp_path / "second.pdf").read_bytes()


def test_the_figure_registry_imports_no_matplotlib():
    code = (
        "import sys, lt_bench.report.figures; "
        "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
