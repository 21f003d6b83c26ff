"""Equal-budget random search selected on validation only: deterministic draws, idempotent
reruns, selection that never reads test metrics, equal budgets or a refusal, and the record."""

import json

import pytest
import yaml

from lt_bench.cli import main
from lt_bench.errors import UserError
from lt_bench.study import arm_key, choose, draw, load_study, trial_points, trial_score
from tests.test_sweep import BASE

STUDY = """
name: tiny_tuned
base: base.yaml
fixed: {optim.epochs: 1}
arms:
  - {method.name: none}
  - {method.name: sar}
grid:
  seed: [0, 1]
tune:
  trials: 2
  seed: 0
  space:
    optim.lr: {log_uniform: [0.01, 0.2]}
  space_by_method:
    sar: {method.trade_off: {log_uniform: [0.01, 1.0]}}
"""


@pytest.fixture
def study_file(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "study.yaml").write_text(STUDY)
    return tmp_path / "study.yaml"


SPACE = {
    "a": {"log_uniform": [0.01, 0.2]},
    "b": {"uniform": [-1, 1]},
    "c": {"int_uniform": [2, 5]},
    "d": {"choice": ["x", "y", "z"]},
}


def test_draws_are_a_pure_function_of_study_arm_and_trial():
    first = draw("s", "method.name=sar", 0, SPACE)
    assert first == draw("s", "method.name=sar", 0, SPACE)
    assert first != draw("s", "method.name=sar", 1, SPACE)
    assert first != draw("s", "method.name=none", 0, SPACE)
    assert first != draw("other", "method.name=sar", 0, SPACE)
    for trial in range(50):
        values = draw("s", "arm", trial, SPACE)
        assert 0.01 <= values["a"] <= 0.2 and -1 <= values["b"] <= 1
        assert isinstance(values["c"], int) and 2 <= values["c"] <= 5 and values["d"] in "xyz"
    assert {draw("s", "arm", t, SPACE)["c"] for t in range(50)} == {2, 3, 4, 5}  # both ends


def test_a_tuned_sweep_runs_trials_then_finals_and_reruns_nothing(study_file, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["sweep", str(study_file), "--runs-dir", str(runs), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "final runs wait for the tuning trials (0 of 4 done)" in out and "4 pending" in out
    assert not runs.exists()  # a dry run writes nothing

    assert main(["sweep", str(study_file), "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "tiny_tuned tuning: 4 runs" in out and "tiny_tuned final: 4 runs" in out
    record = json.loads((runs / "tune" / "tuning.json").read_text())
    assert [arm["budget_epochs"] for arm in record["arms"]] == [2, 2]
    for arm in record["arms"]:
        best = max(arm["trials"], key=lambda t: (t["val_balanced"], -t["trial"]))
        assert arm["chosen"]["trial"] == best["trial"]
    finals = sorted(p for p in runs.iterdir() if p.name.startswith("synthetic_"))
    assert len(finals) == 4
    for folder in finals:
        final = json.loads((folder / "final.json").read_text())
        method = yaml.safe_load((folder / "config.yaml").read_text())["method"]["name"]
        arm = next(a for a in record["arms"] if a["arm"] == f"method.name={method}")
        assert final["tuned"] == arm["chosen"]
        config = (folder / "config.yaml").read_text()
        assert f"lr: {arm['chosen']['values']['optim.lr']}" in config

    stamps = {p: p.stat().st_mtime_ns for p in runs.rglob("final.json")}
    assert main(["sweep", str(study_file), "--runs-dir", str(runs)]) == 0
    assert stamps == {p: p.stat().st_mtime_ns for p in runs.rglob("final.json")}  # idempotent

    assert main(["report", str(runs), "--out", str(tmp_path / "report"), "--no-figures"]) == 0
    tuning = (tmp_path / "report" / "tuning.md").read_text()
    assert "2 trials per arm" in tuning and "(equal: True)" in tuning and "**" in tuning
    table = (tmp_path / "report" / "main_table.md").read_text()
    assert table.count("| 2 |") == 2  # two rows (none, sar), two seeds each: trials not mixed in


def _trial_dir(path, val: float, test: float):
    path.mkdir(parents=True)
    (path / "final.json").write_text(json.dumps({"status": "done", "top1": test, "balanced": test}))
    (path / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "val/balanced": val}) + "\n")


def test_selection_reads_validation_never_test(tmp_path):
    from types import SimpleNamespace

    # Trial 0 is the test-best, trial 1 the validation-best: the choice is trial 1.
    _trial_dir(tmp_path / "t0", val=0.50, test=0.90)
    _trial_dir(tmp_path / "t1", val=0.70, test=0.40)
    trials = [SimpleNamespace(arm="a", number=i) for i in (0, 1)]
    scores = {i: trial_score(tmp_path / f"t{i}", "last") for i in (0, 1)}
    assert scores == {0: 0.50, 1: 0.70}
    assert choose(trials, scores)["a"].number == 1
    assert choose(trials, {0: 0.5, 1: None}) is None  # no choice until every trial is scored
    assert choose(trials, {0: 0.6, 1: 0.6})["a"].number == 0  # ties: the earlier trial


def test_unequal_budgets_are_refused(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "s.yaml").write_text(
        STUDY.replace("  - {method.name: sar}", "  - {method.name: sar, optim.epochs: 2}")
    )
    with pytest.raises(UserError, match="tuning budgets differ between arms"):
        trial_points(load_study(tmp_path / "s.yaml"), tmp_path / "runs")


@pytest.mark.parametrize(
    "tune, message",
    [
        ("{trials: 0, space: {}}", "tune.trials=0 must be an integer from 1 to 1000"),
        ("{trials: 2, space: {optim.lr: {normal: [0, 1]}}}", "must be one of log_uniform"),
        ("{trials: 2, space: {optim.lr: {log_uniform: [0, 1]}}}", "log_uniform needs low > 0"),
        ("{trials: 2, spaces: {}}", "tune has unknown keys ['spaces']"),
    ],
)
def test_bad_tune_sections(tmp_path, tune, message):
    (tmp_path / "s.yaml").write_text(f"grid: {{seed: [0]}}\ntune: {tune}\n")
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_study(tmp_path / "s.yaml")


def test_arm_names_leave_out_the_seed():
    assert (
        arm_key({"seed": 3, "method.name": "sar", "data.ratio": 100})
        == "data.ratio=100, method.name=sar"
    )


def test_an_arm_keeps_its_own_values_and_tunes_at_the_given_point(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "s.yaml").write_text(
        STUDY.replace("  - {method.name: sar}", "  - {method.name: sar, method.trade_off: 0}")
        .replace("  seed: [0, 1]", "  seed: [0, 1]\n  data.ratio: [2, 4]")
        .replace("  seed: 0\n", "  seed: 0\n  at: {data.ratio: 4}\n")
    )
    trials = trial_points(load_study(tmp_path / "s.yaml"), tmp_path / "runs")
    assert len(trials) == 4  # 2 arms x 2 trials: the ratio is not an arm, it is fixed at 4
    for trial in trials:
        assert trial.point.cfg.data.ratio == 4
        if trial.point.cfg.method.name == "sar":
            assert trial.point.cfg.method.trade_off == 0 and "method.trade_off" not in trial.values
