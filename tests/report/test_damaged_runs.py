"""A damaged run file is named in one line (exit 2 from the CLI), never a traceback; the report
reads everything before it writes anything."""

import pytest

from lt_bench.cli import main
from lt_bench.errors import UserError
from lt_bench.report import write_report
from lt_bench.report.collect import collect

SAR = "synthetic_sar_ad48e97c6a"  # a done run with every file, the one the figures read features of


def test_a_damaged_final_record_lists_the_run_as_incomplete(fixture_runs, tmp_path):
    (fixture_runs / SAR / "final.json").write_text('{"status": "do')
    runs = collect(fixture_runs).set_index("run_dir")
    assert runs.loc[SAR, "status"] == "incomplete"
    assert "final.json is damaged (JSONDecodeError)" in runs.loc[SAR, "error"]
    write_report(fixture_runs, tmp_path, figures=False)
    report = (tmp_path / "report.md").read_text()
    assert f"- `{SAR}` (sar, synthetic@10, seed 0): incomplete: " in report


@pytest.mark.parametrize(
    "file_name, content",
    [
        ("separability.json", "{not json"),
        ("separability.json", '{"summary": {}}'),  # no groups
        ("config.yaml", "seed: [1\nmethod: {name: sar"),
        ("split.json", "[1, 2]"),
        ("per_class.csv", b"\xff\xfe\x00garbage"),
        ("metrics.jsonl", '{"epoch": 1}\n{"epoch": 2, "loss\n'),
        ("features.npz", b"PK\x03\x04 not a zip"),
    ],
)
def test_a_damaged_run_file_is_named_and_nothing_is_written(
    fixture_runs, tmp_path, file_name, content
):
    path = fixture_runs / SAR / file_name
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    with pytest.raises(UserError, match=f"{SAR}/{file_name}") as raised:
        write_report(fixture_runs, tmp_path / "out")
    assert "\n" not in str(raised.value) and not (tmp_path / "out").exists()


def test_a_damaged_tuning_record_is_named_by_the_cli(fixture_runs, tmp_path, capsys):
    (fixture_runs / "tune" / "tuning.json").write_text("{")
    assert main(["report", str(fixture_runs), "--out", str(tmp_path / "out"), "--no-figures"]) == 2
    err = capsys.readouterr().err
    assert "tune/tuning.json is damaged" in err and "Traceback" not in err
    assert list((tmp_path / "out").iterdir()) == []  # the CLI made the folder; nothing in it
