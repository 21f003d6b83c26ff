"""``lt-bench sweep STUDY key=value ...``: command-line overrides reach every point (tuning trials
and finals too), change run ids only through identity keys, and never replace a value the study
varies."""

import pytest

from lt_bench.cli import main
from lt_bench.config import run_id
from lt_bench.errors import UserError
from lt_bench.rundir import status as run_status
from lt_bench.study import expand, load_study, status_counts, trial_points
from tests.test_sweep import BASE, STUDY
from tests.test_tune import STUDY as TUNED_STUDY


@pytest.fixture
def study_file(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "study.yaml").write_text(STUDY)
    (tmp_path / "tuned.yaml").write_text(TUNED_STUDY)
    return tmp_path / "study.yaml"


def test_an_identity_override_changes_every_point_and_its_run_id(study_file, tmp_path):
    plain = expand(load_study(study_file), tmp_path / "runs")
    changed = expand(load_study(study_file, ["optim.lr=0.02", "data.ratio=2"]), tmp_path / "runs")
    assert [p.overrides for p in changed] == [p.overrides for p in plain]
    assert all(p.cfg.optim.lr == 0.02 and p.cfg.data.ratio == 2 for p in changed)
    assert all(p.cfg.optim.epochs == 1 for p in changed)  # fixed still applies
    assert not {run_id(p.cfg) for p in plain} & {run_id(p.cfg) for p in changed}
    assert len({run_id(p.cfg) for p in changed}) == 4


def test_a_command_line_override_wins_over_fixed(study_file, tmp_path):
    (point, *_) = expand(load_study(study_file, ["optim.epochs=3"]), tmp_path / "runs")
    assert point.cfg.optim.epochs == 3


def test_a_non_identity_override_keeps_every_run_id(study_file, tmp_path):
    plain = expand(load_study(study_file), tmp_path / "runs")
    logged = expand(
        load_study(study_file, ["train.loggers=[mlflow]", "train.progress=true"]), tmp_path / "runs"
    )
    assert all(list(p.cfg.train.loggers) == ["mlflow"] and p.cfg.train.progress for p in logged)
    assert [p.run_dir for p in logged] == [p.run_dir for p in plain]


def test_overrides_reach_tuning_trials_and_finals(study_file, tmp_path):
    study = load_study(tmp_path / "tuned.yaml", ["optim.epochs=2", "optim.momentum=0.5"])
    trials = trial_points(study, tmp_path / "runs")
    assert len(trials) == 4
    for trial in trials:  # the trials' own seed and selection stay the tuning's
        cfg = trial.point.cfg
        assert cfg.optim.epochs == 2 and cfg.optim.momentum == 0.5
        assert cfg.seed == 1000 and cfg.train.select == "best_val"
    finals = expand(study, tmp_path / "runs", tuned=lambda overrides: {"optim.lr": 0.1})
    assert all(p.cfg.optim.epochs == 2 and p.cfg.optim.lr == 0.1 for p in finals)
    assert [p.cfg.seed for p in finals] == [0, 1, 0, 1]


@pytest.mark.parametrize(
    ("study", "override", "named"),
    [
        ("study.yaml", "seed=3", "'seed' is a grid key"),
        ("study.yaml", "method={name: sar}", "'method.name' is a grid key"),
        ("tuned.yaml", "method.name=center", "'method.name' is set by arm"),
        ("tuned.yaml", "optim.lr=0.1", "'optim.lr' is searched by tune"),
        ("tuned.yaml", "method.trade_off=0.5", "'method.trade_off' is searched by tune"),
        ("study.yaml", "out_dir=elsewhere", "pass --runs-dir instead"),
    ],
)
def test_an_override_of_a_varied_key_is_refused_in_one_line(
    study_file, tmp_path, capsys, study, override, named
):
    runs = tmp_path / "runs"
    assert main(["sweep", str(tmp_path / study), override, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err and not runs.exists()
    assert "edit the study file" in err or "--runs-dir" in err


def test_a_bad_override_is_named(study_file):
    with pytest.raises(
        UserError, match="with overrides optim.lrr=1: unknown config key 'optim.lrr'"
    ):
        load_study(study_file, ["optim.lrr=1"])
    with pytest.raises(UserError, match="is not key=value"):
        load_study(study_file, ["optim.lr"])


def test_a_sweep_with_an_override_trains_and_its_status_finds_the_runs(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text(BASE)
    study = tmp_path / "study.yaml"
    study.write_text("base: base.yaml\nfixed: {optim.epochs: 1}\ngrid:\n  seed: [0]\n")
    runs = tmp_path / "runs"
    given = [str(study), "--runs-dir", str(runs)]
    assert main(["sweep", *given, "optim.lr=0.02", "train.loggers=[tensorboard]"]) == 0
    (point,) = expand(load_study(study, ["optim.lr=0.02"]), runs)
    assert run_status(point.run_dir) == "done"
    saved = (point.run_dir / "config.yaml").read_text()
    assert "lr: 0.02" in saved and "tensorboard" in saved
    capsys.readouterr()
    assert main(["sweep", *given, "--status", "optim.lr=0.02", "train.loggers=[tensorboard]"]) == 0
    assert "1 runs in" in (out := capsys.readouterr().out) and "1 done" in out
    assert main(["sweep", *given, "--status", "optim.lr=0.02"]) == 0  # loggers: same run
    assert "1 done" in capsys.readouterr().out
    assert main(["sweep", *given, "--dry-run", "optim.lr=0.02"]) == 0
    assert f"[done] {point.run_dir.name}" in capsys.readouterr().out
    assert main(["sweep", *given, "--status"]) == 0  # without the override: another point
    assert "0 done" in capsys.readouterr().out
    assert status_counts(expand(load_study(study), runs)) == {"pending": 1}
