"""Runs the tables must not show are left out and named, each with why: finals of an earlier
tuning search, runs whose split.json disagrees with their config, stale copies moved aside by a
sweep; folders that are not runs are not read at all."""

import copy
import json

import pytest

from lt_bench import atomic
from lt_bench.cli import main
from lt_bench.report import write_report
from lt_bench.report.collect import collect
from lt_bench.rundir import RunDir
from tests.report.conftest import TUNING_RECORD
from tests.test_report_rows import fake_run, table_rows

# ----------------------------------------------------------------------------- tuned studies


def chosen(run_id: str, trial: int, **values) -> dict:
    """An arm's choice as tune.write_record writes it (and record_source copies into final.json)."""
    values = {key.replace("__", "."): value for key, value in values.items()}
    return {"trial": trial, "values": values, "run_id": run_id, "val_balanced": 0.5}


def tuned_study(runs, choices: dict[str, dict]) -> None:
    """tune/tuning.json with ``choices`` (arm -> its current choice)."""
    record = copy.deepcopy(TUNING_RECORD)
    trial = record["arms"][0]["trials"][0]
    record["arms"] = [
        {"arm": arm, "budget_epochs": 4, "chosen": choice, "trials": [trial]}
        for arm, choice in choices.items()
    ]
    atomic.write_json(runs / "tune" / "tuning.json", record)


def test_finals_of_an_earlier_search_are_left_out_and_named(tmp_path, capsys):
    """The search space was edited and the sweep rerun: the new search chose other values, and
    the finals run with the old ones stay on disk. Only the current finals are table rows."""
    runs = tmp_path / "runs"
    old_none, new_none = (
        chosen("t_none_0", 0, optim__lr=0.02),
        chosen("t_none_5", 1, optim__lr=0.05),
    )
    new_sar = chosen("t_sar_3", 1, optim__lr=0.1, method__trade_off=0.2)
    earlier = []
    for seed in (0, 1):
        earlier.append(
            fake_run(runs, ["method.name=none", "optim.lr=0.02"], seed, 0.87, 0.83, tuned=old_none)
        )
        fake_run(runs, ["method.name=none", "optim.lr=0.05"], seed, 0.40, 0.1, tuned=new_none)
        sar = ["method.name=sar", "optim.lr=0.1", "method.trade_off=0.2"]
        fake_run(runs, sar, seed, 0.50, 0.2, tuned=new_sar)
    tuned_study(runs, {"method.name=none": new_none, "method.name=sar": new_sar})

    frame = collect(runs)
    assert frame.status.value_counts().to_dict() == {"done": 4, "superseded": 2}
    assert set(frame.loc[frame.status == "superseded", "run_dir"]) == {f.name for f in earlier}
    rows = ["none", "sar"]  # one row per arm: the earlier lr is no setting, a tuned one no label
    assert sorted(set(frame.loc[frame.status == "done", "label"])) == rows

    assert main(["report", str(runs), "--out", str(tmp_path / "out"), "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert table_rows(tmp_path / "out" / "main_table.md") == rows
    assert "87.0" not in (tmp_path / "out" / "main_table.md").read_text()
    names = ", ".join(sorted(f.name for f in earlier))
    line = f"2 finals from an earlier search left out: {names} ("
    report = (tmp_path / "out" / "report.md").read_text()
    assert line in printed and f"- {line}" in report
    assert "Not in the tables: 2 superseded (each named below)." in report
    assert "tune/tuning.json no longer chooses" in printed


def test_finals_without_a_tuning_record_or_with_the_current_choice_stay(tmp_path):
    runs = tmp_path / "runs"
    choice = chosen("t_none_5", 1, optim__lr=0.05)
    fake_run(runs, ["method.name=none", "optim.lr=0.05"], 0, 0.40, 0.1, tuned=choice)
    assert list(collect(runs).status) == ["done"]  # no tune/tuning.json: not checked
    tuned_study(runs, {"method.name=none": {**choice, "val_balanced": 0.5}})
    assert list(collect(runs).status) == ["done"]
    tuned_study(runs, {"method.name=none": None})  # the edited search has not chosen yet
    assert list(collect(runs).status) == ["superseded"]


# ----------------------------------------------------------------------------- split checks


def with_split(runs, ratio_in_config: int, **split) -> str:
    folder = fake_run(runs, ["method.name=none", f"data.ratio={ratio_in_config}"], 0, 0.4, 0.1)
    manifest = {"ratio": 100.0, "profile": "exp", "seed": 0, "sha256": "ab" * 32, **split}
    atomic.write_json(folder / "split.json", manifest)
    return folder.name


@pytest.mark.parametrize(
    "config_ratio, split, shown",
    [
        (100, {"ratio": 50.0, "sha256": "0" * 64}, "ratio 50 vs 100"),
        (100, {"profile": "step"}, "profile step vs exp"),
        (100, {"seed": 3}, "seed 3 vs 0"),
    ],
)
def test_a_split_that_disagrees_with_its_config_is_damaged(tmp_path, config_ratio, split, shown):
    runs = tmp_path / "runs"
    name = with_split(runs, config_ratio, **split)
    fake_run(runs, ["method.name=sar"], 0, 0.6, 0.2)
    frame = collect(runs).set_index("run_dir")
    assert frame.loc[name, "status"] == "damaged"
    assert frame.loc[name, "error"] == (
        f"{runs / name / 'split.json'} disagrees with config.yaml ({shown}); "
        "delete the run folder and rerun it"
    )
    result = write_report(runs, tmp_path / "out", figures=False)
    assert table_rows(tmp_path / "out" / "main_table.md") == ["sar"]
    assert f"  damaged: {name}: {frame.loc[name, 'error']}" in result["skipped"]
    assert f"- `{name}`: damaged: " in (tmp_path / "out" / "report.md").read_text()


def test_a_split_that_agrees_or_comes_from_a_list_file_is_reported(tmp_path):
    runs = tmp_path / "runs"
    agreeing = with_split(runs, 100)
    listed = fake_run(runs, ["method.name=sar", "data.ratio=10"], 0, 0.6, 0.2)
    atomic.write_json(listed / "split.json", {"ratio": 256.0, "profile": None})  # its list's ratio
    frame = collect(runs).set_index("run_dir")
    assert (frame.status == "done").all()
    assert frame.loc[agreeing, "dataset"] == "mnist_lt@100"
    assert frame.loc[listed.name, "dataset"] == "mnist_lt@256"


# ----------------------------------------------------------------------------- folders


def test_stale_copies_and_folders_without_a_config_are_not_rows(tmp_path, capsys):
    runs = tmp_path / "runs"
    run = fake_run(runs, ["method.name=none"], 0, 0.40, 0.1)
    stale = run.with_name(f"{run.name}.stale-1")  # as sweep --rerun-stale moves a run aside
    stale.mkdir()
    for path in run.iterdir():
        (stale / path.name).write_bytes(path.read_bytes())
    (stale.parent / f"{run.name}__crt.stale-2").mkdir()
    child = stale.parent / f"{run.name}__crt.stale-2" / "nested"  # anything below a stale copy
    atomic.write_text(child / "config.yaml", (run / "config.yaml").read_text())
    (runs / "notes").mkdir()  # not a run: no config.yaml
    atomic.write_json(runs / "notes" / "final.json", {"status": "done"})
    RunDir(runs / "killed_before_config").path.mkdir()

    assert list(collect(runs).run_dir) == [run.name]  # one row: no duplicate seed refused
    assert main(["report", str(runs), "--out", str(tmp_path / "out"), "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert "1 runs (1 done)" in printed
    assert f"2 stale copies skipped: {run.name}.stale-1, {run.name}__crt.stale-2/nested" in printed
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Runs left out" in report and "2 stale copies skipped" in report
    assert json.loads((tmp_path / "out" / ".lt-bench-report.json").read_text())["files"]
