"""Every registered table builds from the fixture runs and is written as md, tex and csv; a new
table is picked up by the report (and by this test) without editing either."""

import pandas as pd
import pytest

from lt_bench.registry import Registry
from lt_bench.report import write_report
from lt_bench.report.collect import collect
from lt_bench.report.tables import TABLES, ReportContext, face, registered_tables, table
from lt_bench.report.tables.grid import dataset_table


def test_the_registry_holds_the_report_tables_in_report_order():
    assert [t.name for t in registered_tables()] == [
        "main_table",
        "settings",
        "separability_table",
        "centroid_table",
        "ratio_table",
        "comparison_table",
        "tuning",
    ]


@pytest.mark.parametrize("name", TABLES.names())
def test_every_registered_table_builds_and_is_written(fixture_runs, tmp_path, name):
    built = TABLES.get(name).make(collect(fixture_runs), ReportContext(fixture_runs))
    assert built is not None, f"{name} shows nothing on the fixture runs; extend the fixtures"
    written = write_report(fixture_runs, tmp_path / "out", figures=False)["written"]
    out = tmp_path / "out"
    markdown = (out / f"{name}.md").read_text()
    assert markdown == built.markdown() and markdown.count("\n|") >= 2  # a header and a row
    assert f"## {built.title}\n\n{markdown}" in (out / "report.md").read_text()
    latex = built.latex()
    if latex is None:  # a table without a LaTeX form writes no .tex
        assert not (out / f"{name}.tex").exists()
    else:
        assert (out / f"{name}.tex").read_text() == latex and r"\begin{tabular}" in latex
    csv = pd.read_csv(out / f"{name}.csv")
    assert len(csv) == len(built.frame()) > 0
    for file_name, frame in built.extra_csv().items():
        assert file_name in written and len(pd.read_csv(out / file_name)) == len(frame)
    files = [f"{name}.md", f"{name}.csv"] + ([f"{name}.tex"] if latex is not None else [])
    assert set(files) <= set(written)


def test_report_sections_follow_the_registry_order(fixture_runs, tmp_path):
    write_report(fixture_runs, tmp_path / "out", figures=False)
    report = (tmp_path / "out" / "report.md").read_text()
    context = ReportContext(fixture_runs)
    titles = [t.make(collect(fixture_runs), context).title for t in registered_tables()]
    positions = [report.index(f"## {title}\n") for title in titles]
    assert positions == sorted(positions)


def test_a_new_table_is_one_registered_function(fixture_runs, tmp_path, monkeypatch):
    registry = Registry("table")  # the real tables plus one, without touching the real registry
    for name in TABLES:
        registry.register(name)(TABLES.get(name))
    monkeypatch.setattr(face, "TABLES", registry)

    @table("top5_table", position=15)
    def top5_table(runs, context):
        return dataset_table(runs, "Top-5 accuracy (%)", [("top5", "Top-5")], {"top5": "max"}, 100)

    written = write_report(fixture_runs, tmp_path / "out", figures=False)["written"]
    assert {"top5_table.md", "top5_table.tex", "top5_table.csv"} <= set(written)
    report = (tmp_path / "out" / "report.md").read_text()
    assert report.index("## Top-1 accuracy (%)\n") < report.index("## Top-5 accuracy (%)\n")
    assert report.index("## Top-5 accuracy (%)\n") < report.index("## Feature separability\n")
    assert "top5_table" not in TABLES


def test_a_table_with_nothing_to_show_is_skipped(fixture_runs, tmp_path):
    (fixture_runs / "tune" / "tuning.json").unlink()  # not a tuned study
    written = write_report(fixture_runs, tmp_path / "out", figures=False)["written"]
    assert not any(name.startswith("tuning") for name in written)
    assert "## Tuning" not in (tmp_path / "out" / "report.md").read_text()
