"""``show``: a runs folder or one run at a glance, with the numbers of final.json (in %) and of the
report's main table, each warning once, failed runs' errors and runs made by other code."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lt_bench import atomic
from lt_bench.errors import UserError
from lt_bench.provenance import code_identity
from lt_bench.report.collect import collect
from lt_bench.report.show import show
from lt_bench.report.tables import main_table
from tests.report.test_notes import ANCHORS, SYNC, warned_runs

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_RUNS = ROOT / "tests" / "fixtures" / "runs"
DEMO = ROOT / "results" / "runs" / "mnist_lt_demo"
TUNED = ROOT / "results" / "runs" / "fashion_mnist_lt"
FAILED = "synthetic_none_61083e706f"


@pytest.fixture(scope="module")
def demo_grouped() -> str:
    return show(DEMO, group=True)


def cells(line: str) -> list[str]:
    """A table line's cells: columns are two or more spaces apart."""
    return re.split(r"\s{2,}", line.strip())


def table(text: str) -> list[dict]:
    """The rows of show's table as {header: cell}."""
    lines = text.splitlines()
    start = lines.index("") + 1
    header = cells(lines[start])
    rows = []
    for line in lines[start + 1 :]:
        if not line:
            break
        rows.append(dict(zip(header, cells(line), strict=True)))
    return rows


def summary(text: str) -> dict:
    """One run's ``key  value`` lines as a dict (continuation lines left out)."""
    return dict(cells(line) for line in text.splitlines() if line[:1].strip())


def percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}"


def test_a_runs_table_shows_final_json_top1_in_percent_with_one_decimal():
    rows = {row["run folder"]: row for row in table(show(DEMO))}
    assert len(rows) == 30
    for folder in ("mnist_lt_center_5c0f8a0b60", "mnist_lt_sar_09b5d074a9"):
        final = json.loads((DEMO / folder / "final.json").read_text())
        row = rows[folder]
        assert row["top-1 %"] == percent(final["top1"])
        assert [row["many %"], row["medium %"], row["few %"]] == [
            percent(final[g]) for g in ("many", "medium", "few")
        ]
    sar = rows["mnist_lt_sar_c5d8a7312f"]
    separability = json.loads((DEMO / "mnist_lt_sar_c5d8a7312f" / "separability.json").read_text())
    assert sar["kNN %"] == percent(separability["summary"]["knn_accuracy"])
    assert sar["NC1"] == f"{separability['summary']['nc1']:.3f}"
    # The study's names from labels.json, the seed and the warning count.
    assert (sar["label"], sar["seed"], sar["status"], sar["warnings"]) == (
        "sar anchor-only", "0", "done", "1",
    )  # fmt: skip


def test_one_run_is_a_key_value_summary_with_final_json_numbers():
    run = DEMO / "mnist_lt_sar_c5d8a7312f"
    final = json.loads((run / "final.json").read_text())
    text = show(run)
    values = summary(text)
    assert values["label"] == "sar anchor-only"
    assert values["method"] == "sar (trade_off=0)"
    assert values["top-1"] == percent(final["top1"]) + "%"
    assert values["status"] == "done" and values["seed"] == "0" and values["epochs"] == "12"
    assert values["shot groups"].startswith(f"many {percent(final['many'])}% (3 classes)")
    assert final["warnings"][0] in text
    assert show(run / "final.json") == text  # a run's file means the run


def test_a_failed_runs_error_is_shown_under_the_table_and_in_its_summary():
    error = json.loads((FIXTURE_RUNS / FAILED / "final.json").read_text())["error"]
    text = show(FIXTURE_RUNS)
    failed = [row for row in table(text) if row["run folder"] == FAILED]
    assert [(row["status"], row["top-1 %"]) for row in failed] == [("failed", "–")]
    assert f"- {FAILED} (none, synthetic@4, seed 0): failed: {error}" in text.splitlines()
    assert "10 runs (8 done, 1 failed, 1 incomplete)" in text.splitlines()[0]
    one = summary(show(FIXTURE_RUNS / FAILED))
    assert (one["status"], one["error"]) == ("failed", error)


def test_each_warning_is_said_once_with_its_rows(tmp_path):
    runs = tmp_path / "runs"
    # none: SYNC x3; sar: ANCHORS (64-65%, 440-442) and SYNC x3; sar (trade_off=0): ANCHORS x3
    warned_runs(runs)
    text = show(runs)
    lines = text.splitlines()
    assert lines.count("Warnings (2 distinct, on 9 of 12 runs):") == 1
    assert [line for line in lines if line.startswith("- ")] == [
        f"- {SYNC} (none: 3 runs, sar: 3 runs)",
        "- " + ANCHORS.format("64–65", "440–450") + " (sar: 3 runs, sar (trade_off=0): 3 runs)",
    ]
    assert {row["label"]: row["warnings"] for row in table(text)} == {
        "none": "1", "center": "0", "sar": "2", "sar (trade_off=0)": "1",
    }  # fmt: skip
    grouped = {row["label"]: row["warnings"] for row in table(show(runs, group=True))}
    assert grouped == {"none": "1", "center": "0", "sar": "2", "sar (trade_off=0)": "1"}


def test_runs_made_by_other_code_get_a_code_line(tmp_path):
    runs = tmp_path / "runs"
    for name in ("synthetic_sar_293469aa58", "synthetic_sar_ad48e97c6a"):
        shutil.copytree(FIXTURE_RUNS / name, runs / name)
    now = code_identity()
    for name in ("synthetic_sar_293469aa58", "synthetic_sar_ad48e97c6a"):
        path = runs / name / "final.json"
        final = json.loads(path.read_text())
        final["versions"] = {**final["versions"], **now}  # the code running this test
        atomic.write_json(path, final)
    assert "other code" not in show(runs)
    assert summary(show(runs / "synthetic_sar_293469aa58"))["code"] == "same as now"

    path = runs / "synthetic_sar_293469aa58" / "final.json"
    final = json.loads(path.read_text())
    final["versions"]["git_commit"] = "0123456789abcdef0123456789abcdef01234567"
    atomic.write_json(path, final)
    code = [line for line in show(runs).splitlines() if line.startswith("Code:")]
    assert len(code) == 1
    assert code[0].startswith(
        "Code: 1 of 2 done runs were made by other code than now: commit 01234567"
    )
    assert "(synthetic_sar_293469aa58)" in code[0]
    assert summary(show(runs / "synthetic_sar_293469aa58"))["code"].startswith(
        "other than now: commit 01234567"
    )


def test_group_mode_shows_the_main_tables_mean_and_std(demo_grouped):
    runs = collect(DEMO)
    report = main_table(runs)
    rows = {row["label"]: row for row in table(demo_grouped)}
    assert list(rows) == report.rows  # the report's row order
    for label in ("sar", "none + BS", "sar anchor-only + BS"):
        assert rows[label]["top-1 %"] == report.text(label, "mnist_lt@100", "top1")
        assert rows[label]["few %"] == report.text(label, "mnist_lt@100", "few")
        assert rows[label]["seeds"] == "3"
    top1 = runs[runs.label == "sar"].top1
    assert rows["sar"]["top-1 %"] == f"{100 * top1.mean():.1f} ± {100 * top1.std():.1f}"


def test_sort_puts_the_best_first_and_missing_values_last():
    rows = table(show(FIXTURE_RUNS, sort="top1"))
    top1 = [row["top-1 %"] for row in rows]
    shown = [float(t) for t in top1 if t != "–"]
    assert shown == sorted(shown, reverse=True) and top1[-2:] == ["–", "–"]
    grouped = [
        (row["data"], row["label"]) for row in table(show(FIXTURE_RUNS, group=True, sort="top1"))
    ]
    assert grouped == [
        ("synthetic@10", "sar"), ("synthetic@4", "none"), ("synthetic@4", "sar"),
        ("synthetic@10", "none"), ("synthetic@10", "center"),
    ]  # fmt: skip
    with pytest.raises(UserError, match="unknown sort key 'speed'; choose one of: top1"):
        show(DEMO, sort="speed")


def test_a_tuned_study_shows_its_final_runs_only():
    text = show(TUNED, group=True)
    assert text.splitlines()[0] == f"{TUNED}: 48 runs (48 done)"
    assert "– in Few: no class has <20 training images" in text  # why Few shows –


def test_a_missing_path_or_a_folder_without_runs_is_a_one_line_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist; pass a run folder") as missing:
        show(tmp_path / "nowhere")
    assert "\n" not in str(missing.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no runs under") as empty:
        show(tmp_path / "empty")
    assert "\n" not in str(empty.value)
    with pytest.raises(UserError, match="is one run: --group and --sort apply to a runs folder"):
        show(FIXTURE_RUNS / FAILED, group=True)


def test_show_imports_no_torch():
    code = (
        "import sys; from lt_bench.report.show import show; "
        f"show({str(FIXTURE_RUNS)!r}, group=True); show({str(FIXTURE_RUNS / FAILED)!r}); "
        "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_command_line_prints_the_table_and_refuses_a_missing_path(capsys, tmp_path):
    from lt_bench.cli import main

    assert main(["show", str(DEMO), "--group", "--sort", "top1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[3].startswith("sar + BS ") and "77.4 ± 3.3" in lines[3]  # the best row first
    assert main(["show", str(tmp_path / "missing")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("lt-bench show: error: ") and "does not exist" in error
    assert len(error.strip().splitlines()) == 1
