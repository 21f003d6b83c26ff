"""A report folder holds the present report only: each report is written into a fresh folder and
renamed into place, so nothing an earlier report wrote lingers; a folder holding anything a report
did not write is refused, never emptied."""

import json

import pytest

from lt_bench.cli import main
from lt_bench.errors import UserError
from lt_bench.report import output, write_report
from lt_bench.report.output import MANIFEST
from lt_bench.rundir import RunDir
from tests.report.conftest import TUNING_RECORD
from tests.test_report_rows import fake_run

TABLES = ("main_table", "separability_table", "centroid_table", "ratio_table", "comparison_table")
EVERY_TABLE = {f"{name}.{suffix}" for name in TABLES for suffix in ("md", "tex", "csv")} | {
    "comparison_aggregate.csv"
}
SETTINGS = {"settings.md", "settings.tex", "settings.csv"}  # only while two rows differ


def report(runs, out, capsys) -> str:
    """``lt-bench report RUNS --out OUT --no-figures``: what it printed."""
    assert main(["report", str(runs), "--out", str(out), "--no-figures"]) == 0
    return capsys.readouterr().out


def holds_this_report_only(out) -> set[str]:
    """The report's files; the folder holds them, its manifest and nothing else."""
    files = set(json.loads((out / MANIFEST).read_text())["files"])
    assert {p.name for p in out.iterdir()} == files | {MANIFEST}
    return files


def no_temporary_folders(parent) -> bool:
    return not [p.name for p in parent.iterdir() if p.name.startswith(".out.")]


def test_a_run_marked_failed_leaves_the_next_report_and_nothing_stale_remains(tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "out"
    none = fake_run(runs, ["method.name=none"], 0, 0.40, 0.1)
    sar = fake_run(runs, ["method.name=sar"], 0, 0.60, 0.2)
    printed = report(runs, out, capsys)
    assert holds_this_report_only(out) == {"runs.csv", "report.md"} | EVERY_TABLE | SETTINGS
    assert "| sar | **60.0** |" in (out / "main_table.md").read_text()

    RunDir(sar).mark_failed("NonFiniteLoss: the loss became nan at epoch 3", None, False)
    printed = report(runs, out, capsys)
    table = (out / "main_table.md").read_text()
    assert "| sar |" not in table and "| none |" in table
    assert table in printed and "| sar |" not in printed  # it prints the table it wrote
    assert f"  failed: {sar.name}: NonFiniteLoss: the loss became nan at epoch 3" in printed
    assert f"2 runs (1 done, 1 failed); wrote {len(EVERY_TABLE) + 2} files" in printed
    assert holds_this_report_only(out) == {"runs.csv", "report.md"} | EVERY_TABLE  # no settings

    RunDir(none).mark_failed("NonFiniteLoss: again", None, False)
    printed = report(runs, out, capsys)
    assert holds_this_report_only(out) == {"runs.csv", "report.md"}  # no table left behind
    assert "|" not in printed and "wrote 2 files" in printed
    assert f"  failed: {none.name}: NonFiniteLoss: again" in printed
    assert no_temporary_folders(tmp_path)


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two renames"])
def test_a_previous_report_is_replaced_whole(tmp_path, monkeypatch, exchange):
    runs, out = tmp_path / "runs", tmp_path / "out"
    fake_run(runs, ["method.name=none"], 0, 0.40, 0.1)
    write_report(runs, out, figures=False)
    if not exchange:
        monkeypatch.setattr(output, "_exchange", lambda a, b: False)
    (runs / "tune").mkdir()  # a tuned study now: the next report adds the tuning table
    (runs / "tune" / "tuning.json").write_text(json.dumps(TUNING_RECORD))
    written = write_report(runs, out, figures=False)["written"]
    assert {"tuning.md", "tuning.csv"} <= set(written) == holds_this_report_only(out)
    assert no_temporary_folders(tmp_path)


@pytest.mark.parametrize(
    "placed",
    ["notes.txt", "main_table.md+notes.txt", "report.md+notes.txt", "report.md+figures/"],
)
def test_an_output_folder_with_foreign_files_is_refused_and_kept(tmp_path, capsys, placed):
    runs, out = tmp_path / "runs", tmp_path / "out"
    fake_run(runs, ["method.name=none"], 0, 0.40, 0.1)
    out.mkdir()
    for name in placed.split("+"):
        (out / name).mkdir() if name.endswith("/") else (out / name).write_text("mine")
    before = sorted(p.name for p in out.iterdir())
    assert main(["report", str(runs), "--out", str(out), "--no-figures"]) == 2
    err = capsys.readouterr().err
    assert "holds files no report wrote" in err and err.count("\n") == 1
    assert ("figures" if placed.endswith("/") else "notes.txt") in err
    assert sorted(p.name for p in out.iterdir()) == before and no_temporary_folders(tmp_path)


def test_a_file_added_to_a_report_folder_is_refused(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    fake_run(runs, ["method.name=none"], 0, 0.40, 0.1)
    write_report(runs, out, figures=False)
    (out / "my_notes.md").write_text("keep me")
    with pytest.raises(UserError, match=r"holds files no report wrote \(my_notes.md\)"):
        write_report(runs, out, figures=False)
    assert (out / "my_notes.md").read_text() == "keep me"


def test_a_report_written_before_manifests_is_replaced(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    fake_run(runs, ["method.name=none"], 0, 0.40, 0.1)
    out.mkdir()
    for name in ("report.md", "runs.csv", "main_table.md", "tuning.md", "tsne.png"):
        (out / name).write_text("old")  # an earlier version's report: only names a report writes
    write_report(runs, out, figures=False)
    files = holds_this_report_only(out)
    assert "tuning.md" not in files and "tsne.png" not in files


def test_a_failure_while_writing_keeps_the_previous_report(tmp_path, monkeypatch):
    runs, out = tmp_path / "runs", tmp_path / "out"
    fake_run(runs, ["method.name=none"], 0, 0.40, 0.1)
    write_report(runs, out, figures=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    fake_run(runs, ["method.name=sar"], 0, 0.60, 0.2)

    def crash(*args):
        raise RuntimeError("a figure failed")

    monkeypatch.setattr("lt_bench.report.write_figures", crash)
    with pytest.raises(RuntimeError, match="a figure failed"):
        write_report(runs, out, figures=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert no_temporary_folders(tmp_path)


def test_out_as_a_file_is_refused(tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs, ["method.name=none"], 0, 0.40, 0.1)
    (tmp_path / "out").write_text("a file")
    with pytest.raises(UserError, match="is a file, not a folder"):
        write_report(runs, tmp_path / "out", figures=False)
