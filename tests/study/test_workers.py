"""A sweep's worker processes: a worker killed mid-run (a failpoint SIGKILLs it at a known step,
never a timer) fails only its run, with one line naming how it died, and the sweep goes on; the
relaunch resumes that run to exactly the numbers of an uninterrupted one. SIGTERM or Ctrl-C to a
sweep ends its workers and leaves their runs resumable. A run's numbers do not depend on --jobs."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lt_bench.cli import main
from lt_bench.config import to_dict
from lt_bench.engine import train
from lt_bench.rundir import RunDir
from lt_bench.study import (
    SweepInterrupted,
    expand,
    load_study,
    run_point,
    run_tasks,
    status_counts,
)
from tests.test_sweep import BASE

ROOT = Path(__file__).resolve().parents[2]
# Only the 2-epoch run reaches epoch 2: the failpoint kills its worker, never the others'.
STUDY = """
name: workers
base: base.yaml
arms:
  - {optim.epochs: 2}
  - {optim.epochs: 1}
  - {optim.epochs: 1, seed: 1}
"""
KILL = "kill:train_step:epoch=2:step=2"


def write_study(folder: Path, text: str = STUDY) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "base.yaml").write_text(BASE)
    (folder / "study.yaml").write_text(text)
    return str(folder / "study.yaml")


def losses(run_dir) -> list:
    """Every loss and accuracy column of metrics.jsonl (times left out)."""
    return [
        {k: v for k, v in row.items() if k not in ("time_s", "images_per_s")}
        for row in RunDir(run_dir).metrics()
    ]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The study run uninterrupted with two workers."""
    folder = tmp_path_factory.mktemp("reference")
    study = write_study(folder)
    assert main(["sweep", study, "--runs-dir", str(folder / "runs"), "--jobs", "2"]) == 0
    return folder / "runs"


def test_numbers_do_not_depend_on_the_number_of_workers(tmp_path, reference):
    """--jobs 1, --jobs 2, and a run in this process with other torch threads: the same bits
    (the engine sets each run's train.threads)."""
    import torch

    study = write_study(tmp_path)
    assert main(["sweep", study, "--runs-dir", str(tmp_path / "one"), "--jobs", "1"]) == 0
    points = expand(load_study(study), tmp_path / "here")
    threads = torch.get_num_threads()
    torch.set_num_threads(2 if threads == 1 else 1)
    try:
        assert run_point(to_dict(points[0].cfg))["status"] == "done"
        assert torch.get_num_threads() != threads  # the caller's threads left as they were
    finally:
        torch.set_num_threads(threads)
    for point in points:
        name = point.run_dir.name
        assert losses(tmp_path / "one" / name) == losses(reference / name) != []
    assert losses(points[0].run_dir) == losses(reference / points[0].run_dir.name)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_killed_worker_fails_only_its_run_and_the_relaunch_resumes_it_exactly(
    tmp_path, capsys, monkeypatch, reference, jobs
):
    study, runs = write_study(tmp_path), tmp_path / "runs"
    killed, *others = expand(load_study(study), runs)
    monkeypatch.setenv("LT_BENCH_FAILPOINT", KILL)  # read by the workers this sweep starts
    assert main(["sweep", study, "--runs-dir", str(runs), "--jobs", str(jobs)]) == 1
    out, err = capsys.readouterr()
    assert "2 done, 1 failed" in out and "Traceback" not in out + err
    error = RunDir(killed.run_dir).error()
    assert error.startswith("WorkerDied: the worker process training this run died (killed by")
    assert (
        "SIGKILL" in error and "\n" not in error and f"  failed: {killed.run_dir}: {error}" in out
    )
    assert [row["epoch"] for row in RunDir(killed.run_dir).metrics()] == [1]  # epoch 1 kept
    assert not RunDir(killed.run_dir).is_locked()  # the kernel released the dead worker's lock
    stamps = [(p.run_dir / "final.json").stat().st_mtime_ns for p in others]

    monkeypatch.delenv("LT_BENCH_FAILPOINT")
    assert main(["sweep", study, "--runs-dir", str(runs), "--jobs", str(jobs)]) == 0
    assert "[1/1]" in capsys.readouterr().out  # only the failed run is launched again
    assert status_counts([killed, *others]) == {"done": 3}
    assert [(p.run_dir / "final.json").stat().st_mtime_ns for p in others] == stamps
    assert losses(killed.run_dir) == losses(reference / killed.run_dir.name)


def worker_pids(sweep_pid: int) -> list[int]:
    """The sweep's spawned worker processes (its children running multiprocessing's spawn_main)."""
    pids = []
    for task in Path(f"/proc/{sweep_pid}/task").iterdir():
        pids += [int(pid) for pid in (task / "children").read_text().split()]
    return [p for p in pids if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_sigterm_to_a_sweep_ends_its_workers_and_leaves_the_runs_resumable(tmp_path):
    """End to end, the command as a scheduler or `timeout` stops it; Ctrl-C (SIGINT to the
    whole group) takes the same path (test_a_stopped_sweep_stops_its_workers)."""
    # Runs far longer than the test: they are stopped after their first epoch, whatever the speed.
    study = write_study(
        tmp_path, "name: stop\nbase: base.yaml\nfixed: {optim.epochs: 3000}\ngrid: {seed: [0, 1]}\n"
    )
    points = expand(load_study(study), tmp_path / "runs")
    sweep = subprocess.Popen(
        [sys.executable, "-m", "lt_bench", "sweep", study, "--runs-dir", str(tmp_path / "runs")]
        + ["--jobs", "2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a command
    )
    try:
        deadline = time.time() + 300  # a hang guard only: the test waits for files, not for time
        while not all((p.run_dir / "metrics.jsonl").exists() for p in points):
            assert sweep.poll() is None and time.time() < deadline, sweep.communicate()
            time.sleep(0.05)
        workers = worker_pids(sweep.pid)
        assert len(workers) == 2
        os.kill(sweep.pid, signal.SIGTERM)
        out, err = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    assert sweep.returncode == 130, err
    assert "interrupted; its workers were stopped and 2 runs left resumable" in err
    assert "Traceback" not in err
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]  # no worker survives
    for point in points:
        run = RunDir(point.run_dir)
        assert run.status() == "incomplete" and not run.is_locked()  # stopped, not failed
        done = len(run.metrics())
        assert 1 <= done < 3000

        def one_more_epoch(epoch, row):
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):  # it resumes from its last whole checkpoint
            train(point.cfg, resume=True, on_epoch_end=one_more_epoch)
        epochs = [row["epoch"] for row in run.metrics()]
        assert epochs == list(range(1, len(epochs) + 1)) and done <= len(epochs) <= done + 1


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_dead_worker_fails_only_its_task_and_new_workers_take_the_rest(jobs):
    """However a worker dies, its task gets died()'s result naming how, and the others run."""
    from tests.study.worker_tasks import task

    tasks = [("sigkill",), ("return",), ("sigsegv",), ("exit",), ("return",)]
    results = {}
    run_tasks(task, tasks, jobs, results.__setitem__, lambda i, how: {"action": "died", "how": how})
    assert [results[i].get("how") for i in range(len(tasks))] == [
        "killed by SIGKILL: kill -9, or the out-of-memory killer",
        None,
        "killed by SIGSEGV: a segmentation fault",
        "it exited with code 3",
        None,
    ]
    assert results[1]["action"] == results[4]["action"] == "return"


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_a_stopped_sweep_stops_its_workers(tmp_path, monkeypatch, signal_name):
    """One task signals this process (the sweep) while the other waits: both workers end, and the
    sweep raises SweepInterrupted naming the tasks in flight. A worker ignores SIGINT itself."""
    from lt_bench.study import workers
    from tests.study.worker_tasks import task

    # A shell's background job (`cmd &`, nohup) starts with SIGINT ignored, and Python then keeps
    # it ignored: give this process Python's own SIGINT handler, as an interactive run has.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _stop_the_sweep(task, workers, monkeypatch, signal_name)
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop_the_sweep(task, workers, monkeypatch, signal_name):
    workers.stop_idle_workers()  # every worker of this test is started, and seen, here
    started = []
    start = workers._start
    monkeypatch.setattr(workers, "_start", lambda: started.append(start()) or started[-1])
    results = {}
    run_tasks(task, [("ignore sigint",)], 1, results.__setitem__, None)
    assert results[0]["action"] == "ignore sigint"  # the worker survived its own SIGINT
    action = f"{signal_name.lower()} the sweep"
    with pytest.raises(SweepInterrupted) as stopped:
        run_tasks(task, [("wait",), (action,)], 2, results.__setitem__, None)
    assert sorted(stopped.value.in_flight) == [0, 1]
    assert len(started) == 2 and not [w for w in started if w.process.is_alive()]
    assert workers._IDLE == []  # none kept: all were stopped
