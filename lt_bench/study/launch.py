"""Launching a study's points: in this process, in local worker processes, or through submitit
(slurm, or submitit's local executor for tests). Only points not yet done are launched, and a
stale point (done with other settings) is refused, never reused."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from omegaconf import OmegaConf

from lt_bench.config import Config, run_id, to_dict
from lt_bench.errors import UserError
from lt_bench.rundir import RunDir, child_path, run_path
from lt_bench.study.points import Point, point_status, refuse_stale

EXECUTORS = ("local", "slurm", "submitit_local")

# on_result(finished, total, result) is called after each local run.
OnResult = Callable[[int, int, dict], None]


def run_point(resolved: dict, threads: int | None = None, stages: tuple = ()) -> dict:
    """Train one point (resuming where a killed attempt stopped), then its second stages; record
    any failure in the folder of the run that failed."""
    import torch

    from lt_bench.engine import train
    from lt_bench.stages import retrain

    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    cfg = OmegaConf.merge(OmegaConf.structured(Config), resolved)
    parent = run_dir = run_path(cfg)
    try:
        warnings = list(train(cfg, resume=True).get("warnings") or [])
        for stage in stages:
            run_dir = child_path(parent, stage)
            warnings += retrain(parent, stage).get("warnings") or []
        return {"run_dir": str(parent), "status": "done", "warnings": warnings}
    except Exception as err:  # a sweep reports every failure, whatever its kind
        message = f"{type(err).__name__}: {err}"
        RunDir(run_dir).mark_failed(message, run_id(cfg))
        return {"run_dir": str(run_dir), "status": "failed", "error": message}
    finally:
        torch.set_num_threads(previous_threads)  # an in-process sweep leaves the caller as it was


def launch(
    points: list[Point],
    executor: str = "local",
    jobs: int = 1,
    slurm: dict | None = None,
    progress: bool = True,
    folder: Path | None = None,
    threads: int | None = None,
    on_result: OnResult | None = None,
) -> list[dict]:
    """Run the points not yet done; local runs finish before this returns, slurm jobs are
    submitted. Refuses stale points (move them aside first: :func:`points.move_aside`)."""
    if executor not in EXECUTORS:
        raise UserError(f"unknown executor {executor!r}; choose one of: {', '.join(EXECUTORS)}")
    refuse_stale(points)
    pending = [p for p in points if point_status(p) != "done"]
    if not pending:
        return []
    todo = [to_dict(p.cfg) for p in pending]
    stages = pending[0].stages
    if executor == "local":
        return _launch_local(todo, jobs, progress, threads, on_result, stages)
    return _launch_submitit(
        todo,
        executor,
        jobs,
        slurm or {},
        folder or Path(points[0].cfg.out_dir) / ".submitit",
        stages,
    )


def _launch_local(
    todo: list[dict],
    jobs: int,
    progress: bool,
    threads: int | None,
    on_result: OnResult | None,
    stages: tuple,
) -> list[dict]:
    from tqdm.auto import tqdm

    # On a terminal: one bar over the runs with done / failed / running counts and tqdm's estimate
    # of the time left. Elsewhere (logs, CI) the caller's on_result prints a line per run.
    bar = tqdm(total=len(todo), unit="run", disable=not (progress and sys.stderr.isatty()))
    for resolved in todo:  # the runs' own bars would interleave: keep only the sweep's
        resolved["train"]["progress"] = False
    results = []
    workers = max(jobs, 1)

    def finished(result: dict) -> None:
        results.append(result)
        failed = sum(r["status"] == "failed" for r in results)
        running = min(workers, len(todo) - len(results))
        bar.set_postfix(done=len(results) - failed, failed=failed, running=running, refresh=False)
        bar.update(1)
        if on_result is not None:
            on_result(len(results), len(todo), result)

    if jobs <= 1:
        for resolved in todo:
            finished(run_point(resolved, threads, stages))
    else:
        _run_in_processes(
            todo, jobs, threads or max(1, (os.cpu_count() or 1) // jobs), stages, finished
        )
    bar.close()
    return results


def _run_in_processes(
    todo: list[dict], jobs: int, threads: int, stages: tuple, finished: Callable[[dict], None]
) -> None:
    """``jobs`` spawned worker processes (fork would copy the parent's torch threads)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(run_point, resolved, threads, stages) for resolved in todo]
        for future in as_completed(futures):
            finished(future.result())


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
    submitted = pool.map_array(run_point, todo, [None] * len(todo), [tuple(stages)] * len(todo))
    if cluster == "local":  # tests and laptops: wait, as the local executor does
        return [job.result() for job in submitted]
    return [{"job_id": job.job_id, "status": "submitted"} for job in submitted]
