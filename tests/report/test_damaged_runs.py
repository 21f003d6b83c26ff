"""A damaged run file is named in one line, never a traceback: the run is left out of the tables
and named with its file (or, for final.json, listed as incomplete: it can resume); a damaged
study-wide file (the tuning record) refuses the report with the output folder untouched."""

import pytest

from lt_bench.cli import main
from lt_bench.report import read_figure_inputs, write_report
from lt_bench.report.collect import collect

SAR = "synthetic_sar_ad48e97c6a"  # a done run with every file, the one the figures read features of


def truncated(path) -> bytes:
    return path.read_bytes()[: path.stat().st_size // 2]


# Every file of a run, damaged as a crash, a full disk or an editor leaves it: (file, content or a
# function of the file's path, the status the run gets).
DAMAGE = [
    ("final.json", truncated, "incomplete"),
    ("config.yaml", "seed: [1\nmethod: {name: sar", "damaged"),
    ("config.yaml", "- 1\n- 2\n", "damaged"),  # YAML, but not a config
    ("split.json", "[1, 2]", "damaged"),
    ("split.json", truncated, "damaged"),
    ("metrics.jsonl", '{"epoch": 1}\n{"epoch": 2, "loss\n', "damaged"),
    ("metrics.jsonl", '{"epoch": 1}\n5\n', "damaged"),  # JSON, but not a row
    ("features.npz", truncated, "damaged"),
    ("features.npz", b"PK\x03\x04 not a zip", "damaged"),
    ("per_class.csv", b"\xff\xfe\x00garbage", "damaged"),
    ("per_class.csv", "class,name\n0,0\n", "damaged"),  # no accuracy column
    ("separability.json", truncated, "damaged"),
    ("separability.json", '{"summary": {}}', "damaged"),  # no groups
]


@pytest.mark.parametrize(
    "file_name, content, status", DAMAGE, ids=[f"{d[0]}-{i}" for i, d in enumerate(DAMAGE)]
)
def test_a_damaged_run_file_leaves_the_run_out_and_names_it(
    fixture_runs, tmp_path, file_name, content, status
):
    path = fixture_runs / SAR / file_name
    content = content(path) if callable(content) else content
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)

    runs = collect(fixture_runs).set_index("run_dir")
    assert runs.loc[SAR, "status"] == status
    error = runs.loc[SAR, "error"]
    assert f"{SAR}/{file_name}" in error and "damaged" in error and "\n" not in error
    done = runs[runs.status == "done"].reset_index()
    assert SAR not in set(done.run_dir) and len(done) == 7
    read_figure_inputs(done, fixture_runs)  # the figures read the other runs' files only

    out = tmp_path / "out"
    skipped = write_report(fixture_runs, out, figures=False)["skipped"]  # lt-bench report prints
    assert f"  {status}: {SAR}: {error}" in skipped
    report = (out / "report.md").read_text()
    assert f"`{SAR}`" in report and error in report and "Traceback" not in report


def test_a_damaged_final_record_lists_the_run_as_incomplete(fixture_runs, tmp_path):
    (fixture_runs / SAR / "final.json").write_text('{"status": "do')
    runs = collect(fixture_runs).set_index("run_dir")
    assert runs.loc[SAR, "status"] == "incomplete"
    assert "final.json is damaged (JSONDecodeError)" in runs.loc[SAR, "error"]
    write_report(fixture_runs, tmp_path / "out", figures=False)
    report = (tmp_path / "out" / "report.md").read_text()
    assert f"- `{SAR}` (sar, synthetic@10, seed 0): incomplete: " in report


def test_a_report_of_damaged_runs_only_names_them(tmp_path, capsys):
    """Not one readable config: the report still says which folders and why."""
    for name in ("run_a", "run_b"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "config.yaml").write_text("- not\n- a config\n")
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "2 runs (2 damaged); wrote 2 files" in printed
    assert "  damaged: run_a: " in printed and "run_b/config.yaml is damaged" in printed


def test_a_damaged_tuning_record_is_named_by_the_cli(fixture_runs, tmp_path, capsys):
    (fixture_runs / "tune" / "tuning.json").write_text("{")
    assert main(["report", str(fixture_runs), "--out", str(tmp_path / "out"), "--no-figures"]) == 2
    err = capsys.readouterr().err
    assert "tune/tuning.json is damaged" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before the output folder was made
