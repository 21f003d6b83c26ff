"""Launching a study's points: in local worker processes (:mod:`~lt_bench.study.workers`), or
through submitit (slurm, or submitit's local executor for tests). Only points not yet done are
launched, each run folder once; a stale point (done with other settings) is refused, never reused;
a point whose folder another process holds locked is skipped ("running elsewhere"), never trained
twice. Locally the sweep process never trains: a run that kills its worker (SIGKILL, a segfault,
the OOM killer) is marked failed, naming how, and the sweep goes on; SIGINT or SIGTERM stop the
workers too, leaving their runs resumable. A run's CPU threads are its config's
(``train.threads``, set by the engine), so its numbers do not depend on ``jobs``."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from omegaconf import OmegaConf

from lt_bench.config import Config, run_id, to_dict
from lt_bench.errors import UserError
from lt_bench.rundir import RunDir, RunLocked, child_path, run_path
from lt_bench.study.points import Point, point_status, refuse_stale, unique
from lt_bench.study.workers import run_tasks

EXECUTORS = ("local", "slurm", "submitit_local")
# Launch rounds: a point refused because its lock was held (by another sweep, or for an instant
# by a status check) is launched again when, after the round, it is neither done nor locked.
ROUNDS = 3
ELSEWHERE = "another process holds its lock (running elsewhere)"

# on_result(finished, total, result) is called after each local run.
OnResult = Callable[[int, int, dict], None]


def run_point(resolved: dict, stages: tuple = ()) -> dict:
    """Train one point (resuming where a killed attempt stopped), then its second stages; record
    any failure in the folder of the run that failed. A run another process holds (its lock) is
    left to it: ``status`` ``running``. A done point's result has the run's test top-1 and
    few-shot accuracy, its wall time (``final.json``) and the warnings of the run and its stages."""
    from lt_bench.engine import train
    from lt_bench.stages import retrain

    cfg = OmegaConf.merge(OmegaConf.structured(Config), resolved)
    parent = run_dir = run_path(cfg)
    try:
        final = train(cfg, resume=True)
        warnings = list(final.get("warnings") or [])
        for stage in stages:  # retrain locks the child's folder as train locks the run's
            run_dir = child_path(parent, stage)
            warnings += retrain(parent, stage).get("warnings") or []
        return {
            "run_dir": str(parent),
            "status": "done",
            "seed": cfg.seed,
            "top1": final.get("top1"),
            "few": final.get("few"),
            "wall_time_s": final.get("wall_time_s"),
            "warnings": warnings,
        }
    except RunLocked:
        return _elsewhere(run_dir)
    except Exception as err:  # a sweep reports every failure, whatever its kind
        message = f"{type(err).__name__}: {err}"
        RunDir(run_dir).mark_failed(message, run_id(cfg))
        return {"run_dir": str(run_dir), "status": "failed", "error": message, "seed": cfg.seed}


def _elsewhere(run_dir) -> dict:
    return {"run_dir": str(run_dir), "status": "running", "error": ELSEWHERE}


def worker_died(point: Point, how: str) -> dict:
    """The result of a point whose worker process died: the folder it was in (the run, or its
    first second stage not done) is marked failed with one line naming how, unless another
    process holds it now; the checkpoint stays, so the next launch resumes the run."""
    for folder in (point.run_dir, *point.child_dirs()):
        run = RunDir(folder)
        if run.status() == "done":
            continue
        if run.is_locked():
            return _elsewhere(folder)
        message = (
            f"WorkerDied: the worker process training this run died ({how}); "
            "its last checkpoint is kept: launch the sweep again to resume it"
        )
        run.mark_failed(message, run_id(point.cfg) if folder == point.run_dir else None, False)
        return {
            "run_dir": str(folder),
            "status": "failed",
            "error": message,
            "seed": point.cfg.seed,
        }
    return {"run_dir": str(point.run_dir), "status": "done", "warnings": []}


def launch(
    points: list[Point],
    executor: str = "local",
    jobs: int = 1,
    slurm: dict | None = None,
    progress: bool = True,
    folder: Path | None = None,
    on_result: OnResult | None = None,
) -> list[dict]:
    """Run the points not yet done, each folder once; local runs finish before this returns, slurm
    jobs are submitted. Refuses stale points (move them aside first: :func:`points.move_aside`).
    A point another process is training gets a ``running`` result and is not launched."""
    if executor not in EXECUTORS:
        raise UserError(f"unknown executor {executor!r}; choose one of: {', '.join(EXECUTORS)}")
    refuse_stale(points)
    states = [(point, point_status(point)) for point in unique(points)]
    skipped = [_elsewhere(p.run_dir) for p, state in states if state == "running"]
    pending = [p for p, state in states if state not in ("done", "running")]
    if not pending:
        return skipped
    if executor == "local":
        return skipped + _launch_local(pending, jobs, progress, on_result)
    return skipped + _launch_submitit(
        [to_dict(p.cfg) for p in pending],
        executor,
        jobs,
        slurm or {},
        folder or Path(points[0].cfg.out_dir) / ".submitit",
        pending[0].stages,
    )


def _launch_local(
    points: list[Point], jobs: int, progress: bool, on_result: OnResult | None
) -> list[dict]:
    """The points in ``jobs`` worker processes, in rounds: a point refused for its lock is
    launched again if, once the round is over, it is neither done nor locked."""
    from tqdm.auto import tqdm

    # On a terminal: one bar over the runs with done / failed / running counts and tqdm's estimate
    # of the time left. Elsewhere (logs, CI) the caller's on_result prints a line per run.
    bar = tqdm(total=len(points), unit="run", disable=not (progress and sys.stderr.isatty()))
    results: list[dict] = []
    for round_ in range(ROUNDS):
        got = _run_round(points, jobs, bar, on_result)
        results += [r for r in got if r["status"] != "running"]
        refused = [(p, r) for p, r in zip(points, got) if r["status"] == "running"]
        states = [(p, r, point_status(p)) for p, r in refused]  # done: finished elsewhere
        points = [p for p, _, state in states if state not in ("done", "running")]
        if not points or round_ == ROUNDS - 1:
            results += [r for p, r, state in states if state != "done" and p not in points]
            results += [_elsewhere(p.run_dir) for p in points]
            break
        bar.total += len(points)
    bar.close()
    return results


def _run_round(points: list[Point], jobs: int, bar, on_result: OnResult | None) -> list[dict]:
    """One launch of the points; their results in the points' order."""
    tasks = []
    for point in points:
        resolved = to_dict(point.cfg)
        resolved["train"]["progress"] = False  # the runs' own bars would interleave
        tasks.append((resolved, tuple(point.stages)))
    results: dict[int, dict] = {}

    def finished(index: int, result: dict) -> None:
        results[index] = result
        counts = Counter(r["status"] for r in results.values())
        running = min(max(jobs, 1), len(tasks) - len(results))
        bar.set_postfix(
            done=counts["done"], failed=counts["failed"], running=running, refresh=False
        )
        bar.update(1)
        if on_result is not None:
            on_result(len(results), len(tasks), result)

    run_tasks(run_point, tasks, jobs, finished, lambda i, how: worker_died(points[i], how))
    return [results[i] for i in range(len(points))]


def _launch_submitit(
    todo: list[dict], executor: str, jobs: int, slurm: dict, folder: Path, stages: tuple = ()
) -> list[dict]:
    import submitit

    cluster = "local" if executor == "submitit_local" else "slurm"
    pool = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    parameters = {
        "timeout_min": int(slurm.get("time_min", 60)),
        "slurm_array_parallelism": max(jobs, 1),
    }
    if cluster == "slurm":
        parameters.update(
            slurm_partition=slurm.get("partition"),
            gpus_per_node=int(slurm.get("gpus", 1)),
            cpus_per_task=int(slurm.get("cpus", 8)),
        )
        parameters = {k: v for k, v in parameters.items() if v is not None}
    pool.update_parameters(**parameters)
    submitted = pool.map_array(run_point, todo, [tuple(stages)] * len(todo))
    if cluster == "local":  # tests and laptops: wait, as the local executor does
        return [job.result() for job in submitted]
    return [{"job_id": job.job_id, "status": "submitted"} for job in submitted]
