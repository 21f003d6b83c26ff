"""Studies: a base config times a grid of overrides, one run directory per point.

A study file (``experiments/studies/*.yaml``)::

    name: mnist_lt_demo
    base: ../mnist_lt.yaml              # relative to the study file
    fixed: {optim.epochs: 12}           # overrides for every point (optional)
    arms:                               # optional: settings that are not a product, each crossed
      - {method.name: none}             # with the grid (default: one empty arm)
      - {method.name: sar, method.trade_off: 0}
    grid:                               # the product of these lists
      method.name: [none, center, prototype, etf, sar]
      data.ratio: [10, 100]
      seed: [0, 1, 2]
    slurm: {partition: gpu, time_min: 240, gpus: 1, cpus: 8}   # optional
    stages: [crt, tau_norm]             # optional second stages on every finished run (lt-bench retrain)

Each point's run directory is named by a hash of its resolved config, so a sweep is idempotent:
run it again and only the runs not yet done are launched. A failed run keeps its error in
``final.json`` (and the traceback in ``error.log``) and is reported, never skipped silently.
"""

from __future__ import annotations

import itertools
import json
import os
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from lt_bench import atomic
from lt_bench.config import Config, load_config, run_id, to_dict
from lt_bench.errors import UserError

EXECUTORS = ("local", "slurm", "submitit_local")
STATUSES = ("done", "failed", "incomplete", "pending")


@dataclass
class Study:
    name: str
    base: Path | None
    fixed: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    arms: list = field(default_factory=lambda: [{}])
    slurm: dict = field(default_factory=dict)
    stages: list = field(default_factory=list)
    tune: object = None  # a tune.Tuning when the study has a tune: section


@dataclass
class Point:
    overrides: dict
    cfg: DictConfig
    stages: tuple = ()

    @property
    def run_dir(self) -> Path:
        from lt_bench.engine import run_directory

        return run_directory(self.cfg)


def load_study(path: str | Path) -> Study:
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"study file {path} does not exist; pass a YAML file such as experiments/studies/mnist_lt_demo.yaml"
        )
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"study file {path} is not valid YAML; fix its syntax") from err
    allowed = ("name", "base", "fixed", "arms", "grid", "slurm", "stages", "tune")
    unknown = set(raw) - set(allowed)
    if unknown:
        raise UserError(
            f"study file {path} has unknown keys {sorted(unknown)}; allowed: {', '.join(allowed)}"
        )
    arms = raw.get("arms") or [{}]
    if not isinstance(arms, list) or not all(isinstance(arm, dict) for arm in arms):
        raise UserError(
            f"study file {path}: arms must be a list of mappings, e.g. - {{method.name: sar}}"
        )
    from lt_bench.stages import STAGES

    bad = [stage for stage in raw.get("stages") or [] if stage not in STAGES]
    if bad:
        raise UserError(
            f"study file {path} lists unknown stage {bad[0]!r}; choose from: {', '.join(STAGES)}"
        )
    grid = raw.get("grid") or {}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise UserError(f"study grid key {key!r} needs a non-empty list of values")
    base = (path.parent / raw["base"]).resolve() if raw.get("base") else None
    from lt_bench.tune import parse_tuning

    return Study(
        raw.get("name", path.stem),
        base,
        raw.get("fixed") or {},
        grid,
        arms,
        raw.get("slurm") or {},
        list(raw.get("stages") or []),
        parse_tuning(raw["tune"], path) if raw.get("tune") is not None else None,
    )


def _as_overrides(values: dict) -> list[str]:
    # JSON is YAML's flow syntax, so lists, mappings and quoted strings survive OmegaConf's parser.
    return [f"{key}={json.dumps(value)}" for key, value in values.items()]


def combinations(study: Study) -> list[dict]:
    """Every point's overrides: each arm crossed with the grid's product."""
    keys = list(study.grid)
    return [
        {**arm, **dict(zip(keys, values))}
        for arm, values in itertools.product(
            study.arms, itertools.product(*(study.grid[k] for k in keys))
        )
    ]


def resolve(study: Study, overrides: dict, runs_dir: str | Path) -> DictConfig:
    """The config of one point: base <- fixed <- the point's overrides; the study's name is the
    runs' tracker experiment (``train.experiment``)."""
    named = {"train.experiment": study.name}
    return load_config(
        study.base,
        [
            *_as_overrides(named),
            *_as_overrides(study.fixed),
            *_as_overrides(overrides),
            f"out_dir={runs_dir}",
        ],
    )


def expand(study: Study, runs_dir: str | Path, tuned=None) -> list[Point]:
    """Every point as a resolved config writing under ``runs_dir``; run ids must be unique.
    ``tuned(overrides) -> dict`` adds a tuned study's chosen values to each point."""
    points = []
    for overrides in combinations(study):
        overrides = {**overrides, **(tuned(overrides) if tuned else {})}
        cfg = resolve(study, overrides, runs_dir)
        points.append(Point(overrides, cfg, tuple(study.stages)))
    ids = Counter(run_id(p.cfg) for p in points)
    if any(n > 1 for n in ids.values()):
        raise UserError(
            f"study {study.name} has points with identical configs; remove repeated grid values or arms"
        )
    return points


def point_status(point: Point) -> str:
    """The run's status; a done run whose second stages are not all done counts as incomplete."""
    from lt_bench.stages import child_dir

    status = run_status(point.run_dir)
    if status == "done" and any(
        run_status(child_dir(point.run_dir, s)) != "done" for s in point.stages
    ):
        return "incomplete"
    return status


def run_status(run_dir: Path) -> str:
    final = run_dir / "final.json"
    if not final.exists():
        return "incomplete" if run_dir.exists() else "pending"
    status = json.loads(final.read_text()).get("status")
    return status if status in ("done", "failed") else "incomplete"


def run_point(resolved: dict, threads: int | None = None, stages: tuple = ()) -> dict:
    """Train one point (resuming where a killed attempt stopped), then its second stages; record
    any failure in the folder of the run that failed."""
    import torch

    from lt_bench.engine import run_directory, train
    from lt_bench.stages import child_dir, retrain

    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)

    cfg = OmegaConf.merge(OmegaConf.structured(Config), resolved)
    parent = run_dir = run_directory(cfg)
    try:
        warnings = list(train(cfg, resume=True).get("warnings") or [])
        for stage in stages:
            run_dir = child_dir(parent, stage)
            warnings += retrain(parent, stage).get("warnings") or []
        return {"run_dir": str(parent), "status": "done", "warnings": warnings}
    except Exception as err:  # a sweep reports every failure, whatever its kind
        message = f"{type(err).__name__}: {err}"
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic.write_text(run_dir / "error.log", traceback.format_exc())
        atomic.write_json(
            run_dir / "final.json", {"status": "failed", "error": message, "run_id": run_id(cfg)}
        )
        return {"run_dir": str(run_dir), "status": "failed", "error": message}
    finally:
        torch.set_num_threads(previous_threads)  # an in-process sweep leaves the caller as it was


def status_counts(points: list[Point]) -> Counter:
    return Counter(point_status(p) for p in points)


def failures(points: list[Point]) -> list[tuple[Path, str]]:
    from lt_bench.stages import child_dir

    out = []
    for p in points:
        for run_dir in (p.run_dir, *(child_dir(p.run_dir, s) for s in p.stages)):
            if run_status(run_dir) == "failed":
                out.append(
                    (run_dir, json.loads((run_dir / "final.json").read_text()).get("error", ""))
                )
    return out


def launch(
    points: list[Point],
    executor: str = "local",
    jobs: int = 1,
    slurm: dict | None = None,
    progress: bool = True,
    folder: Path | None = None,
    threads: int | None = None,
    on_result=None,
) -> list[dict]:
    """Run the points not yet done; local runs finish before this returns, slurm jobs are submitted."""
    if executor not in EXECUTORS:
        raise UserError(f"unknown executor {executor!r}; choose one of: {', '.join(EXECUTORS)}")
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
    todo: list[dict], jobs: int, progress: bool, threads: int | None, on_result, stages
) -> list[dict]:
    import sys

    from tqdm.auto import tqdm

    # On a terminal: one bar over the runs with done / failed / running counts and tqdm's estimate
    # of the time left. Elsewhere (logs, CI) the caller's on_result prints a line per run.
    bar = tqdm(total=len(todo), unit="run", disable=not (progress and sys.stderr.isatty()))
    for resolved in todo:  # the runs' own bars would interleave: keep only the sweep's
        resolved["train"]["progress"] = False
    results = []
    workers = 1 if jobs <= 1 else jobs

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
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        threads = threads or max(1, (os.cpu_count() or 1) // jobs)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = [pool.submit(run_point, resolved, threads, stages) for resolved in todo]
            for future in as_completed(futures):
                finished(future.result())
    bar.close()
    return results


def _launch_submitit(
    todo: list[dict], executor: str, jobs: int, slurm: dict, folder: Path, stages=()
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
