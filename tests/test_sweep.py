import json

import pytest

from lt_bench.cli import main
from lt_bench.config import run_id
from lt_bench.errors import UserError
from lt_bench.rundir import status as run_status
from lt_bench.study import expand, launch, load_study, status_counts

STUDY = """
name: tiny
base: base.yaml
fixed: {optim.epochs: 1}
grid:
  method.name: [none, center]
  seed: [0, 1]
"""

BASE = """
data:
  name: synthetic
  options: {num_classes: 4, image_size: 8, train_per_class: 20, test_per_class: 5}
  ratio: 4
  batch_size: 16
  val_per_class: 2
model: {name: small_cnn}
optim: {lr: 0.05, warmup_epochs: 0}
train: {progress: false}
"""


@pytest.fixture
def study_file(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "study.yaml").write_text(STUDY)
    return tmp_path / "study.yaml"


def test_grid_expansion_and_stable_unique_run_ids(study_file, tmp_path):
    points = expand(load_study(study_file), tmp_path / "runs")
    assert [p.overrides for p in points] == [
        {"method.name": "none", "seed": 0},
        {"method.name": "none", "seed": 1},
        {"method.name": "center", "seed": 0},
        {"method.name": "center", "seed": 1},
    ]
    assert all(p.cfg.optim.epochs == 1 and p.cfg.data.ratio == 4 for p in points)
    ids = [run_id(p.cfg) for p in points]
    assert len(set(ids)) == 4
    assert ids == [run_id(p.cfg) for p in expand(load_study(study_file), tmp_path / "elsewhere")]
    assert points[0].run_dir == tmp_path / "runs" / f"synthetic_none_s0_{ids[0]}"


def test_sweep_runs_only_what_is_not_done(study_file, tmp_path, capsys):
    runs = tmp_path / "runs"
    points = expand(load_study(study_file), runs)
    assert status_counts(points) == {"pending": 4}
    launch(points[:3], progress=False)
    assert status_counts(points) == {"done": 3, "pending": 1}
    stamps = [(p.run_dir / "final.json").stat().st_mtime_ns for p in points[:3]]
    assert main(["sweep", str(study_file), "--runs-dir", str(runs)]) == 0
    assert "4 runs" in capsys.readouterr().out and status_counts(points) == {"done": 4}
    assert [
        (p.run_dir / "final.json").stat().st_mtime_ns for p in points[:3]
    ] == stamps  # not run again
    assert launch(points, progress=False) == []


def test_failed_runs_keep_their_error_and_are_reported(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "study.yaml").write_text(
        "base: base.yaml\nfixed: {optim.epochs: 1}\ngrid:\n  optim.lr: [0.05, 1.0e+38]\n"
    )
    runs = tmp_path / "runs"
    assert main(["sweep", str(tmp_path / "study.yaml"), "--runs-dir", str(runs)]) == 1
    out = capsys.readouterr().out
    assert "1 done, 1 failed" in out and "failed: " in out and "became non-finite" in out
    failed = expand(load_study(tmp_path / "study.yaml"), runs)[1]
    assert run_status(failed.run_dir) == "failed" and (failed.run_dir / "final.json").exists()
    assert "non-finite" in json.loads((failed.run_dir / "final.json").read_text())["error"]
    assert main(["sweep", str(tmp_path / "study.yaml"), "--runs-dir", str(runs), "--status"]) == 0
    assert "failed: " in capsys.readouterr().out


def test_sweep_status_and_dry_run_launch_nothing(study_file, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["sweep", str(study_file), "--runs-dir", str(runs), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "0 done, 0 failed, 0 incomplete, 4 pending" in out and out.count("[pending]") == 4
    assert main(["sweep", str(study_file), "--runs-dir", str(runs), "--status"]) == 0
    assert not runs.exists()


def test_an_interrupted_run_counts_as_incomplete_and_is_resumed(study_file, tmp_path):
    """Ctrl-C (KeyboardInterrupt) leaves a run resumable; any exception leaves it failed with its
    error; a relaunch finishes both."""
    from lt_bench.engine import train

    points = expand(load_study(study_file), tmp_path / "runs")

    class Broken(Exception):
        pass

    for point, raised, status in (
        (points[0], KeyboardInterrupt, "incomplete"),
        (points[1], Broken, "failed"),
    ):
        cfg = point.cfg.copy()
        cfg.optim.epochs = 1

        def stop(epoch, row, raised=raised):
            raise raised

        with pytest.raises(raised):
            train(cfg, on_epoch_end=stop)
        assert run_status(point.run_dir) == status
    launch(points[:2], progress=False)
    assert run_status(points[0].run_dir) == run_status(points[1].run_dir) == "done"


def test_slurm_executor_through_submitit_local(study_file, tmp_path):
    points = expand(load_study(study_file), tmp_path / "runs")[:2]
    results = launch(
        points,
        executor="submitit_local",
        jobs=2,
        slurm={"time_min": 5},
        folder=tmp_path / "submitit",
    )
    assert [r["status"] for r in results] == ["done", "done"]
    assert status_counts(points) == {"done": 2}


def test_bad_study_files(tmp_path):
    (tmp_path / "s.yaml").write_text("grid:\n  seed: 3\n")
    with pytest.raises(UserError, match="needs a non-empty list"):
        load_study(tmp_path / "s.yaml")
    (tmp_path / "s.yaml").write_text("gird: {}\n")
    with pytest.raises(UserError, match="unknown keys"):
        load_study(tmp_path / "s.yaml")
    with pytest.raises(UserError, match="does not exist"):
        load_study(tmp_path / "missing.yaml")


def test_a_study_can_list_second_stages(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "study.yaml").write_text(
        "base: base.yaml\nfixed: {optim.epochs: 1, method.name: sar}\ngrid:\n  seed: [0]\nstages: [ncm, tau_norm]\n"
    )
    runs = tmp_path / "runs"
    assert main(["sweep", str(tmp_path / "study.yaml"), "--runs-dir", str(runs)]) == 0
    (point,) = expand(load_study(tmp_path / "study.yaml"), runs)
    for stage in ("ncm", "tau_norm"):
        assert run_status(point.run_dir.parent / f"{point.run_dir.name}__{stage}") == "done"
    assert main(["report", str(runs), "--out", str(tmp_path / "report"), "--no-figures"]) == 0
    table = (tmp_path / "report" / "main_table.md").read_text()
    assert "| sar + NCM |" in table and "| sar + tau-norm |" in table
    (tmp_path / "bad.yaml").write_text("stages: [crt2]\n")
    with pytest.raises(UserError, match="unknown stage 'crt2'"):
        load_study(tmp_path / "bad.yaml")


def test_arms_are_crossed_with_the_grid(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "study.yaml").write_text(
        "base: base.yaml\narms:\n  - {method.name: none}\n"
        "  - {method.name: sar, method.trade_off: 0}\ngrid:\n  seed: [0, 1]\n"
    )
    points = expand(load_study(tmp_path / "study.yaml"), tmp_path / "runs")
    assert [p.overrides for p in points] == [
        {"method.name": "none", "seed": 0},
        {"method.name": "none", "seed": 1},
        {"method.name": "sar", "method.trade_off": 0, "seed": 0},
        {"method.name": "sar", "method.trade_off": 0, "seed": 1},
    ]
    assert points[2].cfg.method.trade_off == 0
    (tmp_path / "twice.yaml").write_text(
        "base: base.yaml\narms: [{method.name: sar}, {method.name: sar}]\n"
    )
    with pytest.raises(UserError, match="identical configs"):
        expand(load_study(tmp_path / "twice.yaml"), tmp_path / "runs")
    (tmp_path / "bad.yaml").write_text("arms: {method.name: sar}\n")
    with pytest.raises(UserError, match="arms must be a list of mappings"):
        load_study(tmp_path / "bad.yaml")


@pytest.mark.parametrize("jobs", ["0", "-2", "two"])
def test_jobs_must_be_a_positive_integer(study_file, tmp_path, capsys, jobs):
    runs = tmp_path / "runs"
    assert main(["sweep", str(study_file), "--runs-dir", str(runs), "--jobs", jobs]) == 2
    err = capsys.readouterr().err
    assert f"argument --jobs: {jobs!r} is not an integer >= 1" in err and not runs.exists()
