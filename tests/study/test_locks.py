"""A run whose folder another process holds locked is "running elsewhere": counted and listed as
such, skipped by a launching sweep (never trained twice, never marked failed), and launched again
once the lock is free. Two sweeps on one study at once train every run exactly once; tuning trials
with equal draws share one run folder."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lt_bench.cli import main
from lt_bench.config import to_dict
from lt_bench.rundir import RunDir
from lt_bench.study import expand, load_study, point_status, run_point, status_counts
from lt_bench.study.launch import _launch_local
from tests.test_sweep import BASE

ROOT = Path(__file__).resolve().parents[2]
STUDY = "name: locks\nbase: base.yaml\nfixed: {optim.epochs: 2}\ngrid:\n  seed: [0, 1, 2]\n"
# Another process that takes a run's lock, says so, and holds it until its stdin closes.
HOLD = (
    "import sys; from lt_bench.rundir import RunDir; lock = RunDir(sys.argv[1]).lock(); "
    "lock.__enter__(); print('held', flush=True); sys.stdin.read()"
)


@pytest.fixture
def study(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "study.yaml").write_text(STUDY)
    return str(tmp_path / "study.yaml"), tmp_path / "runs"


class Holder:
    """A process holding one run folder's lock (``with Holder(folder):``)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def __enter__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(self.folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.process.stdout.readline() == "held\n"
        return self

    def release(self):
        self.process.stdin.close()
        assert self.process.wait(timeout=60) == 0
        self.process.stdout.close()

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.release()


def assert_trained_once(point):
    """Done, one metrics row per epoch, no failure recorded."""
    run = RunDir(point.run_dir)
    assert run.status() == "done" and not (point.run_dir / "error.log").exists()
    assert [row["epoch"] for row in run.metrics()] == list(range(1, point.cfg.optim.epochs + 1))


def test_a_locked_run_is_running_elsewhere_and_a_sweep_skips_it(study, capsys):
    path, runs = study
    points = expand(load_study(path), runs)
    with Holder(points[1].run_dir) as holder:
        assert point_status(points[1]) == "running"
        assert main(["sweep", path, "--runs-dir", str(runs), "--status"]) == 0
        out = capsys.readouterr().out
        assert "0 done, 0 failed, 0 incomplete, 2 pending, 0 stale, 1 running" in out
        assert f"  running elsewhere: {points[1].run_dir} (another process holds its lock)" in out
        assert main(["sweep", path, "--runs-dir", str(runs), "--dry-run"]) == 0
        assert f"  [running] {points[1].run_dir.name}  seed=1" in capsys.readouterr().out

        assert main(["sweep", path, "--runs-dir", str(runs)]) == 0
        out = capsys.readouterr().out
        assert "skipped 1 runs that another process is training" in out
        assert "2 done, 0 failed, 0 incomplete, 0 pending, 0 stale, 1 running" in out
        assert not (points[1].run_dir / "metrics.jsonl").exists()  # left to its holder
        assert not (points[1].run_dir / "final.json").exists()  # and never marked failed
        holder.release()
    assert point_status(points[1]) == "incomplete"  # its holder went away: resumable
    assert main(["sweep", path, "--runs-dir", str(runs)]) == 0
    for point in points:
        assert_trained_once(point)


def test_a_worker_that_meets_a_held_lock_reports_running_not_failed(study):
    path, runs = study
    point = expand(load_study(path), runs)[0]
    with Holder(point.run_dir):
        result = run_point(to_dict(point.cfg))  # the lock is met by the engine, in this process
        assert result == {
            "run_dir": str(point.run_dir),
            "status": "running",
            "error": "another process holds its lock (running elsewhere)",
        }
        assert not (point.run_dir / "final.json").exists()


def test_a_run_refused_for_its_lock_is_launched_again_once_the_lock_is_free(study):
    """A lock held when the worker meets it, released before the round ends (e.g. a status check
    that held it for an instant): the next round trains the run."""
    path, runs = study
    point = expand(load_study(path), runs)[0]
    holder = Holder(point.run_dir).__enter__()
    seen = []

    def released_after_the_refusal(done, total, result):
        seen.append(result["status"])
        if result["status"] == "running":
            holder.release()

    results = _launch_local([point], 1, False, released_after_the_refusal)
    assert seen == ["running", "done"] and [r["status"] for r in results] == ["done"]
    assert_trained_once(point)


def test_two_sweeps_at_once_train_every_run_exactly_once(study):
    path, runs = study
    command = [sys.executable, "-m", "lt_bench", "sweep", path, "--runs-dir", str(runs)]
    sweeps = [
        subprocess.Popen([*command, "--jobs", "1"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [sweep.communicate(timeout=300)[0] for sweep in sweeps]
    assert [sweep.returncode for sweep in sweeps] == [0, 0], outputs
    points = expand(load_study(path), runs)
    assert status_counts(points) == {"done": 3}
    for point in points:
        assert_trained_once(point)
    lines = [line for out in outputs for line in out.splitlines() if line.startswith("  [")]
    assert not [line for line in lines if ": failed" in line], lines
    for point in points:  # each run finished in one sweep or the other
        assert any(f"{point.run_dir.name}: done" in line for line in lines), lines


def test_tuning_trials_with_equal_draws_share_one_run(tmp_path, capsys):
    """An empty space: every trial of the arm is the same config, one folder, trained once even
    with two workers; each trial gets its score."""
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "study.yaml").write_text(
        "name: same\nbase: base.yaml\nfixed: {optim.epochs: 1}\ngrid:\n  seed: [0]\n"
        "tune: {trials: 3, space: {}}\n"
    )
    runs = tmp_path / "runs"
    assert (
        main(["sweep", str(tmp_path / "study.yaml"), "--runs-dir", str(runs), "--jobs", "2"]) == 0
    )
    out = capsys.readouterr().out
    assert "same tuning: 1 runs in" in out and "1 done, 0 failed" in out
    (arm,) = json.loads((runs / "tune" / "tuning.json").read_text())["arms"]
    assert len(arm["trials"]) == 3 and len({t["run_dir"] for t in arm["trials"]}) == 1
    assert len({t["val_balanced"] for t in arm["trials"]}) == 1 and arm["chosen"]["trial"] == 0
    (trial,) = [p for p in (runs / "tune").iterdir() if p.is_dir()]
    assert RunDir(trial).status() == "done" and len(RunDir(trial).metrics()) == 1
