"""Warnings are said once each: one footnote per distinct sentence under a table, naming its rows,
and one line per distinct sentence in report.md's warnings section."""

from lt_bench.report import write_report
from lt_bench.report.collect import collect
from lt_bench.report.notes import grouped_warnings, warnings_section
from tests.test_report_rows import fake_run

ANCHORS = "SAR's EMA anchors still carry {}% of their first copy after {} gated steps"
SYNC = "train.sync_bn has no effect in a single process"


def warned_runs(runs):
    for seed in (0, 1, 2):
        fake_run(runs, ["method.name=none"], seed, 0.4, 0.1, warnings=[SYNC])
        fake_run(runs, ["method.name=sar"], seed, 0.5, 0.1,
                 warnings=[ANCHORS.format(64 + seed % 2, 440 + seed), SYNC])  # fmt: skip
        fake_run(runs, ["method.name=sar", "method.trade_off=0"], seed, 0.5, 0.1,
                 warnings=[ANCHORS.format(64, 450)])  # fmt: skip
        fake_run(runs, ["method.name=center"], seed, 0.45, 0.1)


def test_sentences_that_differ_only_in_numbers_are_one_warning_with_ranges():
    pairs = [("a", ANCHORS.format(64, 445)), ("a", ANCHORS.format(65, 434)), ("b", SYNC)]
    pairs.append(("c", ANCHORS.format(64, 448)))
    first, second = grouped_warnings(pairs)
    assert first.sentence == ANCHORS.format("64–65", "434–448")
    assert first.rows == ["a", "c"] and first.runs == {"a": 2, "c": 1}
    assert second.sentence == SYNC and second.rows == ["b"]


def test_each_table_has_one_footnote_per_distinct_warning(tmp_path):
    runs = tmp_path / "runs"
    warned_runs(runs)
    write_report(runs, tmp_path / "out", figures=False)
    for name in ("main_table", "separability_table", "ratio_table"):
        lines = (tmp_path / "out" / f"{name}.md").read_text().splitlines()
        notes = [line for line in lines if line.startswith("†")]
        assert notes == [
            f"† {SYNC} (rows: none, sar)",
            "† " + ANCHORS.format("64–65", "440–450") + " (rows: sar, sar (trade_off=0))",
        ], name
        assert [line.split(" | ")[0] for line in lines if line.startswith("| ")][1:] == [
            "| none †", "| center", "| sar †", "| sar (trade_off=0) †",
        ]  # fmt: skip
        latex = (tmp_path / "out" / f"{name}.tex").read_text()
        assert latex.count(r"\par{\footnotesize $^\dagger$ ") == 2
        assert "carry 64--65\\% of their first copy after 440--450 gated steps" in latex


def test_the_warnings_section_has_one_line_per_distinct_warning(tmp_path):
    runs = tmp_path / "runs"
    warned_runs(runs)
    done = collect(runs)
    assert warnings_section(done) == [
        "## Warnings (9 of 12 runs; rows marked † in the tables)\n\n"
        f"- {SYNC} (none: 3 runs, sar: 3 runs)\n"
        "- " + ANCHORS.format("64–65", "440–450") + " (sar: 3 runs, sar (trade_off=0): 3 runs)\n"
    ]
    assert warnings_section(done[done["method.name"] == "center"]) == []
