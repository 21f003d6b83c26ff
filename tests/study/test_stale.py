"""A done run whose saved settings differ from its point's is stale: reported with the differing
keys, never silently reused, and with --rerun-stale moved aside (nothing lost) and run again."""

import json

from lt_bench.cli import main
from lt_bench.rundir import RunDir
from lt_bench.study import Point, expand, load_study, move_aside, point_status, stale_keys
from tests.test_sweep import BASE

STUDY = "name: tiny\nbase: base.yaml\nfixed: {optim.epochs: 1}\ngrid:\n  seed: [0]\n"


def _fake_done_run(point, **changed) -> RunDir:
    """A done run folder of ``point`` whose config.yaml was written with other settings."""
    cfg = point.cfg.copy()
    for key, value in changed.items():
        section, leaf = key.split(".")
        cfg[section][leaf] = value
    run = RunDir(point.run_dir)
    run.write_config(cfg)
    run.write_final({"status": "done", "top1": 0.5})
    return run


def _study(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "study.yaml").write_text(STUDY)
    return str(tmp_path / "study.yaml"), tmp_path / "runs"


def test_status_and_dry_run_name_a_stale_run_and_its_keys(tmp_path, capsys):
    study, runs = _study(tmp_path)
    (point,) = expand(load_study(study), runs)
    _fake_done_run(point, **{"optim.momentum": 0.5})
    assert stale_keys(point) == ["optim.momentum: 0.5 -> 0.9"]
    assert point_status(point) == "stale"

    assert main(["sweep", study, "--runs-dir", str(runs), "--status"]) == 0
    out = capsys.readouterr().out
    assert "0 done, 0 failed, 0 incomplete, 0 pending, 1 stale" in out
    assert f"  stale: {point.run_dir}: optim.momentum: 0.5 -> 0.9\n" in out
    assert main(["sweep", study, "--runs-dir", str(runs), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"  [stale] {point.run_dir.name}  seed=0" in out and "  stale: " in out


def test_a_launching_sweep_refuses_a_stale_run_and_keeps_it(tmp_path, capsys):
    study, runs = _study(tmp_path)
    (point,) = expand(load_study(study), runs)
    run = _fake_done_run(point, **{"optim.momentum": 0.5})
    before = (point.run_dir / "final.json").read_text()
    assert main(["sweep", study, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "1 done run(s) were run with other settings" in err
    assert point.run_dir.name in err and "optim.momentum: 0.5 -> 0.9" in err
    assert "--rerun-stale" in err
    assert (point.run_dir / "final.json").read_text() == before  # not marked failed, not rerun
    assert run.status() == "done"


def test_rerun_stale_moves_the_old_run_aside_and_runs_it_again(tmp_path, capsys):
    study, runs = _study(tmp_path)
    (point,) = expand(load_study(study), runs)
    _fake_done_run(point, **{"optim.momentum": 0.5})
    assert main(["sweep", study, "--runs-dir", str(runs), "--rerun-stale"]) == 0
    out = capsys.readouterr().out
    assert (
        "moved 1 stale runs aside to run them again" in out and "1 done" in out and "0 stale" in out
    )
    aside = RunDir(point.run_dir.with_name(point.run_dir.name + ".stale-1"))
    assert aside.raw_config()["optim"]["momentum"] == 0.5  # nothing lost
    assert json.loads((aside / "final.json").read_text()) == {"status": "done", "top1": 0.5}
    assert point_status(point) == "done" and stale_keys(point) == []
    assert RunDir(point.run_dir).raw_config()["optim"]["momentum"] == 0.9
    stamp = (point.run_dir / "final.json").stat().st_mtime_ns
    assert main(["sweep", study, "--runs-dir", str(runs), "--rerun-stale"]) == 0
    assert (point.run_dir / "final.json").stat().st_mtime_ns == stamp  # fresh now: not rerun


def test_moving_aside_takes_the_second_stages_along_and_never_overwrites(tmp_path):
    study, runs = _study(tmp_path)
    (plain,) = expand(load_study(study), runs)
    point = Point(plain.overrides, plain.cfg, ("crt", "ncm"))
    for number in (1, 2):
        _fake_done_run(point, **{"optim.momentum": 0.5})
        RunDir(point.child_dirs()[0]).write_final({"status": "done"})  # ncm never ran
        moved = move_aside(point)
        assert moved.name == f"{point.run_dir.name}.stale-{number}" and moved.is_dir()
        crt = point.child_dirs()[0]
        assert crt.with_name(f"{crt.name}.stale-{number}").is_dir() and not crt.exists()
        assert not point.run_dir.exists()
    assert not point.child_dirs()[1].with_name(f"{point.child_dirs()[1].name}.stale-1").exists()
