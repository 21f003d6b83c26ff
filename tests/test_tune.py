"""Equal-budget random search selected on validation only: deterministic draws, idempotent
reruns, selection that never reads test metrics, equal budgets or a refusal, and the record."""

import json

import pytest
import yaml

from lt_bench.cli import main
from lt_bench.errors import UserError
from lt_bench.study import (
    arm_key,
    choose,
    draw,
    edges,
    load_study,
    record_frame,
    record_markdown,
    trial_points,
    trial_score,
    write_record,
)
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


def test_draws_are_a_pure_function_of_study_key_and_trial():
    first = draw("s", 0, SPACE, "sar")
    assert first == draw("s", 0, SPACE, "sar")
    assert first != draw("s", 1, SPACE, "sar")
    assert first == draw("s", 0, SPACE, "none")  # shared keys: the method does not matter
    assert first != draw("other", 0, SPACE, "sar")
    # A key's value does not depend on the other keys searched with it.
    assert draw("s", 3, {"a": SPACE["a"]}, "sar")["a"] == draw("s", 3, SPACE, "sar")["a"]
    for trial in range(50):
        values = draw("s", trial, SPACE, "x")
        assert 0.01 <= values["a"] <= 0.2 and -1 <= values["b"] <= 1
        assert isinstance(values["c"], int) and 2 <= values["c"] <= 5 and values["d"] in "xyz"
    assert {draw("s", t, SPACE, "x")["c"] for t in range(50)} == {2, 3, 4, 5}  # both ends


def test_method_keys_draw_one_stream_per_method():
    own = {"t": {"log_uniform": [0.01, 1.0]}}
    space = {**SPACE, **own}
    sar = [draw("s", k, space, "sar", own) for k in range(8)]
    center = [draw("s", k, space, "center", own) for k in range(8)]
    assert [v["a"] for v in sar] == [v["a"] for v in center]  # shared key: common
    assert [v["t"] for v in sar] != [v["t"] for v in center]  # own key: per method


CRN_STUDY = """
name: crn
base: base.yaml
fixed: {optim.epochs: 1}
arms:
  - {method.name: none}
  - {method.name: sar}
  - {method.name: sar, loss.name: balanced_softmax}
  - {method.name: center}
grid:
  seed: [0, 1, 2]
tune:
  space:
    optim.lr: {log_uniform: [0.01, 0.2]}
    optim.weight_decay: {log_uniform: [1.0e-5, 1.0e-3]}
  space_by_method:
    sar: {method.trade_off: {log_uniform: [0.01, 1.0]}}
    center: {method.weight: {log_uniform: [0.001, 0.1]}}
"""


def test_arms_receive_identical_shared_draws_per_trial(tmp_path):
    """Common random numbers: trial k has the same lr and weight decay in every arm, the same
    trade-off in both sar arms; 8 trials per arm by default, trained with seed 1000."""
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "s.yaml").write_text(CRN_STUDY)
    trials = trial_points(load_study(tmp_path / "s.yaml"), tmp_path / "runs")
    by_arm: dict = {}
    for trial in trials:
        by_arm.setdefault(trial.arm, []).append(trial)
    assert len(by_arm) == 4 and {len(t) for t in by_arm.values()} == {8}
    for k in range(8):
        row = [arm[k] for arm in by_arm.values()]
        assert len({(t.values["optim.lr"], t.values["optim.weight_decay"]) for t in row}) == 1
        lrs = {t.point.cfg.optim.lr for t in row}
        assert lrs == {row[0].values["optim.lr"]}
        sar = [t for t in row if t.point.cfg.method.name == "sar"]
        assert (
            len(sar) == 2 and sar[0].values["method.trade_off"] == sar[1].values["method.trade_off"]
        )
        assert all(t.point.cfg.seed == 1000 for t in row)
    assert len({t.values["optim.lr"] for t in by_arm["method.name=none"]}) == 8


def test_finals_never_reuse_a_trial_seed(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "s.yaml").write_text(CRN_STUDY.replace("tune:\n", "tune:\n  seed: 2\n"))
    with pytest.raises(UserError, match="final runs use seed 2, the tuning trials' seed"):
        trial_points(load_study(tmp_path / "s.yaml"), tmp_path / "runs")
    # No seed in the grid: the finals use the base config's seed (0), refused as tune.seed too.
    (tmp_path / "t.yaml").write_text(
        CRN_STUDY.replace("  seed: [0, 1, 2]", "  data.ratio: [4]").replace(
            "tune:\n", "tune:\n  seed: 0\n"
        )
    )
    with pytest.raises(UserError, match="final runs use seed 0"):
        trial_points(load_study(tmp_path / "t.yaml"), tmp_path / "runs")


def test_grid_strategy_gives_every_arm_the_same_grid(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE)
    study = CRN_STUDY.split("tune:")[0] + (
        "tune:\n  strategy: grid\n  space:\n    optim.lr: {choice: [0.01, 0.05, 0.1]}\n"
        "    optim.weight_decay: {choice: [1.0e-4, 5.0e-4]}\n"
    )
    (tmp_path / "s.yaml").write_text(study)
    loaded = load_study(tmp_path / "s.yaml")
    assert loaded.tune.trials == 6
    trials = trial_points(loaded, tmp_path / "runs")
    grids = {}
    for trial in trials:
        grids.setdefault(trial.arm, []).append(trial.values)
    assert len(grids) == 4 and all(g == grids["method.name=none"] for g in grids.values())
    assert len({tuple(v.values()) for v in grids["method.name=none"]}) == 6
    (tmp_path / "bad.yaml").write_text(
        study.replace("{choice: [0.01, 0.05, 0.1]}", "{log_uniform: [0.01, 0.1]}")
    )
    with pytest.raises(UserError, match="a grid needs a choice list"):
        load_study(tmp_path / "bad.yaml")


def test_tuning_without_validation_is_refused(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "s.yaml").write_text(
        CRN_STUDY.replace(
            "fixed: {optim.epochs: 1}", "fixed: {optim.epochs: 1, data.val_per_class: 0}"
        )
    )
    with pytest.raises(UserError, match="tuning: train.select=best_val needs validation images"):
        trial_points(load_study(tmp_path / "s.yaml"), tmp_path / "runs")


def test_edge_choices_are_flagged():
    record = {
        "space": {"optim.lr": {"log_uniform": [0.01, 0.2]}},
        "space_by_method": {"sar": {"method.trade_off": {"choice": [0.0, 0.1, 1.0]}}},
    }
    assert edges({"optim.lr": 0.19}, record) == ["optim.lr=0.19 at the high end of [0.01, 0.2]"]
    assert edges({"optim.lr": 0.05}, record) == []
    assert edges({"optim.lr": 0.0105}, record)[0].endswith("at the low end of [0.01, 0.2]")
    assert edges({"method.trade_off": 1.0}, record, "sar") == [
        "method.trade_off=1.0 at an end of [0.0, 0.1, 1.0]"
    ]
    assert edges({"method.trade_off": 0.1}, record, "sar") == []
    # Each method's own range: center's weight is judged on center's space, not another method's.
    record["space_by_method"]["center"] = {"method.weight": {"log_uniform": [0.001, 0.1]}}
    record["space_by_method"]["etf"] = {"method.weight": {"log_uniform": [0.01, 1.0]}}
    assert edges({"method.weight": 0.0019}, record, "center") == []
    assert edges({"method.weight": 0.0125}, record, "etf")[0].endswith("low end of [0.01, 1.0]")


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
        assert (
            final["tuned"]["trial_seed"]
            == 1000
            != yaml.safe_load((folder / "config.yaml").read_text())["seed"]
        )
        config = (folder / "config.yaml").read_text()
        assert f"lr: {arm['chosen']['values']['optim.lr']}" in config
    trial_dirs = {t["run_dir"] for arm in record["arms"] for t in arm["trials"]}
    trial_ids = {t["run_id"] for arm in record["arms"] for t in arm["trials"]}
    assert trial_dirs.isdisjoint(p.name for p in finals)  # a final and a trial never share a run
    assert all(not p.name.endswith(tuple(trial_ids)) for p in finals)

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
        .replace("  trials: 2\n", "  trials: 2\n  at: {data.ratio: 4}\n")
    )
    trials = trial_points(load_study(tmp_path / "s.yaml"), tmp_path / "runs")
    assert len(trials) == 4  # 2 arms x 2 trials: the ratio is not an arm, it is fixed at 4
    for trial in trials:
        assert trial.point.cfg.data.ratio == 4
        if trial.point.cfg.method.name == "sar":
            assert trial.point.cfg.method.trade_off == 0 and "method.trade_off" not in trial.values


def test_the_tuning_record_and_table_name_each_arm_by_its_label(tmp_path):
    """An arm's study label reaches tuning.json, tuning.md and tuning.csv beside its overrides;
    an arm without one keeps its overrides as its name."""
    (tmp_path / "base.yaml").write_text(BASE)
    labelled = STUDY.replace("  - {method.name: sar}", "  - {method.name: sar, label: SAR}")
    (tmp_path / "s.yaml").write_text(labelled)
    study = load_study(tmp_path / "s.yaml")
    trials = trial_points(study, tmp_path / "runs")
    record = write_record(study, tmp_path / "runs", trials, {}, None)
    assert [arm.get("label") for arm in record["arms"]] == [None, "SAR"]
    markdown = record_markdown(record)
    assert "| SAR (method.name=sar) | – |" in markdown and "| method.name=none | – |" in markdown
    frame = record_frame(record)
    assert set(frame.loc[frame.arm == "method.name=sar", "label"]) == {"SAR"}
    assert frame.loc[frame.arm == "method.name=none", "label"].isna().all()
